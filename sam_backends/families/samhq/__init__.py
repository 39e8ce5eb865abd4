"""SAM-HQ (ViT-B/L/H), through ``transformers`` (``backend.SamHQBackend``).

SAM 1 with a high-quality output token: the mask decoder also reads the ViT's first
global-attention block, for finer boundaries (thin structures, holes). Loaded from a Hugging
Face model folder (``ModelSpec.hf_repo``; see ``text.hub``). The image is resized so its long
side is 1024 and padded, as SAM 1; "bf16" is SAM 1's precision switch as autocast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..base import Everything, Family

FAMILY = Family(
    name="samhq",
    note=("SAM-HQ (2023): finer boundaries; runs transformers 5.23's decoder, which differs "
          "from the official one (README)"),
    # Point by point through ``predict`` (``automatic.decoding.PredictGridDecoder``): the
    # decoder is transformers' module, not SAM 1's that the batched grid decoder drives.
    everything=Everything(pred_iou_thresh=0.88, sam_grid=False),
    encoder_blocks="vision_encoder.layers",  # transformers' ViT blocks (SamHQVisionLayer)
    # The ViT is SAM 1's (SPEED-NOTES.md); the HQ feature convolutions run in the decoder,
    # at each click (about 6 G multiply-adds more than SAM 1's decoder).
    encoder_gmacs=(("samhq-vit-b", 486.0), ("samhq-vit-l", 1493.0), ("samhq-vit-h", 2981.0)),
)


def load(spec: Any, folder: Path, device: str, precision: str) -> Any:
    """``backend.load``: the model folder read by transformers (imports torch)."""
    from .backend import load as load_backend

    return load_backend(spec, folder, device, precision)
