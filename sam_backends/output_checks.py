"""Refusing model outputs that contain NaN or Inf, instead of serving them.

Why: damaged weights (or an overflow in a reduced precision) do not raise anywhere in PyTorch;
the model returns NaN features, the scores become NaN (``"score": null`` in JSON) and every
mask is empty. One ``isfinite`` reduction per encode and per click costs microseconds next to
the network itself, and turns a silent wrong answer into a message that says what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .device import EXACT_PRECISION
from .errors import ModelOutputError
from .registry import ModelSpec


def require_finite(spec: ModelSpec, precision: str, stage: str, tensors: Iterable[Any]) -> None:
    """Raise ``ModelOutputError`` unless every tensor (None entries skipped) is finite.

    Args:
        stage: what produced them, for the message: "image embedding" or "masks and scores".

    One device synchronisation in all (the per-tensor results are reduced on the device).
    """
    import torch

    checks = [torch.isfinite(t).all() for t in tensors if t is not None]
    if not checks or bool(torch.stack(checks).all()):
        return
    model_id = spec.model_id
    hint = ""
    if precision != EXACT_PRECISION:  # a reduced precision can overflow where fp32 does not
        hint = (f" If it happens only in {precision}, use precision {EXACT_PRECISION!r} "
                f"(--precision {EXACT_PRECISION}, env SAM_PRECISION).")
    raise ModelOutputError(
        f"{spec.display_name} ({model_id}, {precision}) produced invalid numbers (NaN/Inf) in "
        f"its {stage} for this image, so no result is returned. Its weights are probably "
        f"damaged: re-download them with: python -m sam_backends download {model_id} --force "
        f"(or, for a custom checkpoint, check that file).{hint}"
    )


def feature_tensors(features: Any) -> list[Any]:
    """The tensors in a (nested) mapping / tuple of features, for ``require_finite``."""
    if hasattr(features, "dtype") and hasattr(features, "shape"):
        return [features]
    if isinstance(features, Mapping):
        values: Iterable[Any] = features.values()
    elif isinstance(features, (list, tuple)):
        values = features
    else:
        return []
    return [t for value in values for t in feature_tensors(value)]
