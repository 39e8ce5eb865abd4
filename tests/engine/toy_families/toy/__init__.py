"""A toy model family for tests: one folder, found on ``sam_backends.families.__path__``.

It shows what a family must provide and nothing more: its facts (``FAMILY``) and ``load()``.
The model is numpy only (no torch, no weights): a mask is the pixels whose colour is close to
the colour under the prompt (see ``backend``). ``tests/engine/test_toy_family.py`` adds this
folder to the families' search path and one ``ModelSpec`` to the catalogue, and checks that
Segment, Compare and Everything take it with no other edit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sam_backends.families import Everything, Family

FAMILY = Family(
    name="toy",
    note="a toy colour-distance model (tests only)",
    runs_on_torch=False,
    everything=Everything(pred_iou_thresh=0.5),  # decoded through predict(): no SAM decoder
)


def load(spec: Any, checkpoint_path: Path | None, device: str, precision: str) -> Any:
    """A ``ToyBackend`` (needs no weights)."""
    from .backend import ToyBackend

    return ToyBackend(spec, device, precision)
