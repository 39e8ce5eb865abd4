"""The fast precisions of the SAM backends (``"bf16"``, and ``"fp32-fast"`` for CPUs without
native bf16): SAM 1 here, SAM 2.1 in ``families/sam2/fast.py``.

"fp32-fast" is the same path with fp32 matrices (``compute_dtype``): the speed comes from the
layouts and fusions, not the number format (a click 2.0-2.4x faster than exact on an AVX2-only
CPU, masks within IoU 0.9997 of exact; see ``benchmarks/bench_speed.py``).

Same contract, same checkpoints, same prompt handling as the exact backends (these classes
inherit every step they do not change); what differs:

* encode: the image encoder's matrix work runs in bf16 (``fast_encoder``: for SAM 1 fused
  relative-position attention and an fp32 residual stream; SAM 2.1's Hiera cast to bf16 whole);
  the features are stored once, in bf16 and in the layouts a click needs, with the decoder's
  first-layer projections (``FastMaskDecoder.prepare``): SAM 1 5 MiB (2 of features, 3 of
  projections) against 4 MiB in exact fp32, SAM 2.1 11 MiB against 16; in ``fp32-fast``
  10 and 22 MiB.
* click: the upstream prompt encoder (fp32), then ``FastMaskDecoder`` with its image-side
  products in bf16 (see its module docstring), then OpenCV upscaling and thresholding
  (``fast_upscale``) of the best mask; other candidates are upscaled when asked for
  (``Prediction.mask``).

Faithfulness is measured, not assumed: ``benchmarks/bench_speed.py`` reports mask IoU and
embedding cosine similarity against the exact path on real photos, and
``tests/engine/test_fidelity.py`` guards them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...output_checks import require_finite
from ...speed.fast_path import (
    FastDecoding,
    compute_dtype,
    fast_decoder_for,
    prompt_embeddings,
)
from ...types import Embedding
from .backend import Sam1Backend


class FastSam1Backend(FastDecoding, Sam1Backend):
    """SAM 1 with a bf16 image encoder and the fast decoder; see the module docstring."""

    def __init__(self, spec: Any, model: Any, device: str, precision: str) -> None:
        super().__init__(spec, model, device, precision)
        from ...speed.fast_encoder import accelerate_sam1_encoder

        self.dtype = compute_dtype(precision, spec.model_id)
        accelerate_sam1_encoder(model.image_encoder, self.dtype)
        self.fast_decoder = fast_decoder_for(model.mask_decoder, model.prompt_encoder, self.dtype)

    def _encode(self, input_image: Any) -> Mapping[str, Any]:
        """Normalise and pad in fp32 (as upstream), encode (bf16 matrices), store rows in bf16."""
        from ...speed.fast_encoder import sam1_encode

        embed = sam1_encode(self.model.image_encoder, self.model.preprocess(input_image))
        require_finite(self.spec, self.precision, "image embedding", [embed])
        return self.fast_decoder.prepare(embed, dtype=self.dtype)

    def _prompt_embeddings(self, tensors: Mapping[str, Any]) -> tuple[Any, Any]:
        return prompt_embeddings(self.model.prompt_encoder, tensors["points"],
                                 tensors["boxes"], tensors["masks"])

    def _masks(self, low_res: Any, embedding: Embedding) -> np.ndarray:
        from ...speed.fast_upscale import sam1_masks

        return sam1_masks(
            low_res[0].float().cpu().numpy(), embedding.input_size, embedding.original_size,
            encoder_size=self.model.image_encoder.img_size, threshold=self.mask_threshold,
        )
