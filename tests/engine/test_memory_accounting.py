"""The embedding cache counts the memory its entries hold, and evicting gives it back.

Measured with glibc's own counters (``mallinfo2``: bytes malloc handed out) and the process's
resident set, so both tests run on Linux with glibc only; elsewhere they are skipped with the
reason.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

from sam_backends import create_backend
from sam_backends.base import array_nbytes
from sam_backends.cache import EmbeddingCache
from sam_backends.speed import accel
from sam_backends.types import Embedding

GLIBC = accel.heap_in_use() is not None
needs_glibc = pytest.mark.skipif(
    not GLIBC, reason="malloc's counters (mallinfo2) and malloc_trim are glibc's (Linux only)")


def test_a_view_counts_its_whole_storage_once():
    import torch

    batch = torch.zeros(4, 256, 64, 64)
    one = batch[1:2]  # keeps the whole batch alive
    assert array_nbytes({"a": one}) == batch.untyped_storage().nbytes()
    assert array_nbytes({"a": one, "b": (batch, one)}) == batch.untyped_storage().nbytes()
    rows = np.zeros((100, 1000), np.float32)
    assert array_nbytes([rows[:10], rows[50:]]) == rows.nbytes


@needs_glibc
def test_an_embeddings_counted_size_is_its_allocation(sam2_small):
    backend = create_backend(sam2_small.spec, checkpoint=sam2_small.path, device="cpu",
                             precision="fp32")
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    backend.encode(image)  # the first call makes the model's lazy buffers: not the embedding's
    gc.collect()
    before = accel.heap_in_use()
    embedding = backend.encode(image)
    gc.collect()
    held = accel.heap_in_use() - before
    counted = embedding.nbytes
    del embedding
    gc.collect()
    left = accel.heap_in_use() - before
    assert counted > 1 << 20
    assert abs(held - counted) <= 0.1 * counted, f"held {held} bytes, counted {counted}"
    assert abs(left) < 0.1 * counted  # dropping it gave back what was counted


def sam2_sized_embedding(tag: int):
    """An embedding shaped as SAM 2.1's for a 1024 x 1024 input (16 MiB of fp32 tensors), made
    of real tensors whose pages are touched, as an encoder's output is."""
    import torch

    features = {"image_embed": torch.full((1, 256, 64, 64), float(tag)),
                "high_res_feats": (torch.full((1, 32, 256, 256), 1.0),
                                   torch.full((1, 64, 128, 128), 2.0))}
    return Embedding(f"m{tag}", "fp32", (1024, 1024), (1024, 1024), features,
                     nbytes=array_nbytes(features))


@needs_glibc
def test_evicting_gives_the_memory_back_to_the_system():
    import torch

    accel.tune_allocator()  # the server's setting: mid-size blocks stay on the heap
    cache = EmbeddingCache(max_bytes=1 << 30)
    pins = []
    for n in range(12):
        cache.put(n, sam2_sized_embedding(n))
        pins.append(torch.ones(2048))  # a live block after each: the heap cannot shrink
    gc.collect()
    full = accel.process_rss_bytes()
    evicted = cache.resize(4 * (16 << 20))
    gc.collect()
    dropped = full - accel.process_rss_bytes()
    assert evicted == 8 * (16 << 20)
    assert cache.stats().trims >= 1
    assert dropped >= evicted / 2, f"RSS fell {dropped >> 20} MiB after evicting {evicted >> 20}"
    assert len(pins) == 12
