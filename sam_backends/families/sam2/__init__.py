"""SAM 2.1 (Hiera tiny/small/base+/large), through the ``sam2`` package.

``backend.Sam2Backend`` reproduces ``SAM2ImagePredictor`` (fp32); ``fast.FastSam2Backend`` runs the
fast precisions (bf16, fp32-fast); ``video.load_video`` builds the video tracker model. The image
is stretched to 1024 x 1024.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..base import Everything, Family

FAMILY = Family(
    name="sam2",
    note="Segment Anything 2.1 (2024)",
    everything=Everything(pred_iou_thresh=0.8, sam_grid=True),
    video=True,
    encoder_blocks="image_encoder.trunk.blocks",  # the Hiera trunk's blocks
    precisions=("fp32", "fp32-fast", "bf16"),
    # Counted on the official architectures (see SPEED-NOTES.md).
    encoder_gmacs=(("sam2.1-tiny", 146.0), ("sam2.1-small", 180.0),
                   ("sam2.1-base-plus", 323.0), ("sam2.1-large", 911.0)),
)


def load(spec: Any, checkpoint_path: Path | None, device: str, precision: str) -> Any:
    """The model built and loaded strictly (``backend.build_model``), behind the exact backend
    ("fp32") or the fast one (``fast``, any other precision it runs).

    Raises:
        BackendUnavailableError, CheckpointMissingError, CheckpointCorruptError,
        SamBackendError: see ``backend.build_model``.
    """
    from ...device import EXACT_PRECISION
    from .backend import Sam2Backend, build_model

    model = build_model(spec, checkpoint_path, device, precision)
    if precision != EXACT_PRECISION:  # the fast path: bf16 encoder, fast decoder
        from .fast import FastSam2Backend

        return FastSam2Backend(spec, model, device, precision)
    return Sam2Backend(spec, model, device, precision)


def load_video(spec: Any, checkpoint_path: Path, device: str, precision: str) -> Any:
    """``video.load_video``: the upstream video predictor, loaded strictly, for a tracker."""
    from .video import load_video as load_video_model

    return load_video_model(spec, checkpoint_path, device, precision)


def start_video(tracker: Any, video: Any) -> Any:
    """A new ``sam_backends.video.session.VideoSession`` of ``tracker`` on ``video``."""
    from ...video.session import VideoSession

    return VideoSession(tracker, video)
