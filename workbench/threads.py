"""How many threads a click's decode gets: all cores when the machine is quiet, one when it
is not.

Why: PyTorch's CPU kernels run in OpenMP parallel regions that end at a barrier, so a region
on two threads waits for the slower of them. When something else holds one of the cores (an
image encode in this app, a video frame, another process), the click's second thread is
descheduled for a whole time slice and the click waits with it. Measured on a 2-core EPYC
(SAM 2.1 tiny, engine only): quiet p50 18 ms / p95 29 ms on 2 threads; with one core busy,
p50 40 ms / p95 821 ms on 2 threads, but p50 28 / p95 29 ms on 1 thread. So a decode runs on
every core only while nothing else competes, and on one thread otherwise; the other work keeps
its own threads (a decode is tens of milliseconds against an encode's seconds).

"Something else" is read two ways, both cheap enough to ask before every decode:

* this app's heavy work: many-object searches (segment everything, text prompts) running in
  their lane (``heavy_running``, the lanes' own counts). Image encodes and video frames on the
  CPU are not counted: they give way (``sam_backends.speed.give_way``), pausing at their next
  operation while a decode runs, so the decode has every core to itself. A decode run
  through ``for_decode`` is that urgent work. (On a 2-core EPYC with AVX2, SAM 2.1
  tiny, ``benchmarks/bench_threads.py``: click p95 with an encode running 134 ms on one thread
  against a 41 ms quiet p95; 60 ms with the encode giving way.)
* other processes: the CPU time the whole machine spent busy minus this process's own, over
  the last sampling window (``CpuLoad``, from ``/proc/stat`` and ``/proc/self/stat``; absent
  files read as "quiet", so other systems keep today's behaviour).

The thread count is set for the calling thread only (``sam_backends.speed.accel
.limit_this_thread``: OpenMP's per-thread setting) and put back afterwards, so an API worker
thread that decodes next is not left on one thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from sam_backends.speed.give_way import GiveWay

BUSY_CORES = 0.5  # other processes using at least this many cores count as "not quiet"
SAMPLE_S = 0.25  # /proc is read again at most this often


def decode_cores() -> int:
    """The threads a decode gets on a quiet machine: the count the engine's thread policy
    applies (``SAM_THREADS``, else the cores this process may use)."""
    from sam_backends.errors import SamBackendError
    from sam_backends.speed.accel import available_cores, thread_count

    try:
        return thread_count()
    except SamBackendError:  # a bad SAM_THREADS: the engine refuses it when it loads
        return available_cores()


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds: the whole machine busy, this process, and when it was read."""

    machine_busy_s: float
    process_s: float
    at: float


def _read_sample() -> CpuSample | None:
    """The machine's and this process's CPU seconds now; None where ``/proc`` is missing."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()[1:]
        with open("/proc/self/stat", encoding="ascii") as handle:
            own = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    values = [int(v) for v in fields[:8]]
    idle = values[3] + values[4]  # idle + iowait
    busy = sum(values) - idle
    process = int(own[11]) + int(own[12])  # utime + stime (fields 14 and 15 of the file)
    return CpuSample(busy / tick, process / tick, time.monotonic())


class CpuLoad:
    """How many cores other processes kept busy lately (see the module docstring).

    Sampled lazily: a reading older than ``SAMPLE_S`` is replaced on the next question, and
    the answer is the average over the time between the two readings.
    """

    def __init__(self, read: Callable[[], CpuSample | None] = _read_sample,
                 sample_s: float = SAMPLE_S) -> None:
        self._read = read
        self.sample_s = sample_s
        self._lock = threading.Lock()
        self._last = read()
        self._others = 0.0

    def others_busy_cores(self) -> float:
        """Cores' worth of CPU that other processes used over the last window (>= 0)."""
        with self._lock:
            last = self._last
            if last is None:
                return 0.0
            now = time.monotonic()
            if now - last.at < self.sample_s:
                return self._others
            sample = self._read()
            if sample is None:
                return self._others
            wall = sample.at - last.at
            if wall > 0:
                others = ((sample.machine_busy_s - last.machine_busy_s)
                          - (sample.process_s - last.process_s)) / wall
                self._others = max(0.0, others)
            self._last = sample
            return self._others


class ThreadPolicy:
    """Threads per decode (see the module docstring); one per ``AppContext``.

    Args:
        cores: the threads a decode gets on a quiet machine (``accel.thread_count()``).
        heavy_running: how many heavy jobs of this app are running now that do not give way
            to decodes (an encode inside ``give_way.giving_way()`` pauses while a decode runs,
            so it leaves the decode every core and is not counted).
        load: other processes' load (``CpuLoad``); None: not watched.
        limit: sets the calling thread's thread count (``accel.limit_this_thread``).
        give_way: decodes run as its urgent work (``sam_backends.speed.give_way``); None: no
            encode gives way.
    """

    def __init__(self, cores: int, heavy_running: Callable[[], int],
                 load: CpuLoad | None = None,
                 limit: Callable[[int], bool] | None = None,
                 give_way: GiveWay | None = None) -> None:
        self.cores = max(1, int(cores))
        self.heavy_running = heavy_running
        self.load = load
        self._limit = limit
        self.give_way = give_way

    def decode_threads(self) -> int:
        """All cores when nothing else competes for them, else 1."""
        if self.cores == 1:
            return 1
        if self.heavy_running() > 0:
            return 1
        if self.load is not None and self.load.others_busy_cores() >= BUSY_CORES:
            return 1
        return self.cores

    @contextlib.contextmanager
    def for_decode(self) -> Iterator[int]:
        """Run the ``with`` body (one or more decodes) on ``decode_threads()`` threads of the
        calling thread, as urgent work that encodes give way to, then give the thread all cores
        back."""
        urgent = self.give_way.urgent() if self.give_way is not None else contextlib.nullcontext()
        with urgent:
            count = self.decode_threads()
            limit = self._limit_fn()
            changed = count != self.cores and limit(count)
            try:
                yield count
            finally:
                if changed:
                    limit(self.cores)

    def _limit_fn(self) -> Callable[[int], bool]:
        if self._limit is None:
            from sam_backends.speed.accel import limit_this_thread

            self._limit = limit_this_thread
        return self._limit
