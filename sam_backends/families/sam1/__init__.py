"""SAM 1 (ViT-B/L/H), through the ``segment_anything`` package.

``backend.Sam1Backend`` reproduces ``SamPredictor`` (fp32); ``fast.FastSam1Backend`` runs the fast
precisions (bf16, fp32-fast). The image is resized so its long side is 1024 and padded
(``ResizeLongestSide``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..base import Everything, Family

FAMILY = Family(
    name="sam1",
    note="Segment Anything (2023)",
    everything=Everything(pred_iou_thresh=0.88, sam_grid=True),
    encoder_blocks="image_encoder.blocks",  # the ViT's blocks
    precisions=("fp32", "fp32-fast", "bf16"),
    # Counted on the official architectures (see SPEED-NOTES.md).
    encoder_gmacs=(("sam-vit-b", 486.0), ("sam-vit-l", 1493.0), ("sam-vit-h", 2981.0)),
)


def load(spec: Any, checkpoint_path: Path | None, device: str, precision: str) -> Any:
    """The model built and loaded strictly (``backend.build_model``), behind the exact backend
    ("fp32") or the fast one (``fast``, any other precision it runs).

    Raises:
        BackendUnavailableError, CheckpointMissingError, CheckpointCorruptError,
        SamBackendError: see ``backend.build_model``.
    """
    from ...device import EXACT_PRECISION
    from .backend import Sam1Backend, build_model

    model = build_model(spec, checkpoint_path, device, precision)
    if precision != EXACT_PRECISION:  # the fast path: bf16 encoder, fast decoder
        from .fast import FastSam1Backend

        return FastSam1Backend(spec, model, device, precision)
    return Sam1Backend(spec, model, device, precision)
