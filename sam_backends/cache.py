"""A bounded, thread-safe LRU cache for image embeddings.

Encoding an image is the expensive step (seconds on a CPU); decoding prompts against a cached
embedding is cheap. Entries are keyed by ``cache_key(image_digest, model_id, precision)`` and the
cache is bounded by the bytes the embeddings hold (``Embedding.nbytes``), not by a count, because
one SAM 2 embedding is 4x a SAM 1 embedding.

Concurrent ``get_or_compute`` calls for the same key run the computation once: the first caller
computes, later callers wait for its result (or its exception). Nothing is cached on failure.

The bytes counted are the memory an entry holds (``base.array_nbytes``: every storage its
tensors keep alive, in full), and evicting gives that memory back to the system: the process
keeps mid-size blocks on malloc's heap for the clicks' sake (``speed.accel.tune_allocator``),
where a freed embedding would otherwise stay resident between live blocks, so once
``trim_after_bytes`` have been evicted the cache asks malloc to return its free pages
(``speed.accel.release_free_memory``, glibc's ``malloc_trim``; a no-op elsewhere).
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Hashable

from .errors import SamBackendError
from .speed.accel import release_free_memory

CACHE_BYTES_ENV = "SAM_CACHE_BYTES"
DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB: ~128 SAM 2 or ~512 SAM 1 embeddings at fp32
# Evicted bytes after which malloc is asked to give free pages back: a few embeddings' worth,
# so a trim (it costs what it returns: ~6 ms for 32 MiB here) follows every few evictions.
TRIM_AFTER_BYTES = 32 * 1024**2

_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
          "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4}

CacheKey = tuple[str, str, str]


def cache_key(image_digest: str, model_id: str, precision: str) -> CacheKey:
    """The key of one embedding: which pixels, encoded by which model, at which precision."""
    return (image_digest, model_id, precision)


def parse_bytes(text: str | int) -> int:
    """``"2GiB"``, ``"512M"``, ``"1.5g"``, ``"0"`` or an int -> bytes (K/M/G are powers of 1000,
    Ki/Mi/Gi of 1024; a trailing "B" is optional)."""
    if isinstance(text, int):
        value = text
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]i?)?b?\s*", str(text), re.IGNORECASE)
        if match is None:
            raise SamBackendError(
                f"Cannot read {text!r} as a size in bytes; write e.g. 2GiB, 512MiB or 1000000."
            )
        value = int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])
    if value < 0:
        raise SamBackendError(f"A cache size cannot be negative, got {value}.")
    return value


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of the counters.

    Attributes:
        hits: lookups answered from the cache.
        misses: lookups that had to compute (one per computation actually started).
        shared: lookups that waited for a computation another caller had already started.
        evictions: entries dropped to stay under ``max_bytes``.
        bytes: bytes held now; entries: entries held now; max_bytes: the bound.
        evicted_bytes: bytes dropped by evictions so far; trims: times malloc was asked to
            return the freed memory.
    """

    hits: int
    misses: int
    shared: int
    evictions: int
    bytes: int
    entries: int
    max_bytes: int
    evicted_bytes: int = 0
    trims: int = 0


class EmbeddingCache:
    """LRU of embeddings bounded by total bytes; safe to share between threads.

    Args:
        max_bytes: the bound; default env ``SAM_CACHE_BYTES`` (e.g. ``"4GiB"``) or 2 GiB.
            0 disables storing (``get_or_compute`` still de-duplicates concurrent work).

        trim_after_bytes: evicted bytes after which malloc returns free memory to the system
            (see the module docstring); 0 never asks.

    A value larger than ``max_bytes`` on its own is returned to the caller but not stored.
    Sizes come from the value's ``nbytes`` attribute (``Embedding.nbytes``).
    """

    def __init__(self, max_bytes: int | str | None = None,
                 trim_after_bytes: int = TRIM_AFTER_BYTES) -> None:
        if max_bytes is None:
            max_bytes = os.environ.get(CACHE_BYTES_ENV, "").strip() or DEFAULT_MAX_BYTES
        self.max_bytes = parse_bytes(max_bytes)
        self.trim_after_bytes = max(0, int(trim_after_bytes))
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._in_flight: dict[Hashable, Future] = {}
        self._bytes = 0
        self._hits = self._misses = self._shared = self._evictions = 0
        self._evicted_bytes = self._untrimmed = self._trims = 0

    def get(self, key: Hashable) -> Any | None:
        """The cached value (marked most recently used), or None; counts a hit or a miss."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._misses += 1
                return None
            self._entries.move_to_end(key)
            self._hits += 1
            return entry[0]

    def put(self, key: Hashable, value: Any) -> bool:
        """Store ``value`` as most recently used, evicting the least recently used entries to
        fit. Returns False (and stores nothing) when the value alone exceeds ``max_bytes``."""
        with self._lock:
            stored = self._store(key, value)
        self._trim_if_due()
        return stored

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """Return the cached value for ``key``, computing and storing it on a miss.

        Concurrent calls with the same key share one computation; if it raises, every waiting
        caller gets that exception and nothing is cached (the next call tries again).
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return entry[0]
            future = self._in_flight.get(key)
            owner = future is None
            if owner:
                future = Future()
                self._in_flight[key] = future
                self._misses += 1
            else:
                self._shared += 1
        if not owner:
            return future.result()
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._in_flight[key]
            future.set_exception(exc)
            raise
        with self._lock:
            self._store(key, value)
            del self._in_flight[key]
        future.set_result(value)
        self._trim_if_due()
        return value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def keys(self) -> list[Hashable]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._entries)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, self._shared, self._evictions,
                              self._bytes, len(self._entries), self.max_bytes,
                              self._evicted_bytes, self._trims)

    def clear(self) -> None:
        """Drop every entry (counters are kept; computations in flight finish normally) and
        give the freed memory back."""
        with self._lock:
            self._untrimmed += self._bytes
            self._entries.clear()
            self._bytes = 0
        self._trim_if_due(force=True)

    def resize(self, max_bytes: int | str) -> int:
        """Set a new bound, evicting the least recently used entries beyond it (and giving
        their memory back); returns the bytes evicted."""
        with self._lock:
            self.max_bytes = parse_bytes(max_bytes)
            before = self._evicted_bytes
            self._evict_locked(0)
            evicted = self._evicted_bytes - before
        self._trim_if_due(force=evicted > 0)
        return evicted

    def _trim_if_due(self, force: bool = False) -> None:
        """Ask malloc to return free pages once enough has been evicted (outside the lock)."""
        with self._lock:
            due = self._untrimmed > 0 and (force or (
                self.trim_after_bytes and self._untrimmed >= self.trim_after_bytes))
            if due:
                self._untrimmed = 0
                self._trims += 1
        if due:
            release_free_memory()

    def _evict_locked(self, room: int) -> None:
        while self._entries and self._bytes + room > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped
            self._evictions += 1
            self._evicted_bytes += dropped
            self._untrimmed += dropped

    def _store(self, key: Hashable, value: Any) -> bool:
        size = max(int(getattr(value, "nbytes", 0) or 0), 0)
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old[1]
        if size > self.max_bytes:
            return False
        self._evict_locked(size)
        self._entries[key] = (value, size)
        self._bytes += size
        return True
