"""The warm start (``workbench.warm_start``): the default model loaded and its encoder run once
in the background, nothing cached or timed, stepping aside for a person's work, and saying why
when a model cannot be warmed; ``--no-warm-start`` turns it off."""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import pytest
from app_harness import app_config

from sam_backends.background import encoder_blocks
from workbench.context import AppContext
from workbench.warm_start import PICTURE_SIDE, plain_picture, start_warm_start, warm_start


@pytest.fixture
def ctx(sam1_small, sam2_small, tmp_path):
    context = AppContext(app_config(sam1_small, sam2_small, tmp_path / "weights"))
    yield context
    context.close()


def spy_encodes(backend, monkeypatch) -> list[str]:
    """Record each encode's picture shape when it starts and "done" when it returns."""
    calls: list[str] = []
    original = backend.encode

    def encode(image, *args, **kwargs):
        calls.append(f"start {image.shape}")
        result = original(image, *args, **kwargs)
        calls.append("done")
        return result

    monkeypatch.setattr(backend, "encode", encode)
    return calls


def test_the_model_is_loaded_and_encodes_once_with_nothing_cached_or_timed(
        ctx, sam2_small, monkeypatch):
    model_id = sam2_small.spec.model_id
    calls = spy_encodes(ctx.backend(model_id), monkeypatch)
    result = warm_start(ctx, model_id)
    assert result.warmed and result.reason == "" and result.encode_s is not None
    assert calls == [f"start {(PICTURE_SIDE, PICTURE_SIDE, 3)}", "done"]
    assert ctx.pool.is_loaded(model_id)
    assert ctx.cache.stats().entries == 0  # nobody asked for that picture
    assert ctx.encode_timings.measured(model_id) is None  # not a person's encode


def test_a_cold_start_loads_the_model_too(ctx, sam1_small):
    model_id = sam1_small.spec.model_id
    assert not ctx.pool.is_loaded(model_id)
    result = warm_start(ctx, model_id)
    assert result.warmed and result.load_s is not None
    assert ctx.pool.is_loaded(model_id)


def test_a_persons_work_arriving_mid_encode_makes_it_step_aside(ctx, sam2_small, monkeypatch):
    """A click arrives while the first encoder block runs: the next pause point drops the
    warm-up, so the later blocks never run."""
    model_id = sam2_small.spec.model_id
    backend = ctx.backend(model_id)
    calls = spy_encodes(backend, monkeypatch)
    blocks = encoder_blocks(backend)
    assert len(blocks) >= 3
    ran: list[int] = []
    with contextlib.ExitStack() as person:
        hooks = [block.register_forward_hook(lambda *_, i=i: ran.append(i))
                 for i, block in enumerate(blocks)]
        hooks.append(blocks[0].register_forward_hook(
            lambda *_: person.enter_context(ctx.foreground.active())))
        try:
            result = warm_start(ctx, model_id)
        finally:
            for hook in hooks:
                hook.remove()
    assert not result.warmed and result.reason == "a person's work came first"
    assert ran == [0] and "done" not in calls
    assert ctx.cache.stats().entries == 0


def test_work_in_flight_before_it_starts_keeps_the_encoder_idle(ctx, sam2_small, monkeypatch):
    model_id = sam2_small.spec.model_id
    calls = spy_encodes(ctx.backend(model_id), monkeypatch)
    with ctx.foreground.active():
        result = warm_start(ctx, model_id)
    assert not result.warmed and result.reason == "a person's work came first"
    assert "done" not in calls


def test_what_cannot_be_warmed_says_why_and_fetches_nothing(ctx, monkeypatch):
    monkeypatch.setenv("SAM_OFFLINE", "1")
    assert warm_start(ctx, "grabcut").reason == "this model encodes nothing"
    absent = warm_start(ctx, "sam2.1-tiny")  # offered, its weights not downloaded
    assert not absent.warmed and absent.reason == "its weights are not on disk"
    assert not ctx.status("sam2.1-tiny").present and not ctx.pool.is_loaded("sam2.1-tiny")


def test_an_app_closing_mid_encode_stops_it(ctx, sam2_small, caplog):
    model_id = sam2_small.spec.model_id
    backend = ctx.backend(model_id)
    hook = encoder_blocks(backend)[0].register_forward_hook(lambda *_: ctx.close())
    try:
        with caplog.at_level(logging.INFO, logger="samwb.warm"):
            start_warm_start(ctx, model_id).join(timeout=120)
    finally:
        hook.remove()
    assert "skipped: the app is closing" in caplog.text


def test_the_thread_says_what_it_did(ctx, sam2_small, caplog):
    with caplog.at_level(logging.INFO, logger="samwb.warm"):
        thread = start_warm_start(ctx, sam2_small.spec.model_id)
        thread.join(timeout=120)
    assert not thread.is_alive()
    assert f"Warm start: {sam2_small.spec.model_id} loaded in" in caplog.text


def test_the_picture_is_a_smooth_gradient():
    picture = plain_picture(64)
    assert picture.shape == (64, 64, 3) and picture.dtype == np.uint8
    assert picture[0, 0, 0] == 0 and picture[0, -1, 0] == 255 and picture[-1, 0, 1] == 255


def test_on_by_default_and_off_with_its_flag():
    import app

    assert app.config_from_args([]).warm_start is True
    assert app.config_from_args(["--no-warm-start"]).warm_start is False
