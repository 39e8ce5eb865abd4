"""How long will encoding take here? Measured encode times per model, and estimates from them.

The record starts empty (nothing is assumed about this machine): every real, uncached encode
adds a measurement. An estimate for a model is, in order of preference:

1. its own measurements on this machine (median of the last few);
2. another model's measurement scaled by the ratio of their encoder costs (multiply-adds per
   1024 x 1024 image), preferring a model of the same family, whose speed per multiply-add is
   alike (across families it is only a rough guide: Hiera and ViT differ ~2x per multiply-add);
3. nothing: "no measurement yet".

Encoders resize every image to 1024 px, so the time does not depend on the image size.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

from sam_backends import UnknownModelError, get_spec
from sam_backends.families import get_family
from workbench.estimates import guess_text, measured_text

SLOW_SECONDS = 10.0  # above this, the page warns before running the model
KEEP = 5  # measurements kept per model


@dataclass(frozen=True)
class Estimate:
    """The expected encode time of one model.

    Attributes:
        seconds: the estimate, or None when there is nothing to base it on.
        basis: "measured" (this model, here), "scaled" (from ``reference``), or "none".
        reference: the measured model a scaled estimate comes from.
        rough: True when scaled across model families.
    """

    model_id: str
    seconds: float | None
    basis: str
    reference: str | None = None
    rough: bool = False

    @property
    def slow(self) -> bool:
        return self.seconds is not None and self.seconds >= SLOW_SECONDS

    def text(self, reference_name: str | None = None) -> str:
        """Short words for the page (``workbench.estimates``): "about 85 s (measured here)", or
        for a scaled estimate, which nobody measured, "roughly 86 s (a guess: …)"."""
        if self.seconds is None:
            return "no measurement yet"
        if self.basis == "measured":
            return measured_text(self.seconds)
        name = reference_name or self.reference
        across = ", across model families" if self.rough else ""
        return guess_text(self.seconds, f"scaled from {name}'s time by encoder cost{across}")


@lru_cache(maxsize=64)  # a bounded memo of catalogue facts (ids are few and never change)
def encoder_cost(model_id: str) -> tuple[str, float] | None:
    """(family, encoder G multiply-adds per 1024 x 1024 image) of a catalogue model, from its
    family's facts (``Family.encoder_gmacs``, counted on the official architectures, see
    SPEED-NOTES.md); None for a model without a count (no cross-model estimate)."""
    try:
        family = get_spec(model_id).family
    except UnknownModelError:
        return None
    cost = get_family(family).encoder_cost(model_id)
    return None if cost is None else (family, cost)


class EncodeTimings:
    """Measured encode seconds per model id on this machine; thread-safe, a few per model."""

    def __init__(self, keep: int = KEEP) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._seconds: dict[str, deque[float]] = {}

    def record(self, model_id: str, seconds: float) -> None:
        """Add one uncached encode's wall time (cache hits must not be recorded)."""
        if seconds <= 0:
            return
        with self._lock:
            self._seconds.setdefault(model_id, deque(maxlen=self._keep)).append(float(seconds))

    def measured(self, model_id: str) -> float | None:
        """Median of this model's recent measurements, or None."""
        with self._lock:
            values = list(self._seconds.get(model_id, ()))
        return statistics.median(values) if values else None

    def snapshot(self) -> dict[str, float]:
        """Median seconds for every measured model."""
        with self._lock:
            return {k: statistics.median(v) for k, v in self._seconds.items() if v}

    def typical_seconds(self, default: float = 2.0) -> float:
        """The median of every model's median: a rough "one job" duration for retry hints."""
        medians = list(self.snapshot().values())
        return statistics.median(medians) if medians else default

    def estimate(self, model_id: str) -> Estimate:
        """The expected encode time for ``model_id`` (see the module docstring)."""
        own = self.measured(model_id)
        if own is not None:
            return Estimate(model_id, own, "measured")
        own_cost = encoder_cost(model_id)
        if own_cost is None:
            return Estimate(model_id, None, "none")
        family, cost = own_cost
        references = [(ref, seconds, encoder_cost(ref)) for ref, seconds in
                      self.snapshot().items() if encoder_cost(ref) is not None]
        if not references:
            return Estimate(model_id, None, "none")
        # same family first, then the closest encoder cost (the ratio is most reliable there)
        ref, seconds, (ref_family, ref_cost) = min(
            references, key=lambda item: (item[2][0] != family, abs(item[2][1] - cost)),
        )
        return Estimate(model_id, seconds * cost / ref_cost, "scaled", ref,
                        rough=ref_family != family)
