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

The thread count is set for the decoding thread only (``sam_backends.speed.accel
.limit_this_thread``: OpenMP's and MKL's per-thread settings) and put back afterwards.

Where the work runs (``DecodeThread``, ``in_own_thread``). PyTorch's CPU wheels use GNU
OpenMP, which gives every thread that runs a parallel region a pool of helper threads that
lives as long as that thread. While the pools' threads outnumber the cores, libgomp's helpers
spin only 100 rounds at the end of a region (300,000 otherwise) and then sleep, so each of a
decode's hundreds of small regions waits for a wake-up. On a 2-core EPYC (AVX2), SAM 2.1 tiny,
clicks 150 ms apart: 35-37 ms a decode while one thread of the process had a pool, 54-63 ms
while a second one was alive (an API worker that encoded or loaded a model earlier), and
300 small additions took 17-19 ms against 39 ms. So the app keeps a single long-lived pool:
every CPU decode runs on one ``DecodeThread``, and encodes, model loads and many-object runs
run ``in_own_thread``, a thread that ends with the work and takes its pool with it.
(``OMP_WAIT_POLICY``/``GOMP_SPINCOUNT`` cannot lift the 100 rounds above 1,000, which did not
help the decode.)
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, TypeVar

from sam_backends.speed.give_way import GiveWay

T = TypeVar("T")

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


def in_own_thread(work: Callable[[], T], name: str = "samwb-work") -> T:
    """``work()`` on a new thread that ends with it; its result here, or its error raised here.

    Why: the OpenMP pool a heavy pass makes goes with its thread (module docstring), so it no
    longer slows every later decode. The caller's context variables (a request's progress
    reporting, say) travel with the work; costs about a tenth of a millisecond.
    """
    context = contextvars.copy_context()
    outcome: concurrent.futures.Future[T] = concurrent.futures.Future()

    def body() -> None:
        try:
            outcome.set_result(context.run(work))
        except BaseException as exc:  # noqa: BLE001 - raised in the caller by result()
            outcome.set_exception(exc)

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    thread.join()
    return outcome.result()


class SerialThread:
    """A thread of its own that runs the calls given to it one at a time, in the order asked.

    ``run(work)`` blocks its caller until ``work()`` ran there and returns its result or raises
    its error; called from that thread itself it runs at once (no deadlock). The thread starts
    at the first call; ``close()`` lets it finish what was asked and end.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._ident: int | None = None
        self._closed = False

    def run(self, work: Callable[[], T]) -> T:
        if threading.get_ident() == self._ident:
            return work()
        context = contextvars.copy_context()
        future = self._start().submit(context.run, work)
        return future.result()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _start(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"The {self._name} thread was closed: its app or job is "
                                   "shutting down.")
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    1, thread_name_prefix=self._name, initializer=self._remember_thread)
            return self._executor

    def _remember_thread(self) -> None:
        self._ident = threading.get_ident()


class DecodeThread(SerialThread):
    """The one long-lived thread that runs the app's CPU decodes (module docstring: one OpenMP
    pool for the whole app)."""

    def __init__(self, name: str = "samwb-decode") -> None:
        super().__init__(name)


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
        decoder: where ``decode`` runs CPU decodes (module docstring); None: in the caller.
    """

    def __init__(self, cores: int, heavy_running: Callable[[], int],
                 load: CpuLoad | None = None,
                 limit: Callable[[int], bool] | None = None,
                 give_way: GiveWay | None = None,
                 decoder: DecodeThread | None = None) -> None:
        self.cores = max(1, int(cores))
        self.heavy_running = heavy_running
        self.load = load
        self._limit = limit
        self.give_way = give_way
        self.decoder = decoder

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
        with self._urgent():
            with self._threads_for(self.decode_threads()) as count:
                yield count

    def decode(self, work: Callable[[], T], device: object = "cpu") -> T:
        """``work()`` (one decode) as ``for_decode`` runs it, but on the ``decoder`` thread when
        the model is on the CPU (elsewhere, and without a decoder, in the calling thread)."""
        if self.decoder is None or not str(device).startswith("cpu"):
            with self.for_decode():
                return work()
        with self._urgent():
            count = self.decode_threads()

            def limited() -> T:
                with self._threads_for(count):
                    return work()

            return self.decoder.run(limited)

    def _urgent(self) -> contextlib.AbstractContextManager[object]:
        return self.give_way.urgent() if self.give_way is not None else contextlib.nullcontext()

    @contextlib.contextmanager
    def _threads_for(self, count: int) -> Iterator[int]:
        """``count`` threads for the calling thread within the ``with`` body, then all cores."""
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
