"""The fast precision of the SAM 2.1 backend (``precision="bf16"``).

Same contract, checkpoints and prompt handling as ``backend.Sam2Backend``; what differs (and
how faithfulness is measured) is described in ``families/sam1/fast.py``: the Hiera encoder cast
to bf16 whole, features stored once in bf16 in the layouts a click needs (8 MiB instead of 16,
plus 3 MiB of the decoder's first-layer projections),
``FastMaskDecoder`` for clicks and OpenCV upscaling of the best mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...speed.fast_path import (
    FastDecoding,
    compute_dtype,
    fast_decoder_for,
    prompt_embeddings,
)
from ...types import Embedding
from .backend import Sam2Backend


class FastSam2Backend(FastDecoding, Sam2Backend):
    """SAM 2.1 with a bf16 image encoder and the fast decoder; see the module docstring."""

    def __init__(self, spec: Any, model: Any, device: str, precision: str) -> None:
        super().__init__(spec, model, device, precision)
        from .fast_encoder import accelerate_sam2_encoder

        self.dtype = compute_dtype(precision, spec.model_id)
        accelerate_sam2_encoder(model, self.dtype)
        self.fast_decoder = fast_decoder_for(
            model.sam_mask_decoder, model.sam_prompt_encoder, self.dtype
        )

    def _encode(self, input_image: Any) -> Mapping[str, Any]:
        """The exact backend's steps on a bf16 input, then rows/block order in bf16."""
        features = super()._encode(input_image.to(self.dtype))
        return self.fast_decoder.prepare(
            features["image_embed"], features["high_res_feats"], dtype=self.dtype
        )

    def _prompt_embeddings(self, tensors: Mapping[str, Any]) -> tuple[Any, Any]:
        return prompt_embeddings(self.model.sam_prompt_encoder, tensors["points"], None,
                                 tensors["masks"])

    def _masks(self, low_res: Any, embedding: Embedding) -> np.ndarray:
        from ...speed.fast_upscale import sam2_masks

        return sam2_masks(
            low_res[0].float().cpu().numpy(), embedding.original_size,
            threshold=self.mask_threshold,
        )
