"""One set of prompts replayed on several real models (small random-weight SAMs, GrabCut) and a
model whose weights are missing, through the app's shared context."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import inference
from workbench.compare.state import CompareSession, rerun_stale, run_prompts, select_models
from workbench.config import AppConfig, ExtraModel
from workbench.context import AppContext
from workbench.objects import PromptSet


def scene():
    image = np.full((72, 96, 3), 90, np.uint8)
    image[20:50, 25:60] = (230, 60, 40)
    image[50:66, 70:90] = (40, 90, 230)
    return image


@pytest.fixture
def ctx(tmp_path, sam1_small, sam2_small):
    config = AppConfig(
        models=("grabcut", "sam-vit-h"),
        extra_models=(ExtraModel(sam1_small.spec, sam1_small.path),
                      ExtraModel(sam2_small.spec, sam2_small.path)),
        device="cpu", precision="fp32", checkpoint_dir=tmp_path / "no-checkpoints",
        examples_dir=None,
    )  # fmt: skip
    return AppContext(config)


@pytest.fixture
def session():
    s = CompareSession("test", ("test-sam1-small", "grabcut", "sam-vit-h"))
    s.set_image(scene(), "scene-digest", "scene.png")
    return s


def last(updates):
    """The final view a streaming handler yields."""
    return list(updates)[-1]


def structure(workspace):
    return [(o.object_id, o.prompts, o.cursor, len(o.history)) for o in workspace.objects]


def test_box_then_point_on_every_model(ctx, session):
    box = PromptSet().with_box((20, 15, 65, 55))
    run_prompts(ctx, session, box)

    sam, grabcut, missing = (session.outcomes[m] for m in session.models)
    assert "python -m sam_backends download sam-vit-h" in missing.error
    assert session.workspaces["sam-vit-h"].active.result is None
    for outcome in (sam, grabcut):
        assert outcome.error is None and outcome.encode_seconds > 0 and not outcome.cached
        assert outcome.decode_seconds > 0
    assert set(ctx.encode_timings.snapshot()) == {"test-sam1-small", "grabcut"}
    assert session.canvas_model == "test-sam1-small"
    assert session.workspace is session.workspaces["test-sam1-small"]

    # every model answered exactly what the segment view's policy gives for these prompts
    embedding = ctx.encode("test-sam1-small", session.image, session.digest).embedding
    expected = inference.decode(ctx.backend("test-sam1-small"), embedding, box)
    first = session.workspaces["test-sam1-small"].active.result
    assert np.array_equal(first.mask(), expected.result.mask())
    grabcut_mask = session.workspaces["grabcut"].active.result.mask()
    assert grabcut_mask[30, 40] and not grabcut_mask[5, 5]

    refine = box.with_point(40, 30, 1)
    run_prompts(ctx, session, refine)
    # the SAM model refined with its own previous logits
    expected = inference.decode(ctx.backend("test-sam1-small"), embedding, refine,
                                previous=first)
    second = session.workspaces["test-sam1-small"].active.result
    assert np.array_equal(second.mask(), expected.result.mask())
    assert len({str(structure(ws)) for ws in session.workspaces.values()}) == 1
    assert session.workspaces["grabcut"].active.cursor == 2

    # each image was encoded once per model, whatever the number of interactions
    assert ctx.cache.stats().misses == 2
    assert session.outcomes["test-sam1-small"].encode_seconds == sam.encode_seconds
    assert not session.outcomes["test-sam1-small"].cached


def test_objects_undo_and_a_newly_selected_model(ctx, session):
    run_prompts(ctx, session, PromptSet().with_box((20, 15, 65, 55)))
    session.apply(lambda ws: ws.new_object())
    run_prompts(ctx, session, PromptSet().with_box((66, 46, 94, 70)))
    for model_id in ("test-sam1-small", "grabcut"):
        workspace = session.workspaces[model_id]
        assert [o.object_id for o in workspace.with_masks()] == [1, 2]
    assert session.union_mask("grabcut")[55, 80] and session.union_mask("grabcut")[30, 40]

    session.apply(lambda ws: ws.update_active(lambda o: o.undo()))
    assert all(ws.active.is_empty for ws in session.workspaces.values())
    session.apply(lambda ws: ws.update_active(lambda o: o.redo()))
    rerun_stale(ctx, session)  # nothing is stale: no model runs again
    assert ctx.cache.stats().misses == 2

    select_models(session, ["test-sam1-small", "grabcut", "test-sam2-small"])
    assert session.workspaces["test-sam2-small"].with_masks() == []
    rerun_stale(ctx, session)
    added = session.workspaces["test-sam2-small"]
    assert [o.object_id for o in added.with_masks()] == [1, 2]
    assert all(o.result.model_id == "test-sam2-small" for o in added.with_masks())
    assert structure(added) == structure(session.workspaces["grabcut"])
    assert ctx.cache.stats().misses == 3
    assert session.outcomes["test-sam2-small"].encode_seconds > 0


def test_a_prompt_one_model_cannot_take_leaves_the_others_working(ctx, session):
    background_only = PromptSet().with_point(5, 5, 0)
    run_prompts(ctx, session, background_only)
    assert "foreground point" in session.outcomes["grabcut"].error
    assert session.workspaces["grabcut"].active.result is None
    assert session.outcomes["test-sam1-small"].error is None
    assert session.workspaces["test-sam1-small"].active.result is not None
    assert session.workspaces["grabcut"].active.prompts == background_only


def test_expected_times_before_running(ctx, session):
    from ui.compare.handlers import estimates_markdown

    models = ["test-sam1-small", "grabcut", "sam-vit-h"]
    text = estimates_markdown(ctx, models)
    assert ("**test-sam1-small (random weights, test only)**: no encode measured on this machine "
            "yet.") in text
    assert "python -m sam_backends download sam-vit-h" in text
    run_prompts(ctx, session, PromptSet().with_box((20, 15, 65, 55)))
    assert "image already encoded (cached)" in estimates_markdown(ctx, models, session.digest)
    measured = ctx.encode_timings.measured("test-sam1-small")
    assert measured == session.outcomes["test-sam1-small"].encode_seconds
    assert "(measured here)" in estimates_markdown(ctx, models, "another-image")


def test_slow_model_estimate_from_a_measured_one(tmp_path):
    from ui.compare.handlers import estimates_markdown

    (tmp_path / "sam_vit_b_01ec64.pth").write_bytes(b"present")  # only its presence matters
    ctx = AppContext(AppConfig(models=("sam-vit-b", "sam-vit-h", "grabcut"),
                               checkpoint_dir=tmp_path, examples_dir=None))
    ctx.encode_timings.record("sam-vit-b", 14.0)
    text = estimates_markdown(ctx, ["sam-vit-b", "sam-vit-h"])
    assert "- ⏳ **SAM ViT-B**: encoding takes about 14 s (measured here)." in text
    assert ("Once there, encoding takes roughly 86 s (a guess: not measured here yet; scaled "
            "from SAM ViT-B's time by encoder cost).") in text


def test_an_encode_reports_its_own_time_and_its_wait_for_other_models_apart(ctx, monkeypatch):
    """GrabCut's 3.46 s "Encode" was mostly waiting behind the other models in the encoder
    lane: the model's own time is measured once admitted, and only that is its estimate."""
    import contextlib

    import workbench.context as context_module

    clock = [0.0]

    @contextlib.contextmanager
    def admit_after_others():
        clock[0] += 3.0  # the other models' encodes run first
        yield

    def encoder(model_id, image):
        clock[0] += 1.0
        return object()

    monkeypatch.setattr(context_module.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(ctx.encoder_lane, "admit", admit_after_others)
    monkeypatch.setattr(ctx, "_encode_task", encoder)
    encoded = ctx.encode("grabcut", scene(), "wait-digest")
    assert (encoded.cached, encoded.seconds, encoded.waited) == (False, 1.0, 3.0)
    assert ctx.encode_timings.measured("grabcut") == 1.0


def test_handlers_selection_and_ground_truth_checks(ctx, tmp_path):
    from PIL import Image

    from ui.compare.handlers import CompareHandlers, default_models
    from workbench.errors import UserError

    handlers = CompareHandlers(ctx, [])
    # sam-vit-b is not offered and sam-vit-h is absent: the first two present models
    assert default_models(ctx) == ["grabcut", "test-sam1-small"]
    outputs = last(handlers._change_models(None, ["grabcut"], None))
    session = outputs[0]
    assert session.models == ("grabcut", "test-sam1-small")  # unchanged: one is no comparison
    assert "Tick at least 2 models (now 1)" in outputs[10]
    with pytest.raises(UserError, match="between 2 and 6"):
        last(handlers._change_models(session, ["grabcut"] + [f"m{i}" for i in range(6)], None))
    outputs = last(handlers._change_models(session, ["test-sam2-small", "grabcut"], None))
    assert outputs[0].models == ("grabcut", "test-sam2-small")  # the picker's order

    session.set_image(scene(), "scene-digest", "scene.png")
    wrong = tmp_path / "wrong.png"
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(wrong)
    with pytest.raises(UserError, match="10x10 but the image is 96x72"):
        handlers._ground_truth(session, str(wrong), None)
    truth = tmp_path / "truth.png"
    mask = np.zeros((72, 96), np.uint8)
    mask[20:50, 25:60] = 255
    Image.fromarray(mask).save(truth)
    handlers._ground_truth(session, str(truth), None)
    assert np.array_equal(session.ground_truth, mask > 0)
    with pytest.raises(UserError, match="Segment something first"):
        handlers._export(session, None)


def test_progress_is_reported_per_model(ctx, session):
    from workbench.compare.state import encode_models

    calls = []

    def progress(fraction, desc=""):
        calls.append((fraction, desc))

    embeddings = encode_models(ctx, session, progress)
    assert sorted(embeddings) == ["grabcut", "test-sam1-small"]
    descriptions = [d for _, d in calls]
    assert "test-sam1-small (random weights, test only): loading the model (1/3)" in descriptions
    assert ("test-sam1-small (random weights, test only): encoding the image, first time on "
            "this machine (1/3)") in descriptions
    assert "GrabCut baseline (no weights): loading the model (2/3)" in descriptions
    assert [f for f, _ in calls] == sorted(f for f, _ in calls) and calls[-1][0] == 1.0
    assert "not downloaded" in session.outcomes["sam-vit-h"].error

    calls.clear()
    encode_models(ctx, session, progress)
    assert "test-sam1-small (random weights, test only): embedding from cache (1/3)" in [
        d for _, d in calls]

    calls.clear()
    other = CompareSession("other", ("test-sam1-small", "grabcut"))
    other.set_image(scene()[::-1].copy(), "flipped", "flipped.png")
    encode_models(ctx, other, progress)
    assert any(d.startswith("test-sam1-small (random weights, test only): encoding the image, "
                            "expected about") and d.endswith("(measured here) (1/2)")
               for _, d in calls)


def test_defaults_tick_only_present_models(tmp_path):
    from ui.compare.handlers import default_models, model_choices

    def ctx_with(*files):
        for name in files:
            (tmp_path / name).write_bytes(b"present")  # only its presence matters
        return AppContext(AppConfig(models=("sam-vit-b", "sam-vit-h", "grabcut", "sam2.1-tiny"),
                                    checkpoint_dir=tmp_path, examples_dir=None))

    ctx = ctx_with()
    assert default_models(ctx) == ["grabcut"]  # never an absent model, even to make a pair
    labels = dict((m, label) for label, m in model_choices(ctx))
    assert labels["sam-vit-h"].endswith("· not downloaded") and "·" not in labels["grabcut"]
    assert default_models(ctx_with("sam_vit_b_01ec64.pth")) == ["sam-vit-b", "grabcut"]
    assert default_models(ctx_with("sam_vit_h_4b8939.pth")) == ["sam-vit-b", "sam-vit-h"]


class Event:
    def __init__(self, data):
        self._data = data


def test_each_model_answers_as_it_finishes(ctx, session, monkeypatch):
    """Models run side by side: GrabCut, held until the SAM model has answered, does not hold
    that answer back; after each answer its card has its mask and the others still say they
    are answering. (Sequential decoding would wait out the gate's timeout and fail.)"""
    import threading

    from sam_backends.families.grabcut import backend as grabcut_backend
    from workbench.compare.state import run_prompts_steps
    from workbench.compare.values import cards_value

    predict = grabcut_backend.GrabCutBackend.predict
    gate = threading.Event()

    def slow(self, embedding, prompts):
        gate.wait(timeout=60)
        return predict(self, embedding, prompts)

    monkeypatch.setattr(grabcut_backend.GrabCutBackend, "predict", slow)
    ctx.encode("test-sam1-small", session.image, session.digest)
    ctx.encode("grabcut", session.image, session.digest)
    steps = run_prompts_steps(ctx, session, PromptSet().with_box((20, 15, 65, 55)))
    names = {m: m for m in session.models}
    seen = []
    for model_id in steps:
        seen.append(model_id)
        if model_id == "test-sam1-small":
            gate.set()
        cards = {c["id"]: c for c in cards_value(session, names, {})["items"]}
        assert session.pending == frozenset(session.models) - set(seen)
        for other in session.pending:
            assert cards[other]["pending"] and "Answering" in cards[other]["waiting"]
            assert session.workspaces[other].active.result is None
        if model_id != "sam-vit-h":
            assert session.workspaces[model_id].active.result is not None
            assert cards[model_id]["cutout"] and not cards[model_id]["pending"]
    assert seen == ["sam-vit-h", "test-sam1-small", "grabcut"]
    assert session.pending == frozenset()
    assert [structure(session.workspaces[m]) for m in session.models].count(
        structure(session.workspaces["grabcut"])) == 3  # the same step everywhere at the end


def test_box_handler_streams_one_view_per_model(ctx, session):
    from ui.compare.handlers import VIEW_SIZE, CompareHandlers

    handlers = CompareHandlers(ctx, [])
    views = list(handlers._box(session, Event({"box": [20, 15, 65, 55]}), None))
    assert len(views) == 3 and all(len(v) == VIEW_SIZE for v in views)
    assert "Still answering" in views[0][6] and "Still answering" not in views[-1][6]
    filled = [sum(bool(c["cutout"]) for c in v[3]["items"]) for v in views]
    assert filled == sorted(filled) and filled[-1] == 2  # the absent model never gets one
    # a failure while streaming: one toast and the unchanged view, not a broken page
    broken = list(handlers.box(session, Event({"box": "nonsense"}), None))
    assert len(broken) == 1 and broken[0][0] is session


def test_canvas_switch_shows_the_chosen_models_masks(ctx, session):
    from ui.compare.handlers import CompareHandlers

    handlers = CompareHandlers(ctx, [])
    run_prompts(ctx, session, PromptSet().with_box((20, 15, 65, 55)))
    assert session.canvas_model == "test-sam1-small"
    view = handlers._show_on_canvas(session, "grabcut", None)
    assert session.canvas_model == "grabcut" and session.workspace is session.workspaces[
        "grabcut"]
    assert view[-1]["value"] == "grabcut"
    assert [m for _, m in view[-1]["choices"]] == list(session.models)
    cards = {c["id"]: c for c in view[3]["items"]}
    assert cards["grabcut"]["on_canvas"] and not cards["test-sam1-small"]["on_canvas"]
    handlers._show_on_canvas(session, "not-compared", None)  # ignored
    assert session.canvas_model == "grabcut"
    select_models(session, ["test-sam1-small", "sam-vit-h"])  # the choice is gone: automatic
    assert session.canvas_model == "test-sam1-small"


def test_an_absent_model_is_downloaded_from_the_compare_view(ctx, monkeypatch):
    from ui.compare.handlers import CompareHandlers
    from ui.widgets import models_panel

    for name in ("SAM_OFFLINE", "HF_HUB_OFFLINE"):  # a server that may download (faked below)
        monkeypatch.delenv(name, raising=False)

    assert models_panel.missing_choices(ctx)[0][1] == "sam-vit-h"

    def fake_download(model_id, on_progress=None):
        path = ctx.checkpoint_file(model_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"weights")
        on_progress(7, 7)
        return path

    monkeypatch.setattr(ctx, "download", fake_download)
    reports = []
    handlers = CompareHandlers(ctx, [])
    picker, estimates, choice, button = handlers._download(
        ["grabcut", "test-sam1-small"], "sam-vit-h",
        lambda fraction, desc="": reports.append(desc))
    assert picker["value"] == ["grabcut", "sam-vit-h", "test-sam1-small"]
    assert not any("not downloaded" in label for label, _ in picker["choices"])
    assert choice["visible"] is False and button["visible"] is False
    assert reports and reports[-1].startswith("Downloading SAM ViT-H")
    assert "SAM ViT-H" in estimates


def test_the_segment_tabs_image_comes_over_with_its_digest(ctx, session):
    from ui.compare.handlers import CompareHandlers
    from workbench.session import Session

    handlers = CompareHandlers(ctx, [])
    segment = Session("seg", "grabcut")
    image = scene()[::-1].copy()
    segment.set_image(image, "segment-digest", "from segment.png")
    views = list(handlers._from_segment(session, segment, list(session.models), None,
                                        progress=lambda *a, **k: None))
    assert views and session.digest == "segment-digest" and session.image_name == (
        "from segment.png")
    assert np.array_equal(session.image, image)
    empty = list(handlers.from_segment(session, Session("x", "grabcut"), list(session.models),
                                       None))
    assert len(empty) == 1 and session.digest == "segment-digest"  # refused, unchanged
