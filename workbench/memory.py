"""One memory budget for the whole app, and the shares each holder of memory takes from it.

Why: a CPU Space or a small server has a fixed amount of memory, and the app holds it in
several places that each had their own bound (the embedding cache, page sessions, the REST
image store) or none (the models' weights, a request's working memory). ``--memory-budget
6GiB`` (env ``SAMWB_MEMORY_BUDGET``) is the one number; ``plan_memory`` splits it:

    budget = base + weights + work + remainder
    base      BASE_BYTES: the interpreter, PyTorch, Gradio and OpenCV, loaded and idle
    weights   the offered models that can be loaded at once (``max_loaded_models`` largest
              checkpoints; weights held in fp32 are about their file's size)
    work      one request's working memory: a "segment everything" run's bound
              (``--everything-max-bytes``) plus ENCODE_WORK_BYTES for an encoder's activations
    remainder split: CACHE_SHARE for the embedding cache (its bound is the share divided by
              CACHE_RESIDENT_FACTOR, what a counted byte costs resident), SESSION_SHARE for the
              page sessions (images, masks, undo history; ``SessionRegistry.max_bytes``) and
              STORE_SHARE for the REST API's stored images.

Not in a share: REST job results, bounded by count (``server.rest.jobs``: at most ``max_jobs``
unfinished and ``max_history`` finished per key, forgotten after ``keep_s``; masks as RLE,
overlays and cut-outs as PNG data URIs unless the request asks ``output: url``, whose files go
to the temp folder under its own bound on disk), and the video trackers' weights (loaded on
the first track; their sessions' state counts against the sessions' share).

A share given explicitly (``--cache-bytes``) is kept, the others take what is left; a budget too
small for the fixed parts is refused at start with the numbers and what to change. Without a
budget nothing changes: each holder keeps its own default bound.

``BASE_BYTES`` and ``ENCODE_WORK_BYTES`` are measured upper values, ``CACHE_RESIDENT_FACTOR`` an
allowance; ``benchmarks/bench_soak.py`` checks the whole: resident memory under the budget.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Callable

from sam_backends.cache import parse_bytes

MEMORY_BUDGET_ENV = "SAMWB_MEMORY_BUDGET"
MIB = 1 << 20
# An upper value: the app at start is 239 MB (bench_soak.py); the rest is room for what the first
# requests bring in (PyTorch's kernels and thread pools, OpenCV, Gradio's per-route state).
BASE_BYTES = 900 * MIB
ENCODE_WORK_BYTES = 512 * MIB  # an encoder's activations at 1024 x 1024, room to spare
UNKNOWN_WEIGHTS_BYTES = 1 << 30  # a model whose size the catalogue does not give
CACHE_SHARE, SESSION_SHARE, STORE_SHARE = 0.5, 0.3, 0.2
# Resident bytes per counted cache byte: an allowance for the allocator's rounding and for free
# pages not yet returned (trimming returns them after TRIM_AFTER_BYTES of evictions).
CACHE_RESIDENT_FACTOR = 1.1
MIN_REMAINDER = 256 * MIB  # below this the budget cannot hold a useful cache and sessions


class MemoryBudgetError(ValueError):
    """The budget cannot hold the fixed parts (base, weights, work); the message says which
    number to change."""


@dataclass(frozen=True)
class MemoryPlan:
    """How a budget is split (bytes). ``budget`` None: no budget, every holder keeps its
    default (then ``cache_bytes``, ``session_bytes`` and ``store_bytes`` are None)."""

    budget: int | None
    base: int = BASE_BYTES
    weights: int = 0
    work: int = 0
    cache_bytes: int | None = None
    session_bytes: int | None = None
    store_bytes: int | None = None

    def describe(self) -> str:
        """One line for the log and the README's example."""
        if self.budget is None:
            return "no memory budget (--memory-budget): each cache keeps its own bound"

        def mib(n: int | None) -> str:
            return "-" if n is None else f"{n / MIB:,.0f} MiB"

        return (f"memory budget {mib(self.budget)}: base {mib(self.base)}, weights "
                f"{mib(self.weights)}, work {mib(self.work)}, embedding cache "
                f"{mib(self.cache_bytes)} (counted), sessions {mib(self.session_bytes)}, "
                f"REST images {mib(self.store_bytes)}")


def budget_from_env() -> int | None:
    """``SAMWB_MEMORY_BUDGET`` in bytes, or None when unset."""
    raw = os.environ.get(MEMORY_BUDGET_ENV, "").strip()
    return parse_bytes(raw) if raw else None


