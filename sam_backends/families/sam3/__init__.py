"""SAM 3, through ``transformers``: text prompts, points and boxes (``backend.Sam3Backend``);
words tracked through a clip by its own video model (``video.Sam3TextVideoRun``).

Loaded from a Hugging Face model folder (``ModelSpec.hf_repo``; see ``text.hub``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..base import Family

FAMILY = Family(
    name="sam3",
    note="Segment Anything 3 (2025): text prompts, points and boxes",
    precisions=("fp32", "bf16"),  # bf16: autocast (text.hf_common)
    text_video=True,
)


def load(spec: Any, folder: Path, device: str, precision: str) -> Any:
    """``backend.load``: the model folder read by transformers (imports torch)."""
    from .backend import load as load_backend

    return load_backend(spec, folder, device, precision)


def load_text_video(spec: Any, folder: Path, device: str, precision: str) -> Any:
    """``video.load_text_video``: ``Sam3VideoModel`` and its processor (imports torch)."""
    from .video import load_text_video as load

    return load(spec, folder, device, precision)


def start_text_video(model: Any, video: Any, params: Any, first_object_id: int = 1) -> Any:
    """A new ``video.Sam3TextVideoRun`` of a ``TextVideoModel`` on ``video`` for ``params``."""
    from .video import Sam3TextVideoRun

    return Sam3TextVideoRun(model.model, video, params, device=model.device, lock=model.lock,
                            first_object_id=first_object_id)
