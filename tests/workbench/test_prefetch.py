"""The background encoder of the next images (workbench.projects.prefetch), the foreground
counter it gives way to (workbench.lanes.Activity), its pause points between encoder blocks
(sam_backends.background) and the disk layer under the embedding cache
(sam_backends.disk_cache)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch
from app_harness import app_config
from PIL import Image

from sam_backends import Embedding
from sam_backends.background import encoder_blocks, install_pause_points, pausing
from sam_backends.cache import cache_key
from sam_backends.disk_cache import DiskEmbeddingStore
from sam_backends.images import image_digest, load_image
from sam_backends.testing.random_models import synthetic_image
from workbench.context import AppContext
from workbench.lanes import Activity, ServerBusyError, WorkLane
from workbench.projects import prefetch
from workbench.projects.prefetch import Prefetcher, project_embedding_store
from workbench.threads import in_own_thread

HANG_S = 120.0  # only a guard against a hung test; no assertion depends on durations


def wait_for(predicate, what: str) -> None:
    end = time.monotonic() + HANG_S
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def write_image(path: Path, seed: int, size: tuple[int, int] = (48, 64)) -> Path:
    Image.fromarray(synthetic_image(*size, seed=seed)).save(path)
    return path


@pytest.fixture
def ctx(sam1_small, sam2_small, tmp_path):
    context = AppContext(app_config(sam1_small, sam2_small, tmp_path / "weights"))
    yield context
    context.close()


def same_features(a: Embedding, b: Embedding) -> bool:
    assert a.features.keys() == b.features.keys()
    for name, value in a.features.items():
        other = b.features[name]
        pairs = zip(value, other, strict=True) if isinstance(value, tuple) else [(value, other)]
        for x, y in pairs:
            if x.dtype != y.dtype or not torch.equal(x, y):
                return False
    return (a.original_size, a.input_size) == (b.original_size, b.input_size)


# --- the foreground counter ------------------------------------------------------------------


def test_lanes_count_foreground_work_while_it_waits_and_runs():
    activity = Activity()
    lane = WorkLane("test", 1, 0, activity=activity)
    with lane.admit():
        assert activity.count == 1
        with pytest.raises(ServerBusyError):  # refused at once: never counted
            with lane.admit():
                pass
        assert activity.count == 1
    assert activity.count == 0
    assert activity.wait_quiet(timeout=0)


def test_a_wanted_key_is_not_kept_waiting():
    activity = Activity()
    with activity.active():
        assert not activity.wait_quiet("k", timeout=0)
        with activity.wanting("k"):
            assert activity.is_wanted("k") and activity.wait_quiet("k", timeout=0)
        assert not activity.is_wanted("k")
        assert not activity.wait_quiet(stop=lambda: True)


# --- wishes ----------------------------------------------------------------------------------


def test_a_newer_wish_replaces_the_clients_older_one(ctx, tmp_path, sam2_small):
    model = sam2_small.spec.model_id  # not loaded: nothing is encoded in this test
    paths = [tmp_path / f"{i}.png" for i in range(12)]
    prefetcher = Prefetcher(ctx)
    try:
        prefetcher.want("page-a", model, paths[:3])
        prefetcher.want("page-a", model, paths[3:4])
        assert prefetcher.status().queued == 1
        prefetcher.want("page-b", model, paths)  # bounded per wish
        assert prefetcher.status().queued == 1 + prefetch.MAX_PATHS
        prefetcher.forget("page-b")
        assert prefetcher.status().queued == 1
        for i in range(prefetch.MAX_CLIENTS + 5):  # bounded number of clients
            prefetcher.want(f"page-{i}", model, paths[:1])
        assert len(prefetcher._wishes) == prefetch.MAX_CLIENTS
        assert prefetcher.status().done == 0
    finally:
        prefetcher.close()
    assert not prefetcher.status().enabled


def test_prefetched_image_is_a_cache_hit_for_ctx_encode(ctx, tmp_path, sam2_small):
    model = sam2_small.spec.model_id
    backend = ctx.backend(model)
    path = write_image(tmp_path / "next.png", seed=3)
    prefetcher = ctx.services.prefetcher
    prefetcher.want("page", model, [path])
    wait_for(lambda: prefetcher.status().done == 1, "the prefetch")
    status = prefetcher.status()
    assert (status.queued, status.failed, status.running, status.disk_bytes) == (0, 0, None, None)

    image = load_image(path, ctx.config.max_image_pixels)
    opened = ctx.encode(model, image)
    assert opened.cached
    # the reference on a thread of its own, as the app encodes (workbench.threads)
    assert same_features(opened.embedding, in_own_thread(lambda: backend.encode(image)))
    assert ctx.encode_timings.measured(model) is None  # paused time is no typical encode


def test_a_prefetch_encodes_on_a_thread_that_ends_while_its_queue_lives_on(ctx, tmp_path,
                                                                           sam2_small):
    """The queue's thread lives as long as the app; each encode runs on a thread of its own
    that ends with it, taking its OpenMP pool along (``workbench.threads``)."""
    model = sam2_small.spec.model_id
    backend = ctx.backend(model)
    encoders = []
    hook = encoder_blocks(backend)[0].register_forward_pre_hook(
        lambda module, args: encoders.append(threading.current_thread()))
    try:
        prefetcher = ctx.services.prefetcher
        prefetcher.want("page", model, [write_image(tmp_path / "b.png", seed=8)])
        wait_for(lambda: prefetcher.status().done == 1, "the prefetch")
    finally:
        hook.remove()
    assert encoders and {t.name for t in encoders} == {"samwb-prefetch"}
    encoders[0].join(HANG_S)
    assert not encoders[0].is_alive()
    queue = [t for t in threading.enumerate() if t.name == "samwb-prefetch-queue"]
    assert len(queue) == 1 and queue[0] is not encoders[0]


def test_unreadable_and_missing_images_are_recorded_not_raised(ctx, tmp_path, sam2_small):
    model = sam2_small.spec.model_id
    ctx.backend(model)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a PNG")
    good = write_image(tmp_path / "good.png", seed=4)
    prefetcher = ctx.services.prefetcher
    prefetcher.want("page", model, [broken, tmp_path / "gone.jpg", good])
    wait_for(lambda: prefetcher.status().done + prefetcher.status().failed == 3, "the wish")
    status = prefetcher.status()
    assert (status.done, status.failed, status.queued) == (1, 2, 0)
    assert any(e.startswith("broken.png:") for e in status.errors)
    assert any(e.startswith("gone.jpg:") for e in status.errors)
    prefetcher.want("page", model, [broken])  # not tried again while the file is unchanged
    assert prefetcher.status().queued == 0


# --- giving way ------------------------------------------------------------------------------


def test_foreground_work_pauses_a_started_encode_between_blocks(ctx, tmp_path, sam2_small):
    model = sam2_small.spec.model_id
    backend = ctx.backend(model)
    assert install_pause_points(backend) > len(encoder_blocks(backend)) == 5
    blocks = encoder_blocks(backend)
    first_started, person_arrived, second_ran = (threading.Event() for _ in range(3))

    def on_first(module, args):  # runs after the pause point of block 0
        if threading.current_thread().name == "samwb-prefetch":
            first_started.set()
            person_arrived.wait(HANG_S)

    def on_second(module, args):  # runs only once the pause point of block 1 let it through
        if threading.current_thread().name == "samwb-prefetch":
            second_ran.set()

    hooks = [blocks[0].register_forward_pre_hook(on_first),
             blocks[1].register_forward_pre_hook(on_second)]
    person = ctx.foreground.active()
    try:
        prefetcher = ctx.services.prefetcher
        prefetcher.want("page", model, [write_image(tmp_path / "a.png", seed=5)])
        assert first_started.wait(HANG_S)
        person.__enter__()  # a click arrives while block 0 runs
        person_arrived.set()
        wait_for(lambda: prefetcher.status().paused, "a pause before block 1 (or a layer of 0)")
        assert not second_ran.is_set()
        assert prefetcher.status().running == "a.png"
        person.__exit__(None, None, None)
        person = None
        wait_for(lambda: prefetcher.status().done == 1, "the rest of the encode")
        assert second_ran.is_set()
    finally:
        person_arrived.set()
        if person is not None:
            person.__exit__(None, None, None)
        for hook in hooks:
            hook.remove()


def test_a_person_opening_the_image_being_prefetched_is_not_kept_waiting(ctx, tmp_path,
                                                                         sam2_small):
    model = sam2_small.spec.model_id
    backend = ctx.backend(model)
    path = write_image(tmp_path / "b.png", seed=6)
    blocks = encoder_blocks(backend)
    install_pause_points(backend)
    started = threading.Event()
    hook = blocks[0].register_forward_pre_hook(
        lambda m, a: started.set() if threading.current_thread().name == "samwb-prefetch"
        else None)
    other_click = ctx.foreground.active()  # another person's work holds the app busy
    try:
        prefetcher = ctx.services.prefetcher
        prefetcher.want("page", model, [path])
        assert started.wait(HANG_S)
        other_click.__enter__()
        wait_for(lambda: prefetcher.status().paused or prefetcher.status().done,
                 "the prefetch to pause (or end)")
        # This person opens the image being prefetched: it waits for that encode, which
        # stops pausing, although the other person's work is still in flight.
        image = load_image(path, ctx.config.max_image_pixels)
        opened = ctx.encode(model, image)
        assert opened.cached  # no second encoder run: it shared the background one
        assert ctx.foreground.count == 1
    finally:
        other_click.__exit__(None, None, None)
        hook.remove()


def test_pause_points_act_only_in_the_thread_that_asked(sam2_small):
    from sam_backends import create_backend

    backend = create_backend(sam2_small.spec, checkpoint=sam2_small.path, device="cpu",
                             precision="fp32")
    image = synthetic_image(32, 40, seed=7)
    calls = []
    with pausing(backend, lambda: calls.append(threading.current_thread().name)) as points:
        worker = threading.Thread(target=backend.encode, args=(image,), name="other")
        worker.start()
        worker.join()
        assert calls == []  # another thread's encode passes the hooks untouched
        backend.encode(image)
    blocks = len(encoder_blocks(backend))
    assert blocks == 5 and points > 4 * blocks  # each block and every layer inside it
    assert len(calls) >= points  # a layer run twice (shared weights) pauses twice
    seen = len(calls)
    backend.encode(image)  # outside the block: no call
    assert len(calls) == seen


def test_a_backend_without_blocks_runs_whole(ctx):
    grabcut = ctx.backend("grabcut")
    assert encoder_blocks(grabcut) == []
    with pausing(grabcut, lambda: None) as points:
        assert points == 0


# --- on disk ---------------------------------------------------------------------------------


def fake_embedding(model_id: str = "m", precision: str = "fp32", seed: int = 0,
                   dtype=torch.float32) -> Embedding:
    gen = torch.Generator().manual_seed(seed)
    features = {"image_embed": torch.randn(1, 8, 16, 16, generator=gen).to(dtype),
                "high_res_feats": (torch.randn(1, 4, 32, 32, generator=gen).to(dtype),
                                   torch.randn(1, 2, 8, 8, generator=gen).permute(0, 1, 3, 2)
                                   .to(dtype))}
    return Embedding(model_id, precision, (30, 40), (1024, 1024), features, nbytes=1)


@pytest.mark.parametrize("fmt", ["safetensors", "torch"])
def test_disk_round_trip_is_bit_identical(tmp_path, fmt):
    store = DiskEmbeddingStore(tmp_path, 10**8, fmt=fmt)
    for dtype in (torch.float32, torch.bfloat16):
        precision = "fp32" if dtype == torch.float32 else "bf16"
        embedding = fake_embedding(precision=precision, dtype=dtype)
        key = cache_key("ab" * 16, "m", precision)
        assert store.put(key, embedding)
        back = store.get(key)
        assert same_features(back, embedding)
        assert (back.model_id, back.precision) == ("m", precision)
    restarted = DiskEmbeddingStore(tmp_path, 10**8, fmt=fmt)
    assert restarted.stats().entries == 2
    assert same_features(restarted.get(cache_key("ab" * 16, "m", "fp32")), fake_embedding())


def test_disk_keys_are_separate_per_model_and_precision(tmp_path):
    store = DiskEmbeddingStore(tmp_path, 10**8)
    key = cache_key("cd" * 16, "model-a", "fp32")
    store.put(key, fake_embedding("model-a"))
    assert store.get(cache_key("cd" * 16, "model-a", "bf16")) is None
    assert store.get(cache_key("cd" * 16, "model-b", "fp32")) is None
    assert store.path_for(key).parent.name == "model-a"
    with pytest.raises(ValueError):
        store.path_for(cache_key("cd" * 16, "../escape", "fp32"))


def test_disk_bound_drops_the_least_recently_used(tmp_path):
    probe = DiskEmbeddingStore(tmp_path / "probe", 10**8)
    probe.put(cache_key("00" * 16, "m", "fp32"), fake_embedding())
    size = probe.stats().bytes
    store = DiskEmbeddingStore(tmp_path / "store", int(size * 2.5))
    keys = [cache_key(f"{i:02d}" * 16, "m", "fp32") for i in range(3)]
    store.put(keys[0], fake_embedding(seed=0))
    store.put(keys[1], fake_embedding(seed=1))
    assert store.get(keys[0]) is not None  # key 1 is now the least recently used
    store.put(keys[2], fake_embedding(seed=2))
    stats = store.stats()
    assert stats.entries == 2 and stats.bytes <= stats.max_bytes and stats.evictions == 1
    assert keys[1] not in store and not store.path_for(keys[1]).exists()
    assert keys[0] in store and keys[2] in store
    smaller = DiskEmbeddingStore(tmp_path / "store", size)  # a smaller bound after a restart
    assert smaller.stats().entries == 1 and smaller.stats().bytes <= size
    too_small = DiskEmbeddingStore(tmp_path / "tiny", size // 2)
    assert not too_small.put(keys[0], fake_embedding()) and too_small.stats().entries == 0


def test_damaged_file_is_deleted_and_recomputed(ctx, tmp_path, sam2_small):
    model = sam2_small.spec.model_id
    store = project_embedding_store(tmp_path / "project", 10**9)
    ctx.attach_disk_embeddings(store)
    image = synthetic_image(40, 50, seed=8)
    first = ctx.encode(model, image)
    assert not first.cached and store.stats().entries == 1
    key = cache_key(image_digest(image), model, "fp32")
    path = store.path_for(key)
    assert path.is_relative_to(tmp_path / "project" / ".samwb-cache" / "embeddings" / model)
    path.write_bytes(path.read_bytes()[:100])  # truncated, as by a crash mid-copy
    ctx.cache.clear()
    again = ctx.encode(model, image)
    assert not again.cached  # computed again...
    assert store.stats().damaged == 1 and store.stats().entries == 1
    assert same_features(store.get(key), first.embedding)  # ...and written again


def test_disk_layer_survives_a_restart_and_fills_status(sam1_small, sam2_small, tmp_path):
    model = sam1_small.spec.model_id
    config = app_config(sam1_small, sam2_small, tmp_path / "weights")
    image_path = write_image(tmp_path / "c.png", seed=9)
    first = AppContext(config)
    try:
        first.attach_disk_embeddings(project_embedding_store(tmp_path / "project", 10**9))
        first.backend(model)
        first.services.prefetcher.want("page", model, [image_path])
        wait_for(lambda: first.services.prefetcher.status().done == 1, "the prefetch")
        status = first.services.prefetcher.status()
        assert status.disk_bytes > 0 and status.disk_max_bytes == 10**9
        encoded = first.encode(model, load_image(image_path)).embedding
    finally:
        first.close()
    second = AppContext(config)  # a restart: empty memory cache
    try:
        second.attach_disk_embeddings(project_embedding_store(tmp_path / "project", 10**9))
        image = load_image(image_path)
        second.backend(model)
        assert second.cached(model, image_digest(image))
        opened = second.encode(model, image)
        assert opened.cached and same_features(opened.embedding, encoded)
        prediction = second.backend(model).predict(opened.embedding, _one_click(image))
        assert prediction.masks.shape[1:] == image.shape[:2]
    finally:
        second.close()


def _one_click(image):
    from sam_backends import Prompts

    return Prompts(points=[(image.shape[1] // 2, image.shape[0] // 2)], labels=[1])


def test_a_thread_may_run_on_fewer_threads_than_the_others():
    from sam_backends.speed.accel import limit_this_thread

    before = torch.get_num_threads()
    seen = {}

    def background():
        seen["applied"] = limit_this_thread(1)
        seen["threads"] = torch.get_num_threads()

    worker = threading.Thread(target=background)
    worker.start()
    worker.join()
    assert seen == {"applied": True, "threads": 1}
    assert torch.get_num_threads() == before  # this thread keeps its count

    later = {}
    worker = threading.Thread(target=lambda: later.setdefault("n", torch.get_num_threads()))
    worker.start()
    worker.join()
    assert later["n"] == before  # and so do threads started afterwards
