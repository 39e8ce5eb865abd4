"""Bounded work: a lane runs a few jobs, lets a few wait, and refuses the rest at once.

Why not only Gradio's queue: its ``max_size`` counts every event of every user together, so a
burst of API calls would fill it and refuse the clicks of people using the page. A lane bounds
one kind of work (the API's, the encoder's) on its own, answers "busy, retry in N s" the moment
it is full (no caller hangs on heartbeats), and gives each job a deadline that is checked
between steps, since a running encoder cannot be interrupted.

Fair to every caller: a lane is shared by everyone, so it is served round-robin by ``client``
(a page session, an API key, an address): whoever was served longest ago goes next, so a polite
caller waits for at most one job of each other active caller, however many a flooding one
sends. Each client may have only ``per_client_waiting`` jobs waiting (more are refused for that
client alone, never for the others), and a job admitted with a ``slot`` (e.g. "hover") replaces
the same client's older waiting job of that slot, which ends with ``SupersededError`` before any
model work is spent on it.

Foreground first: every lane of the app shares one ``Activity``, a counter of the people's work
in flight (waiting or running: clicks, hovers, encodes, API calls, tracking). Background work
(``workbench.projects.prefetch``) starts only when it reads zero and pauses between encoder
blocks while it is not.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterator


class ServerBusyError(Exception):
    """The lane is full; ``retry_after_s`` is an honest estimate of when to try again."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SupersededError(Exception):
    """A newer job of the same client and slot took this waiting job's place."""


class RequestTimeoutError(Exception):
    """A job ran past its deadline and was stopped between two steps."""


class CallerGoneError(Exception):
    """The caller disconnected while its job waited; nobody would read the answer."""


POLL_S = 0.25  # how often a waiting job looks whether its caller is still there
_SERVED_MEMORY = 4096  # clients whose last turn a lane remembers (older ones count as new)


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


