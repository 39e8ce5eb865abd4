"""How long will it take? Every "about … left" and "expected …" the app shows is worded here.

Estimates were wrong by up to 60x when they came from a typical time of *other* work (one
model's encode quoted for another, the first fast frames of a track taken as its pace, one
model's pace quoted for a two-model comparison). So an estimate here is one of:

* **measured in this run**: the median seconds per step of this run's latest steps (a fast
  first frame or a slow warm-up weighs little), times the steps left; updated every step;
* **measured here before**: the pace of an earlier run of the same model on this machine
  (``PaceHistory``), until this run has measured its own;
* **a guess**, worded as one: "roughly 40 s (a guess: not measured here yet)";
* nothing: "time left: known after the first frames".

The clock is injectable (``RunEstimate(clock=...)``) so tests need no sleeping.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from typing import Callable

WINDOW = 8  # steps whose median is this run's pace
KEEP = 5  # earlier runs remembered per model


def duration_text(seconds: float) -> str:
    """"400 ms", "2.5 s", "40 s", "2 min 05 s", "1 h 03 min": what a person reads at a glance."""
    if seconds < 1.0:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10.0:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 90:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def measured_text(seconds: float) -> str:
    """A duration measured on this machine: "about 14 s (measured here)"."""
    return f"about {duration_text(seconds)} (measured here)"


def guess_text(seconds: float, basis: str = "") -> str:
    """A duration nobody measured here, worded as a guess (``basis`` says what it comes from)."""
    why = f"; {basis}" if basis else ""
    return f"roughly {duration_text(seconds)} (a guess: not measured here yet{why})"


class PaceHistory:
    """Measured seconds per step (a tracked frame) per model on this machine; thread-safe.

    Only whole runs are recorded, as seconds / steps, so the next run of that model can say
    how long it should take before its own first frame."""

    def __init__(self, keep: int = KEEP) -> None:
        self._lock = threading.Lock()
        self._paces: dict[str, deque[float]] = {}
        self._keep = keep

    def record(self, key: str, seconds: float, steps: int) -> None:
        if steps <= 0 or seconds <= 0:
            return
        with self._lock:
            self._paces.setdefault(key, deque(maxlen=self._keep)).append(seconds / steps)

    def pace(self, key: str) -> float | None:
        """The median seconds per step of the recent runs of ``key``, or None."""
        with self._lock:
            values = list(self._paces.get(key, ()))
        return statistics.median(values) if values else None


class RunEstimate:
    """The time left of a run of ``total`` steps, re-estimated after every step.

    ``pace_before``: seconds per step measured here earlier (``PaceHistory.pace``), used until
    this run has its own; ``guess=True`` marks it as a guess instead. ``later``: how many of
    the ``total`` steps are other work done afterwards (the second model of a comparison),
    priced at ``later_pace`` when that was measured here, else at this part's pace and worded
    as a guess; ``new_pace`` starts that part, whose pace is then measured afresh.
    """

    def __init__(self, total: int, pace_before: float | None = None, guess: bool = False,
                 unit: str = "frame", clock: Callable[[], float] = time.monotonic,
                 later: int = 0, later_pace: float | None = None) -> None:
        self.total = max(0, int(total))
        self.done = 0
        self.unit = unit
        self._clock = clock
        self._steps: deque[float] = deque(maxlen=WINDOW)
        self._last = clock()
        self._before, self._guess = pace_before, guess
        self._later, self._later_pace = max(0, int(later)), later_pace

    def start(self) -> None:
        """Restart the clock: what came before (waiting, loading a model) is not a step."""
        self._last = self._clock()

    def step(self, count: int = 1) -> None:
        """``count`` steps just finished (their time is split evenly between them)."""
        now = self._clock()
        if count > 0:
            each = (now - self._last) / count
            self._steps.extend([each] * min(count, WINDOW))
            self.done = min(self.total, self.done + count)
        self._last = now

    def new_pace(self) -> None:
        """The ``later`` part starts (another model): its pace is measured afresh; until then
        it is ``later_pace`` (measured here before) or the finished part's (a guess)."""
        finished = self.pace if self.pace is not None else self._before
        measured = self._later_pace is not None
        self._before = self._later_pace if measured else finished
        self._guess = not measured
        self._steps.clear()
        self._later, self._later_pace = 0, None
        self.start()

    @property
    def pace(self) -> float | None:
        """Seconds per step measured in this run (median of the latest), or None."""
        return statistics.median(self._steps) if self._steps else None

    @property
    def left(self) -> int:
        return self.total - self.done

    def seconds_left(self) -> float | None:
        now = self.pace if self.pace is not None else self._before
        if now is None:
            return None
        later = min(self._later, self.left)
        rest = self._later_pace if self._later_pace is not None else now
        return now * (self.left - later) + rest * later

    def text(self) -> str:
        """"about 18 s left (0.45 s a frame, measured in this run)", a labelled guess, or
        "time left: known after the first frames"; "" when nothing is left."""
        if self.left <= 0:
            return ""
        seconds = self.seconds_left()
        if seconds is None:
            return f"time left: known after the first {self.unit}s"
        amount = duration_text(seconds)
        guessed = (self.pace is None and self._guess) or (
            self._later > 0 and self._later_pace is None)
        if guessed:
            return f"roughly {amount} left (a guess: not measured here yet)"
        if self.pace is not None:
            return (f"about {amount} left ({duration_text(self.pace)} a {self.unit}, "
                    "measured in this run)")
        return f"about {amount} left (measured here before)"
