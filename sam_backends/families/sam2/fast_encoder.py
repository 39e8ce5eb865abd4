"""The SAM 2.1 image encoder of the fast precisions.

Hiera's trunk already uses ``scaled_dot_product_attention``; bf16 weights are what it needs (its
12-48 blocks stay within the fidelity asked when cast whole). The FPN neck and the two 1x1
projections of the high-resolution levels run in bf16 too; everything a click runs stays fp32.
"""

from __future__ import annotations

from typing import Any


def accelerate_sam2_encoder(model: Any, dtype: Any) -> None:
    """Convert a ``sam2`` model's image path to ``dtype`` in place.

    That is the ``ImageEncoder`` (Hiera trunk + FPN neck) and the mask decoder's ``conv_s0`` /
    ``conv_s1``, which ``SAM2Base.forward_image`` applies to the high-resolution levels at
    encode time. The prompt encoder and the rest of the mask decoder stay fp32.
    """
    model.image_encoder.to(dtype)
    decoder = model.sam_mask_decoder
    if getattr(decoder, "use_high_res_features", False):
        decoder.conv_s0.to(dtype)
        decoder.conv_s1.to(dtype)
