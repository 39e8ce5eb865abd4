"""The embedding cache: LRU by bytes, thread-safe, one computation per key at a time."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from sam_backends.cache import (
    CACHE_BYTES_ENV,
    DEFAULT_MAX_BYTES,
    CacheStats,
    EmbeddingCache,
    cache_key,
    parse_bytes,
)
from sam_backends.errors import SamBackendError
from sam_backends.images import image_digest
from sam_backends.types import Embedding


def embedding(nbytes: int, tag: str = "x") -> Embedding:
    return Embedding(model_id=tag, precision="fp32", original_size=(1, 1), input_size=(1, 1),
                     features={}, nbytes=nbytes)


def test_lru_order_and_byte_bound():
    cache = EmbeddingCache(max_bytes=300)
    for name in "abc":
        cache.put(name, embedding(100, name))
    assert cache.keys() == ["a", "b", "c"]
    assert cache.get("a").model_id == "a"  # a becomes most recent
    assert cache.keys() == ["b", "c", "a"]
    cache.put("d", embedding(100, "d"))  # evicts b, the least recently used
    assert cache.keys() == ["c", "a", "d"]
    assert "b" not in cache and cache.get("b") is None
    cache.put("e", embedding(250, "e"))  # needs room for 250: evicts c, a and d
    assert cache.keys() == ["e"]
    stats = cache.stats()
    assert stats.bytes == 250 and stats.entries == 1 and stats.evictions == 4
    assert stats.bytes <= stats.max_bytes


def test_replacing_a_key_updates_bytes():
    cache = EmbeddingCache(max_bytes=1000)
    cache.put("a", embedding(100))
    cache.put("a", embedding(300))
    assert cache.stats().bytes == 300 and len(cache) == 1


def test_item_larger_than_budget_is_returned_not_stored():
    cache = EmbeddingCache(max_bytes=100)
    cache.put("small", embedding(50))
    big = embedding(101)
    assert cache.get_or_compute("big", lambda: big) is big
    assert "big" not in cache and "small" in cache  # nothing evicted for it
    assert cache.put("big", big) is False
    assert cache.stats().bytes == 50


def test_get_or_compute_hits_and_misses():
    cache = EmbeddingCache(max_bytes=1000)
    calls = []

    def compute():
        calls.append(1)
        return embedding(10)

    first = cache.get_or_compute(cache_key("d1", "m", "fp32"), compute)
    second = cache.get_or_compute(cache_key("d1", "m", "fp32"), compute)
    other_precision = cache.get_or_compute(cache_key("d1", "m", "bf16"), compute)
    assert first is second and other_precision is not first
    assert len(calls) == 2
    assert cache.stats() == CacheStats(hits=1, misses=2, shared=0, evictions=0, bytes=20,
                                       entries=2, max_bytes=1000)


def test_concurrent_requests_compute_once():
    cache = EmbeddingCache(max_bytes=10_000)
    calls = []
    started = threading.Event()
    release = threading.Event()

    def compute():
        calls.append(threading.get_ident())
        started.set()
        release.wait(5)
        return embedding(10)

    results = []

    def request():
        results.append(cache.get_or_compute("key", compute))

    threads = [threading.Thread(target=request) for _ in range(8)]
    threads[0].start()
    assert started.wait(5)  # the first request is computing...
    for thread in threads[1:]:
        thread.start()  # ...while seven more ask for the same key
    deadline = time.monotonic() + 5
    while cache.stats().shared < 7 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(calls) == 1
    assert len(results) == 8 and all(r is results[0] for r in results)
    stats = cache.stats()
    assert stats.misses == 1 and stats.shared == 7 and stats.entries == 1


def test_exception_reaches_every_waiter_and_caches_nothing():
    cache = EmbeddingCache(max_bytes=10_000)
    started = threading.Event()
    release = threading.Event()
    calls = []

    def failing():
        calls.append(1)
        started.set()
        release.wait(5)
        raise RuntimeError("encoder exploded")

    errors = []

    def request():
        try:
            cache.get_or_compute("key", failing)
        except RuntimeError as exc:
            errors.append(str(exc))

    first = threading.Thread(target=request)
    first.start()
    assert started.wait(5)
    second = threading.Thread(target=request)
    second.start()
    deadline = time.monotonic() + 5
    while cache.stats().shared < 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    first.join(5)
    second.join(5)
    assert errors == ["encoder exploded", "encoder exploded"]
    assert len(calls) == 1
    assert "key" not in cache and cache.stats().entries == 0
    # the next request computes again, and succeeds
    assert cache.get_or_compute("key", lambda: embedding(5)).nbytes == 5


def test_thread_hammer_stays_within_bounds():
    cache = EmbeddingCache(max_bytes=500)
    counts: dict[int, int] = {}
    lock = threading.Lock()

    def compute(i):
        with lock:
            counts[i] = counts.get(i, 0) + 1
        return embedding(100, str(i))

    def worker(seed):
        rng = np.random.default_rng(seed)
        for i in rng.integers(0, 12, 300):
            value = cache.get_or_compute(int(i), lambda i=int(i): compute(i))
            assert value.model_id == str(int(i))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = cache.stats()
    assert stats.bytes <= 500 and stats.entries == 5 and stats.bytes == 500
    assert stats.hits + stats.misses + stats.shared == 6 * 300
    assert sum(counts.values()) == stats.misses


def test_clear():
    cache = EmbeddingCache(max_bytes=1000)
    cache.put("a", embedding(100))
    cache.clear()
    assert len(cache) == 0 and cache.stats().bytes == 0
    assert cache.get("a") is None


def test_zero_budget_stores_nothing():
    cache = EmbeddingCache(max_bytes=0)
    assert cache.get_or_compute("a", lambda: embedding(1)).nbytes == 1
    assert len(cache) == 0


def test_budget_from_environment(monkeypatch):
    monkeypatch.setenv(CACHE_BYTES_ENV, "3MiB")
    assert EmbeddingCache().max_bytes == 3 * 1024**2
    monkeypatch.delenv(CACHE_BYTES_ENV)
    assert EmbeddingCache().max_bytes == DEFAULT_MAX_BYTES == 2 * 1024**3
    assert EmbeddingCache(max_bytes=123).max_bytes == 123


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1000", 1000), ("2GiB", 2 * 1024**3), ("512M", 512 * 1000**2), ("1.5kib", 1536),
     (" 7 b ", 7), (42, 42), ("0", 0)],
)
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["lots", "-5", "5 XB", ""])
def test_parse_bytes_rejects(text):
    with pytest.raises(SamBackendError, match="size"):
        parse_bytes(text)


def test_cache_key_separates_model_and_precision():
    digest = image_digest(np.zeros((4, 4, 3), np.uint8))
    keys = {cache_key(digest, m, p) for m in ("sam-vit-b", "sam2.1-tiny") for p in ("fp32", "bf16")}
    assert len(keys) == 4


def test_hit_latency_benchmark(capsys):
    """Benchmark-style print (no threshold): the cost of a hit, key construction included."""
    cache = EmbeddingCache()
    digest = image_digest(np.zeros((8, 8, 3), np.uint8))
    cache.put(cache_key(digest, "sam2.1-tiny", "fp32"), embedding(16 * 1024**2))
    rounds = 10_000
    start = time.perf_counter()
    for _ in range(rounds):
        cache.get_or_compute(cache_key(digest, "sam2.1-tiny", "fp32"), lambda: None)
    per_hit = (time.perf_counter() - start) / rounds
    with capsys.disabled():
        print(f"\n[benchmark] embedding cache hit: {per_hit * 1e6:.2f} us per lookup")
    assert cache.stats().hits == rounds