def weights_bytes(sizes: list[int | None], loaded_at_once: int) -> int:
    """The bytes of the ``loaded_at_once`` largest models (None: ``UNKNOWN_WEIGHTS_BYTES``;
    models without weights, such as GrabCut, pass 0)."""
    known = sorted((UNKNOWN_WEIGHTS_BYTES if s is None else int(s) for s in sizes), reverse=True)
    return sum(known[:max(1, int(loaded_at_once))])


def plan_memory(budget: int | str | None, weights: int, everything_max_bytes: int | None,
                cache_bytes: int | str | None = None) -> MemoryPlan:
    """Split ``budget`` (see the module docstring); ``cache_bytes`` given keeps its value.

    Raises:
        MemoryBudgetError: the budget minus base, weights and work leaves less than
            ``MIN_REMAINDER``, or an explicit cache bound does not fit.
    """
    if budget is None:
        return MemoryPlan(None)
    total = parse_bytes(budget)
    work = ENCODE_WORK_BYTES + int(everything_max_bytes or 1 << 30)
    remainder = total - BASE_BYTES - weights - work
    if remainder < MIN_REMAINDER:
        raise MemoryBudgetError(
            f"A memory budget of {total / MIB:,.0f} MiB cannot hold the app: "
            f"{BASE_BYTES / MIB:,.0f} MiB base + {weights / MIB:,.0f} MiB of model weights + "
            f"{work / MIB:,.0f} MiB for one request's work leave {remainder / MIB:,.0f} MiB, and "
            f"at least {MIN_REMAINDER / MIB:,.0f} MiB are needed for the cache and sessions. "
            "Give a larger --memory-budget, offer fewer or smaller models (--models), or lower "
            "--everything-max-bytes.")
    if cache_bytes is not None:
        cache = parse_bytes(cache_bytes)
        resident = int(cache * CACHE_RESIDENT_FACTOR)
        if resident > remainder - MIN_REMAINDER // 2:
            raise MemoryBudgetError(
                f"--cache-bytes {cache / MIB:,.0f} MiB (about {resident / MIB:,.0f} MiB resident) "
                f"does not fit the {remainder / MIB:,.0f} MiB the memory budget leaves after base, "
                "weights and work; lower --cache-bytes or leave it out (the budget then sets it).")
        rest = remainder - resident
        others = SESSION_SHARE + STORE_SHARE
        sessions, store = int(rest * SESSION_SHARE / others), int(rest * STORE_SHARE / others)
    else:
        cache = int(remainder * CACHE_SHARE / CACHE_RESIDENT_FACTOR)
        sessions, store = int(remainder * SESSION_SHARE), int(remainder * STORE_SHARE)
    return MemoryPlan(total, BASE_BYTES, int(weights), work, cache, sessions, store)


def resident_bytes() -> int | None:
    """This process's resident memory (Linux; None elsewhere)."""
    from sam_backends.speed.accel import process_rss_bytes

    return process_rss_bytes()


def loaded_weights_bytes(backend: object) -> int:
    """Bytes of a loaded backend's parameters and buffers (0 for a model without weights, such
    as GrabCut): what ``weights`` in the plan stands for, as it is in memory."""
    model = getattr(backend, "model", None)
    if model is None or not hasattr(model, "parameters"):
        return 0
    seen: set[int] = set()
    total = 0
    for tensor in [*model.parameters(), *getattr(model, "buffers", lambda: [])()]:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += int(storage.nbytes())
    return total


IDLE_TRIM_EVERY_S = 30.0  # how often the idle trimmer looks; it trims only when the app is quiet


class IdleTrimmer:
    """Gives freed memory back to the system when the app is quiet.

    Why: a request's temporaries (an encoder's activations, a "segment everything" batch) are
    freed onto malloc's heap when it ends, and the heap keeps them resident between live
    blocks; ``malloc_trim`` returns them (``benchmarks/bench_trim.py``: after evictions were
    trimmed, one more trim at rest still returned more). Every ``every_s`` seconds, when no
    foreground work is in flight (``quiet()``) and some work ran since the last trim, one
    ``malloc_trim`` runs (glibc only; it costs what it returns, ~45 ms for 256 MiB here).
    One daemon thread per app, started by ``app.launch`` and stopped at shutdown.
    """

    def __init__(self, quiet: Callable[[], bool], work_done: Callable[[], int],
                 every_s: float = IDLE_TRIM_EVERY_S) -> None:
        self._quiet, self._work_done, self.every_s = quiet, work_done, float(every_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen = -1
        self.trims = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="idle-trim", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def tick(self) -> bool:
        """Trim now if the app is quiet and worked since the last trim; True when it did."""
        done = self._work_done()
        if done == self._seen or not self._quiet():
            return False
        from sam_backends.speed.accel import release_free_memory

        self._seen = done
        release_free_memory()
        self.trims += 1
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.tick()
