"""OpenCV GrabCut: the baseline that needs no weights and no torch (``backend.GrabCutBackend``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..base import Family

FAMILY = Family(
    name="grabcut",
    note="classic OpenCV GrabCut, no weights; works best with a box",
    runs_on_torch=False,
    encodes=False,  # it works on the pixels at each click
    score_name="colour separation",
)


def load(spec: Any, checkpoint_path: Path | None, device: str, precision: str) -> Any:
    """``backend.load`` (imports OpenCV)."""
    from .backend import load as load_backend

    return load_backend(spec, checkpoint_path, device, precision)
