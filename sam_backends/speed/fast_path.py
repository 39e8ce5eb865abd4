"""The pieces the fast precisions of the SAM families share (``"bf16"`` and ``"fp32-fast"``).

``families/sam1/fast.py`` and ``families/sam2/fast.py`` subclass their exact backends; what they
share lives here: the precision's dtype, building a ``FastMaskDecoder`` for a model's decoder,
and the NaN/Inf check of its output. See ``families/sam1/fast.py`` for what the fast path does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import SamBackendError
from ..output_checks import require_finite
from .fast_decoder import FastMaskDecoder, MaskRows

FAST_PRECISIONS = ("bf16", "fp32-fast")


def compute_dtype(precision: str, model_id: str) -> Any:
    """The torch dtype of a fast precision's matrix work; refuses anything else clearly."""
    import torch

    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp32-fast":
        return torch.float32
    raise SamBackendError(
        f"Precision {precision!r} has no fast path for {model_id}; use one of "
        f"{', '.join(FAST_PRECISIONS)} or 'fp32'."
    )


def fast_decoder_for(mask_decoder: Any, prompt_encoder: Any, dtype: Any) -> FastMaskDecoder:
    import torch

    with torch.inference_mode():
        dense_pe = prompt_encoder.get_dense_pe()
    return FastMaskDecoder(mask_decoder, dense_pe, prompt_encoder.no_mask_embed.weight,
                           matrix_dtype=dtype)


def prompt_embeddings(prompt_encoder: Any, points: Any, boxes: Any, masks: Any
                      ) -> tuple[Any, Any]:
    """The upstream prompt encoder's sparse embeddings and what the fast decoder takes as the
    dense one: None without a mask input (it adds the constant ``no_mask_embed`` itself), the
    mask's rows factored (``MaskRows``: a refining click then uses the first layer's cached
    projections), or the dense embedding where the mask branch is not of that shape."""
    sparse, _ = prompt_encoder(points=points, boxes=boxes, masks=None)
    if masks is None:
        return sparse, None
    factored = MaskRows.of(prompt_encoder, masks)
    if factored is not None:
        return sparse, factored
    return sparse, prompt_encoder(points=None, boxes=None, masks=masks)[1]


def checked(backend: Any, decoded: tuple[Any, Any]) -> tuple[Any, Any]:
    """The fast decoder's (low-res logits, scores), refused when they hold NaN/Inf."""
    require_finite(backend.spec, backend.precision, "masks and scores", decoded)
    return decoded


class FastDecoding:
    """The click steps the fast SAM backends share, mixed in before their exact backend: the
    family's prompt encoder (``_prompt_embeddings``), then ``fast_decoder``, its output
    checked for NaN/Inf."""

    fast_decoder: FastMaskDecoder

    def _prompt_embeddings(self, tensors: Mapping[str, Any]) -> tuple[Any, Any]:
        """``prompt_embeddings`` of the family's prompt encoder."""
        raise NotImplementedError

    def _decode(
        self, features: Mapping[str, Any], tensors: Mapping[str, Any], multimask: bool
    ) -> tuple[Any, Any]:
        sparse, dense = self._prompt_embeddings(tensors)
        return checked(self, self.fast_decoder(features, sparse, dense, multimask))

    def _decode_single_or_candidates(self, features: Mapping[str, Any],
                                     tensors: Mapping[str, Any], unsure_below: float
                                     ) -> tuple[Any, Any]:
        """One decode for both selections (``FastMaskDecoder.single_or_candidates``)."""
        sparse, dense = self._prompt_embeddings(tensors)
        return checked(self, self.fast_decoder.single_or_candidates(
            features, sparse, dense, unsure_below))
