"""EdgeTAM (on-device SAM 2: a RepViT image encoder, a 2D spatial perceiver compressing each
frame's memory), through ``transformers`` (``EdgeTamModel``, ``EdgeTamVideoModel``; the RepViT
comes from ``timm``).

``backend.EdgeTamBackend`` is the image backend (equal to transformers' processor + model +
``post_process_masks`` in fp32); ``video.EdgeTamVideoSession`` tracks video through
``EdgeTamVideoModel``'s inference session. One Hugging Face model folder (``ModelSpec.hf_repo``,
see ``text.hub``) serves both. The image is stretched to 1024 x 1024, as SAM 2's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..base import Everything, Family

FAMILY = Family(
    name="edgetam",
    note="EdgeTAM (2025): SAM 2 made light for video on CPUs and phones",
    # Upstream EdgeTAM's automatic generator keeps SAM 2's defaults; the grid is decoded point
    # by point through ``predict`` (its low-res logits cover the stretched image).
    everything=Everything(pred_iou_thresh=0.8),
    video=True,
    # Counted with torch.utils.flop_counter on the published architecture (RepViT-M1, FPN neck
    # and the decoder's projections, one 1024 x 1024 image): 7.5x fewer than SAM 2.1 tiny's.
    encoder_gmacs=(("edgetam", 19.4),),
    video_proposal=("Proposed because this CPU has no native bf16, where SAM 2.1 tracks at "
                    "seconds a frame: EdgeTAM's light encoder and compressed memory are "
                    "several times faster (less accurate; compare both below)."),
)


def load(spec: Any, folder: Path, device: str, precision: str) -> Any:
    """``backend.load``: the image model from a transformers folder (imports torch)."""
    from .backend import load as load_backend

    return load_backend(spec, folder, device, precision)


def load_video(spec: Any, folder: Path, device: str, precision: str) -> Any:
    """``video.load_video``: ``EdgeTamVideoModel`` and its processor, for a tracker."""
    from .video import load_video as load_video_model

    return load_video_model(spec, folder, device, precision)


def start_video(tracker: Any, video: Any) -> Any:
    """A new ``video.EdgeTamVideoSession`` of ``tracker`` on ``video``."""
    from .video import EdgeTamVideoSession

    return EdgeTamVideoSession(tracker, video)
