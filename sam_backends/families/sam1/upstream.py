"""SAM 1 as upstream ships it: the reference that tests and benchmarks compare the backend with.

Random-weight models (``sam_backends.testing``), the parity tests and the benchmarks build the
upstream architecture, predictor and automatic mask generator through here, so they ask the
family instead of branching on its name. Imports ``segment_anything`` (and torch) when called.
"""

from __future__ import annotations

from typing import Any

CHECKPOINT_KEY: str | None = None  # the official file is the state dict itself
CHECKPOINT_SUFFIX = ".pth"


def build_architecture(spec: Any, checkpoint: str | None = None) -> Any:
    """``_build_sam(**spec.arch)``: default (random) initialisation, or upstream's own loading
    of ``checkpoint`` (benchmarks only: it does not use ``weights_only``)."""
    from segment_anything.build_sam import _build_sam

    return _build_sam(**spec.arch, checkpoint=checkpoint)


def image_predictor(model: Any) -> Any:
    """Upstream's ``SamPredictor`` on ``model``."""
    from segment_anything import SamPredictor

    return SamPredictor(model)


def automatic_generator() -> Any:
    """Upstream's ``SamAutomaticMaskGenerator`` class."""
    from segment_anything import SamAutomaticMaskGenerator

    return SamAutomaticMaskGenerator
