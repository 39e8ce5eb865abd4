"""Device and precision, chosen in one place.

Order of preference: explicit argument, then environment variable, then the best available
(cuda, then mps, then cpu). Imports torch lazily so listing models stays cheap.
"""

from __future__ import annotations

import os

DEVICE_ENV = "SAM_DEVICE"
PRECISION_ENV = "SAM_PRECISION"
EXACT_PRECISION = "fp32"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(requested: str | None = None) -> str:
    """Return "cuda", "mps" or "cpu" (``cuda:N`` is kept as given)."""
    choice = (requested or os.environ.get(DEVICE_ENV) or "auto").strip().lower()
    import torch

    if choice == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if choice.startswith("cuda") and not torch.cuda.is_available():
        from .errors import SamBackendError

        raise SamBackendError(
            f"Device {choice!r} was requested but no CUDA GPU is available; "
            f"use --device cpu (or unset {DEVICE_ENV})."
        )
    if choice == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        from .errors import SamBackendError

        raise SamBackendError("Device 'mps' was requested but Apple MPS is not available.")
    if choice not in ("cpu", "mps") and not choice.startswith("cuda"):
        from .errors import SamBackendError

        raise SamBackendError(f"Unknown device {choice!r}; use auto, cuda, mps or cpu.")
    return choice


def resolve_precision(requested: str | None, device: str) -> str:
    """Return the concrete precision for ``device``.

    "fp32" is the exact mode whose masks equal the upstream predictors'. "auto" (the default)
    picks the fastest faithful mode for the hardware; see ``accel.fastest_precision``.
    """
    choice = (requested or os.environ.get(PRECISION_ENV) or "auto").strip().lower()
    if choice not in PRECISIONS:
        from .errors import SamBackendError

        raise SamBackendError(
            f"Unknown precision {choice!r}; use one of {', '.join(PRECISIONS)}."
        )
    if choice == "auto":
        try:
            from .speed.accel import fastest_precision
        except ImportError:  # fast paths not available: stay exact
            return EXACT_PRECISION
        return fastest_precision(device)
    return choice
