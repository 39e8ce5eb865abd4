"""Bounded work: a lane runs a few jobs, lets a few wait, and refuses the rest at once.

Why not only Gradio's queue: its ``max_size`` counts every event of every user together, so a
burst of API calls would fill it and refuse the clicks of people using the page. A lane bounds
one kind of work (the API's, the encoder's) on its own, answers "busy, retry in N s" the moment
it is full (no caller hangs on heartbeats), and gives each job a deadline that is checked
between steps, since a running encoder cannot be interrupted.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator


class ServerBusyError(Exception):
    """The lane is full; ``retry_after_s`` is an honest estimate of when to try again."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RequestTimeoutError(Exception):
    """A job ran past its deadline and was stopped between two steps."""


class CallerGoneError(Exception):
    """The caller disconnected while its job waited; nobody would read the answer."""


POLL_S = 0.25  # how often a waiting job looks whether its caller is still there


@dataclass
class Deadline:
    """A point in time after which a job stops at its next step (``check``)."""

    seconds: float
    what: str = "The request"
    clock: Callable[[], float] = time.monotonic
    start: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.start < 0:
            self.start = self.clock()

    @property
    def remaining(self) -> float:
        return self.seconds - (self.clock() - self.start)

    def check(self, step: str = "") -> None:
        if self.remaining <= 0:
            during = f" (while {step})" if step else ""
            raise RequestTimeoutError(
                f"{self.what} took longer than its limit of {self.seconds:g} s{during} and was "
                "stopped. Try a smaller image or a lighter model, or retry when the server is "
                "less busy.")


class WorkLane:
    """At most ``max_running`` jobs at once and ``max_waiting`` queued behind them.

    ``typical_s`` (a callable) estimates one job's duration, for the retry hint.
    """

    def __init__(self, name: str, max_running: int = 1, max_waiting: int = 8,
                 typical_s: Callable[[], float] | None = None) -> None:
        if max_running < 1 or max_waiting < 0:
            raise ValueError("a lane needs max_running >= 1 and max_waiting >= 0")
        self.name = name
        self.max_running = max_running
        self.max_waiting = max_waiting
        self._typical_s = typical_s or (lambda: 2.0)
        self._condition = threading.Condition()
        self._running = 0
        self._waiting = 0
        self.refused = 0  # jobs refused since start (for the load benchmark and /readyz)

    @property
    def running(self) -> int:
        with self._condition:
            return self._running

    @property
    def waiting(self) -> int:
        with self._condition:
            return self._waiting

    def retry_after_s(self) -> int:
        """Seconds until a slot is likely free: the work ahead of a newcomer, at least 1 s."""
        with self._condition:
            return self._retry_locked()

    @contextlib.contextmanager
    def admit(self, deadline: Deadline | None = None,
              caller_gone: Callable[[], bool] | None = None) -> Iterator[None]:
        """Run the ``with`` body in a slot: refuse at once when the lane is full, wait at most
        until ``deadline`` otherwise, and give up the wait when ``caller_gone()`` turns True.

        Raises:
            ServerBusyError: ``max_waiting`` jobs are already waiting.
            RequestTimeoutError: the deadline passed while waiting.
            CallerGoneError: the caller disconnected while waiting.
        """
        with self._condition:
            if self._running >= self.max_running and self._waiting >= self.max_waiting:
                self.refused += 1
                retry = self._retry_locked()
                raise ServerBusyError(
                    f"The server is busy ({self._running} running, {self._waiting} waiting for "
                    f"{self.name}). Retry in about {retry} s.", retry)
            self._waiting += 1
            try:
                while self._running >= self.max_running:
                    timeout = None if deadline is None else deadline.remaining
                    if timeout is not None and timeout <= 0:
                        deadline.check(f"waiting for {self.name}")
                    if caller_gone is not None:
                        if caller_gone():
                            raise CallerGoneError(f"The caller left while waiting for "
                                                  f"{self.name}.")
                        timeout = POLL_S if timeout is None else min(timeout, POLL_S)
                    self._condition.wait(timeout)
            finally:
                self._waiting -= 1
            self._running += 1
        try:
            yield
        finally:
            with self._condition:
                self._running -= 1
                self._condition.notify()

    def _retry_locked(self) -> int:
        rounds = math.ceil((self._running + self._waiting) / self.max_running)
        return max(1, math.ceil(rounds * max(0.1, float(self._typical_s()))))