class Activity:
    """How much foreground work is in flight in the app (one per ``AppContext``); cheap: a
    counter under a condition variable.

    ``active()`` counts the ``with`` body (a lane counts each job from the moment it asks for
    a slot until it leaves, so a waiting click counts too). ``wanting(key)`` marks an embedding
    a person is waiting for: background work on that key is no longer background, so it stops
    pausing (a person who opens the image being prefetched waits for that encode, never for a
    paused one).
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._count = 0
        self._wanted: Counter[Hashable] = Counter()

    @property
    def count(self) -> int:
        """Foreground jobs in flight now (0: the app is quiet)."""
        with self._condition:
            return self._count

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Count the ``with`` body as foreground work."""
        with self._condition:
            self._count += 1
        try:
            yield
        finally:
            with self._condition:
                self._count -= 1
                self._condition.notify_all()

    @contextlib.contextmanager
    def wanting(self, key: Hashable) -> Iterator[None]:
        """Mark ``key`` as wanted by a person during the ``with`` body (see the class)."""
        with self._condition:
            self._wanted[key] += 1
            self._condition.notify_all()
        try:
            yield
        finally:
            with self._condition:
                self._wanted[key] -= 1
                if self._wanted[key] <= 0:
                    del self._wanted[key]

    def is_wanted(self, key: Hashable) -> bool:
        with self._condition:
            return key in self._wanted

    def wait_quiet(self, key: Hashable | None = None,
                   stop: Callable[[], bool] | None = None, timeout: float | None = None
                   ) -> bool:
        """Block while foreground work is in flight, unless ``key`` is wanted by a person or
        ``stop()`` turns True; True when it may go on (quiet or wanted), False on stop or
        timeout. ``stop`` is polled every ``POLL_S`` (and at every change of the counter)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while True:
                if stop is not None and stop():
                    return False
                if self._count <= 0 or (key is not None and key in self._wanted):
                    return True
                wait = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
                if wait <= 0:
                    return False
                self._condition.wait(wait)


@dataclass
class _Ticket:
    """One job waiting for a slot (``granted`` once the lane chose it)."""

    client: str | None
    slot: str | None
    order: int
    granted: bool = False
    superseded: bool = False


class WorkLane:
    """At most ``max_running`` jobs at once and ``max_waiting`` queued behind them, served
    round-robin by client (see the module docstring).

    ``typical_s`` (a callable) estimates one job's duration, for the retry hint.
    ``per_client_waiting``: how many jobs one client may have waiting (None: no bound; jobs
    without a client are only bounded by ``max_waiting``, and share one turn).
    ``activity``: the app's foreground counter; each admitted job counts there while it waits
    and runs (refused jobs never count).
    """

    def __init__(self, name: str, max_running: int = 1, max_waiting: int = 8,
                 typical_s: Callable[[], float] | None = None,
                 per_client_waiting: int | None = None,
                 activity: Activity | None = None) -> None:
        if max_running < 1 or max_waiting < 0:
            raise ValueError("a lane needs max_running >= 1 and max_waiting >= 0")
        if per_client_waiting is not None and per_client_waiting < 1:
            raise ValueError("per_client_waiting must be at least 1 (or None)")
        self.name = name
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.per_client_waiting = per_client_waiting
        self.activity = activity
        self._typical_s = typical_s or (lambda: 2.0)
        self._condition = threading.Condition()
        self._running = 0
        self._queue: list[_Ticket] = []
        self._orders = itertools.count()
        self._served: OrderedDict[str | None, int] = OrderedDict()  # client -> last turn
        self._turns = itertools.count()
        self.refused = 0  # jobs refused since start (for the load benchmark and /readyz)
        self.superseded = 0  # waiting jobs replaced by a newer one of the same client and slot

    @property
    def running(self) -> int:
        with self._condition:
            return self._running

    @property
    def waiting(self) -> int:
        with self._condition:
            return len(self._queue)

    def retry_after_s(self, client: str | None = None) -> int:
        """Seconds until a slot is likely free for ``client``: the work ahead of it (with
        round-robin, one job per other waiting client plus the running ones), at least 1 s."""
        with self._condition:
            return self._retry_locked(client)

    @contextlib.contextmanager
    def admit(self, deadline: Deadline | None = None,
              caller_gone: Callable[[], bool] | None = None,
              client: str | None = None, slot: str | None = None,
              patient: bool = False) -> Iterator[None]:
        """Run the ``with`` body in a slot: refuse at once when the lane (or this client's
        share of it) is full, wait at most until ``deadline`` otherwise, and give up the wait
        when ``caller_gone()`` turns True.

        ``patient``: wait for a turn even when ``max_waiting`` others already wait (for
        callers bounded elsewhere, e.g. the REST job workers, so a queued job waits for its
        turn instead of failing "busy").

        Raises:
            ServerBusyError: ``max_waiting`` jobs are already waiting, or ``client`` already
                has ``per_client_waiting`` waiting (never when ``patient``).
            SupersededError: a newer job of the same ``client`` and ``slot`` replaced this one
                while it waited.
            RequestTimeoutError: the deadline passed while waiting.
            CallerGoneError: the caller disconnected while waiting.
        """
        with self._condition:
            ticket = self._enqueue_locked(client, slot, patient)
        counted = self.activity.active() if self.activity is not None else contextlib.nullcontext()
        with counted:
            with self._admitted(ticket, deadline, caller_gone):
                yield

    @contextlib.contextmanager
    def _admitted(self, ticket: _Ticket, deadline: Deadline | None,
                  caller_gone: Callable[[], bool] | None) -> Iterator[None]:
        """Wait for ``ticket``'s turn, hold the slot during the ``with`` body, pass it on."""
        with self._condition:
            try:
                self._wait_locked(ticket, deadline, caller_gone)
            except BaseException:
                if ticket in self._queue:
                    self._queue.remove(ticket)
                if ticket.granted:  # chosen just as it gave up: pass the turn on
                    self._running -= 1
                    self._grant_locked()
                raise
        try:
            yield
        finally:
            with self._condition:
                self._running -= 1
                self._grant_locked()

    def _enqueue_locked(self, client: str | None, slot: str | None,
                        patient: bool = False) -> _Ticket:
        if client is not None and slot is not None:
            for older in [t for t in self._queue if t.client == client and t.slot == slot]:
                older.superseded = True
                self._queue.remove(older)
                self.superseded += 1
            self._condition.notify_all()
        mine = sum(1 for t in self._queue if client is not None and t.client == client)
        if (not patient and client is not None and self.per_client_waiting is not None
                and mine >= self.per_client_waiting
                and self._running + len(self._queue) >= self.max_running):
            self.refused += 1
            retry = self._retry_locked(client)
            raise ServerBusyError(
                f"This page or key already has {mine} request(s) waiting for {self.name}; "
                f"wait for them to finish. Retry in about {retry} s.", retry)
        if not patient and self._running + len(self._queue) >= self.max_running + \
                self.max_waiting:
            self.refused += 1
            retry = self._retry_locked(client)
            raise ServerBusyError(
                f"The server is busy ({self._running} running, {len(self._queue)} waiting for "
                f"{self.name}). Retry in about {retry} s.", retry)
        ticket = _Ticket(client, slot, next(self._orders))
        self._queue.append(ticket)
        self._grant_locked()
        return ticket

    def _wait_locked(self, ticket: _Ticket, deadline: Deadline | None,
                     caller_gone: Callable[[], bool] | None) -> None:
        while not ticket.granted:
            if ticket.superseded:
                raise SupersededError(f"A newer request replaced this one in {self.name}.")
            timeout = None if deadline is None else deadline.remaining
            if timeout is not None and timeout <= 0:
                deadline.check(f"waiting for {self.name}")
            if caller_gone is not None:
                if caller_gone():
                    raise CallerGoneError(f"The caller left while waiting for {self.name}.")
                timeout = POLL_S if timeout is None else min(timeout, POLL_S)
            self._condition.wait(timeout)

    def _grant_locked(self) -> None:
        """Give free slots to the waiting clients served longest ago (FIFO within a client)."""
        while self._running < self.max_running and self._queue:
            ticket = min(self._queue, key=lambda t: (self._served.get(t.client, -1), t.order))
            self._queue.remove(ticket)
            ticket.granted = True
            self._running += 1
            self._served[ticket.client] = next(self._turns)
            self._served.move_to_end(ticket.client)
            while len(self._served) > _SERVED_MEMORY:  # bounded: forget the longest-served
                self._served.popitem(last=False)
            self._condition.notify_all()

    def _retry_locked(self, client: str | None = None) -> int:
        ahead = self._running + len(self._queue)
        if client is not None:  # round-robin: one turn per other waiting client per own job
            others = len({t.client for t in self._queue if t.client != client})
            mine = sum(1 for t in self._queue if t.client == client)
            ahead = min(ahead, self._running + mine + others * (mine + 1))
        rounds = math.ceil(max(1, ahead) / self.max_running)
        return max(1, math.ceil(rounds * max(0.1, float(self._typical_s()))))
