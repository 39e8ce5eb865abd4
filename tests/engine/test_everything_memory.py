"""A "segment everything" run's memory is bounded by its grid (``sam_backends.automatic.memory``):
smaller batches when that suffices, else a refusal that names the largest grid allowed.
Arithmetic only (no model): the run itself is checked through ``workbench.proposals.engines``
with the engine's generator replaced by a recorder."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from sam_backends.automatic import (
    EverythingParamError,
    EverythingParams,
    fit_memory,
    largest_grid,
    peak_bytes,
)
from sam_backends.automatic.memory import BATCH_BYTES, KEPT_BYTES, RUN_TABLE_BYTES

GIB = 1 << 30


def test_the_worst_case_of_a_64_grid_is_what_was_measured():
    """Issue 19: a 64 x 64 run cost +1.6 GB RSS; its worst case is 3 x 4,096 kept candidates of
    128 KiB plus one batch, and the fast decoder's per-run tables."""
    params = EverythingParams(points_per_side=64)
    assert peak_bytes(params) == RUN_TABLE_BYTES + 3 * (4096 * KEPT_BYTES + 64 * BATCH_BYTES)
    assert 1.5e9 < peak_bytes(params) < 1.8e9


def test_a_grid_that_fits_is_unchanged_and_none_means_no_bound():
    params = EverythingParams(points_per_side=32)
    assert fit_memory(params, GIB) is params
    big = EverythingParams(points_per_side=64)
    assert fit_memory(big, None) is big


def test_a_large_grid_that_fits_in_smaller_batches_runs_in_smaller_batches():
    params = EverythingParams(points_per_side=50, points_per_batch=256)
    fitted = fit_memory(params, GIB)
    assert 1 <= fitted.points_per_batch < 256
    assert peak_bytes(fitted) <= GIB
    bigger = dataclasses.replace(fitted, points_per_batch=fitted.points_per_batch + 1)
    assert peak_bytes(bigger) > GIB  # the largest batch that fits, not just any
    assert dataclasses.replace(fitted, points_per_batch=256) == params  # nothing else changed


def test_a_grid_too_large_is_refused_naming_the_largest_allowed():
    params = EverythingParams(points_per_side=64)
    largest = largest_grid(params, GIB)
    with pytest.raises(EverythingParamError, match=f"largest grid allowed is {largest} x "
                                                   f"{largest}") as refused:
        fit_memory(params, GIB)
    assert refused.value.field == "points_per_side"
    assert "multimask_output false" in str(refused.value)
    fits = fit_memory(EverythingParams(points_per_side=largest), GIB)  # the named grid runs
    assert peak_bytes(fits) <= GIB
    with pytest.raises(EverythingParamError):
        fit_memory(EverythingParams(points_per_side=largest + 1), GIB)
    single = EverythingParams(points_per_side=64, multimask_output=False)
    assert fit_memory(single, GIB).points_per_side == 64  # one candidate a point fits


def test_a_budget_under_the_run_tables_allows_no_grid():
    """The per-run tables count too: a budget they alone fill leaves no grid, and one that
    holds them and a 1 x 1 grid's worst case allows exactly that."""
    params = EverythingParams(points_per_side=1, points_per_batch=1)
    assert largest_grid(params, RUN_TABLE_BYTES) == 0
    assert largest_grid(params, peak_bytes(params)) == 1
    with pytest.raises(EverythingParamError):
        fit_memory(params, peak_bytes(params) - 1)


def test_the_workbench_runs_the_generator_with_the_bounded_batch(monkeypatch):
    from sam_backends import automatic
    from workbench.proposals import engines

    seen = []
    monkeypatch.setattr(automatic, "segment_everything",
                        lambda backend, embedding, params, **kw: seen.append(params) or "found")
    encoded = []
    ctx = SimpleNamespace(
        config=SimpleNamespace(everything_max_bytes=GIB),
        spec=lambda model_id: SimpleNamespace(display_name="Test",
                                              capabilities=SimpleNamespace(everything=True)),
        backend=lambda model_id: "backend",
        encode=lambda model_id, image, digest: encoded.append(model_id) or SimpleNamespace(
            embedding="embedding"))
    image = np.zeros((8, 8, 3), np.uint8)
    found = engines.everything_with(ctx, "m", image, {"points_per_side": 50,
                                                      "points_per_batch": 256})
    assert found == "found" and seen[0].points_per_side == 50
    assert seen[0].points_per_batch < 256 and peak_bytes(seen[0]) <= GIB
    with pytest.raises(EverythingParamError, match="largest grid allowed"):
        engines.everything_with(ctx, "m", image, {"points_per_side": 64})
    assert encoded == ["m"]  # the refused grid never reached the encoder
