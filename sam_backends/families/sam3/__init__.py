"""SAM 3, through ``transformers``: text prompts, points and boxes (``backend.Sam3Backend``).

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
)


def load(spec: Any, folder: Path, device: str, precision: str) -> Any:
    """``backend.load``: the model folder read by transformers (imports torch)."""
    from .backend import load as load_backend

    return load_backend(spec, folder, device, precision)
