"""One memory budget split into the bounds of what holds memory (``workbench.memory``)."""

from __future__ import annotations

import pytest

from workbench.config import AppConfig
from workbench.context import AppContext
from workbench.memory import (
    BASE_BYTES,
    CACHE_RESIDENT_FACTOR,
    ENCODE_WORK_BYTES,
    MEMORY_BUDGET_ENV,
    MemoryBudgetError,
    budget_from_env,
    plan_memory,
    weights_bytes,
)

GIB = 1 << 30


def test_the_shares_add_up_to_the_budget_with_the_weights_counted():
    plan = plan_memory("6GiB", weights=400 << 20, everything_max_bytes=GIB)
    assert plan.work == ENCODE_WORK_BYTES + GIB
    resident = (plan.base + plan.weights + plan.work + plan.cache_bytes * CACHE_RESIDENT_FACTOR
                + plan.session_bytes + plan.store_bytes)
    assert 6 * GIB - 16 <= resident <= 6 * GIB
    bigger = plan_memory("6GiB", weights=GIB, everything_max_bytes=GIB)
    assert bigger.cache_bytes < plan.cache_bytes and bigger.session_bytes < plan.session_bytes


def test_an_explicit_cache_bound_is_kept_and_the_rest_share_what_is_left():
    plan = plan_memory("6GiB", weights=0, everything_max_bytes=GIB, cache_bytes="1GiB")
    assert plan.cache_bytes == GIB
    assert plan.session_bytes + plan.store_bytes <= 6 * GIB - BASE_BYTES - plan.work - GIB
    with pytest.raises(MemoryBudgetError, match="--cache-bytes"):
        plan_memory("4GiB", weights=0, everything_max_bytes=GIB, cache_bytes="3GiB")


def test_a_budget_too_small_is_refused_with_what_to_change():
    with pytest.raises(MemoryBudgetError, match="--memory-budget.*--models"):
        plan_memory("2GiB", weights=GIB, everything_max_bytes=GIB)
    assert plan_memory(None, weights=GIB, everything_max_bytes=GIB).cache_bytes is None


def test_weights_are_the_largest_models_loaded_at_once():
    assert weights_bytes([100, 300, 0, 200], loaded_at_once=2) == 500
    assert weights_bytes([None, 10], loaded_at_once=1) == GIB


def test_the_env_variable_gives_the_budget(monkeypatch):
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "6GiB")
    assert budget_from_env() == 6 * GIB
    monkeypatch.delenv(MEMORY_BUDGET_ENV)
    assert budget_from_env() is None


def test_the_app_takes_its_bounds_from_the_budget(tmp_path):
    ctx = AppContext(AppConfig(models=("grabcut",), memory_budget="4GiB",
                               temp_dir=tmp_path))
    try:
        assert ctx.memory.weights == 0  # GrabCut has no weights
        assert ctx.cache.max_bytes == ctx.memory.cache_bytes
        assert ctx.sessions.max_bytes == ctx.memory.session_bytes
    finally:
        ctx.close()


def test_the_flag_and_the_env_variable_reach_the_config(monkeypatch):
    import app

    config = app.config_from_args(["--memory-budget", "6GiB", "--metrics", "key"])
    assert config.memory_budget == 6 * GIB and config.metrics_access == "key"
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "5GiB")
    assert app.config_from_args([]).memory_budget == 5 * GIB
    assert app.config_from_args(["--memory-budget", "7GiB"]).memory_budget == 7 * GIB
    with pytest.raises(ValueError, match="--metrics"):
        AppConfig(models=("grabcut",), metrics_access="everyone")


def test_the_idle_trimmer_trims_only_when_quiet_and_after_new_work():
    from workbench.memory import IdleTrimmer

    state = {"quiet": False, "done": 0}
    trimmer = IdleTrimmer(lambda: state["quiet"], lambda: state["done"])
    assert not trimmer.tick()  # work in flight
    state["quiet"] = True
    assert trimmer.tick() and trimmer.trims == 1
    assert not trimmer.tick()  # nothing ran since
    state["done"] = 5
    assert trimmer.tick() and trimmer.trims == 2


def test_a_served_app_trims_when_quiet(tmp_path):
    ctx = AppContext(AppConfig(models=("grabcut",), temp_dir=tmp_path))
    try:
        trimmer = ctx.start_idle_trim()
        import numpy as np

        ctx.encode("grabcut", np.zeros((32, 32, 3), np.uint8))
        assert ctx.foreground.count == 0 and trimmer.tick()
    finally:
        ctx.close()
    assert not trimmer._thread.is_alive()  # stopped at shutdown
