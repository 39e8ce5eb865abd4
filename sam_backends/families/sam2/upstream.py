"""SAM 2.1 as upstream ships it: the reference that tests and benchmarks compare the backend with.

Random-weight models (``sam_backends.testing``), the parity tests and the benchmarks build the
upstream architecture, predictor and automatic mask generator through here, so they ask the
family instead of branching on its name. Imports ``sam2`` (hydra, torch) when called.
"""

from __future__ import annotations

from typing import Any

CHECKPOINT_KEY: str | None = "model"  # the official file nests the state dict under "model"
CHECKPOINT_SUFFIX = ".pt"


def build_architecture(spec: Any, checkpoint: str | None = None) -> Any:
    """``build_sam2(config, overrides)`` on the CPU: default (random) initialisation, or
    upstream's own loading of ``checkpoint`` (benchmarks only)."""
    from sam2.build_sam import build_sam2

    return build_sam2(spec.arch["config"], ckpt_path=checkpoint, device="cpu",
                      hydra_overrides_extra=list(spec.arch.get("overrides", ())))


def image_predictor(model: Any) -> Any:
    """Upstream's ``SAM2ImagePredictor`` on ``model``."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    return SAM2ImagePredictor(model)


def automatic_generator() -> Any:
    """Upstream's ``SAM2AutomaticMaskGenerator`` class."""
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

    return SAM2AutomaticMaskGenerator
