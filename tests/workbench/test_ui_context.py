"""AppContext: the offered models, their status, the shared cache and the backend pool."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from app_harness import app_config

from sam_backends import CheckpointMissingError, DownloadError, UnknownModelError
from sam_backends.testing.random_models import synthetic_image
from workbench.config import AppConfig, parse_models
from workbench.context import AppContext, BackendPool


def test_offered_models_and_status(sam1_small, sam2_small, tmp_path):
    ctx = AppContext(app_config(sam1_small, sam2_small, tmp_path))
    assert ctx.model_ids == ["grabcut", "sam2.1-tiny", "test-sam2-small", "test-sam1-small"]
    tiny = ctx.status("sam2.1-tiny")
    assert not tiny.present
    assert tiny.download_command == "python -m sam_backends download sam2.1-tiny"
    assert ctx.checkpoint_file("sam2.1-tiny") == tmp_path / "sam2.1_hiera_tiny.pt"
    assert ctx.status("grabcut").present and ctx.status("grabcut").download_command is None
    assert ctx.status("test-sam1-small").present
    assert ctx.default_model() == "test-sam2-small"
    with pytest.raises(UnknownModelError, match="not offered here"):
        ctx.status("sam-vit-h")


def test_default_model_falls_back_to_a_present_one(tmp_path):
    ctx = AppContext(AppConfig(models=("sam2.1-tiny", "grabcut"), checkpoint_dir=tmp_path))
    assert ctx.config.default_model == "sam2.1-tiny"
    assert ctx.default_model() == "grabcut"  # tiny is not downloaded
    (tmp_path / "sam2.1_hiera_tiny.pt").write_bytes(b"x")
    assert ctx.default_model() == "sam2.1-tiny"


def test_missing_model_and_offline_download_raise_typed_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("SAM_OFFLINE", "1")
    ctx = AppContext(AppConfig(models=("sam2.1-tiny", "grabcut"), checkpoint_dir=tmp_path))
    with pytest.raises(CheckpointMissingError, match="sam_backends download sam2.1-tiny"):
        ctx.backend("sam2.1-tiny")
    with pytest.raises(DownloadError, match="offline"):
        ctx.download("sam2.1-tiny")
    assert not any(tmp_path.iterdir())


def test_encode_is_cached_across_callers(tmp_path):
    ctx = AppContext(AppConfig(models=("grabcut",), checkpoint_dir=tmp_path))
    image = synthetic_image(50, 70, seed=1)
    first = ctx.encode("grabcut", image)
    again = ctx.encode("grabcut", image.copy())  # same pixels, new array
    embedding, cached, seconds = again.embedding, again.cached, again.seconds
    assert not first.cached and cached and seconds >= 0 and again.waited == 0.0
    assert embedding is first.embedding
    other = ctx.encode("grabcut", synthetic_image(50, 70, seed=2))
    assert not other.cached and other.embedding is not embedding
    stats = ctx.cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 2, 2)


def test_backend_pool_loads_once_and_stays_bounded():
    calls = []
    gate = threading.Event()

    def loader(model_id):
        calls.append(model_id)
        gate.wait(5)
        return object()

    pool = BackendPool(2, loader)
    results = []
    threads = [threading.Thread(target=lambda: results.append(pool.get("a"))) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join()
    assert calls == ["a"] and len({id(r) for r in results}) == 1
    pool.get("b")
    pool.get("c")
    assert pool.loaded_ids() == ["b", "c"] and not pool.is_loaded("a")


def test_config_validation_and_model_list_parsing():
    assert parse_models("sam2.1-tiny, grabcut") == ("sam2.1-tiny", "grabcut")
    assert "sam-vit-h" in parse_models(None) and parse_models("all") == parse_models("")
    with pytest.raises(ValueError, match="Unknown model id"):
        AppConfig(models=("sam-vit-x",))
    with pytest.raises(ValueError, match="at least one model"):
        AppConfig(models=())
    assert np.isfinite(AppConfig().max_image_pixels)
