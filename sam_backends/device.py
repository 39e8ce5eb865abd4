"""Device and precision, chosen in one place.

Order of preference: explicit argument, then environment variable, then the best available
(cuda, then mps, then cpu). Imports torch lazily so listing models stays cheap.
"""

from __future__ import annotations

import os

DEVICE_ENV = "SAM_DEVICE"
PRECISION_ENV = "SAM_PRECISION"
EXACT_PRECISION = "fp32"
# The fast path with fp32 arithmetic: the fast decoder, fused attention and OpenCV upscaling
# (``families/sam1/fast.py``), for CPUs where bf16 is emulated. Close to exact, not identical.
FAST_FP32_PRECISION = "fp32-fast"
PRECISIONS = ("auto", "fp32", FAST_FP32_PRECISION, "bf16", "fp16")


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


def resolve_precision(requested: str | None, device: str,
                      offered: tuple[str, ...] | None = None) -> str:
    """Return the concrete precision for ``device``.

    "fp32" is the exact mode whose masks equal the upstream predictors'. "auto" (the default)
    picks the fastest faithful mode for the hardware (``accel.fastest_precision``) among
    ``offered``, the precisions the model's family runs (``Family.precisions``): a family
    without that fast path runs exact fp32 instead. An explicit precision is passed through
    (the family's loader refuses one it does not run, with the ones it does).
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
        fastest = fastest_precision(device)
        if offered is not None and fastest not in offered:
            return EXACT_PRECISION
        return fastest
    return choice
