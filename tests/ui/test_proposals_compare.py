"""The compare view's proposals section: every selected model answers one text or everything run.

Pure parts (cards, the counts/time table, the cross-model matching) with hand-made answers;
the handlers with the real ``AppContext``, the two random-weight SAM test models, GrabCut (which
cannot segment everything: its reason goes on its row) and a random-weight OWLv2; and the
section built in a small Blocks app to check its wiring.
"""

from __future__ import annotations

import types

import gradio as gr
import numpy as np
import pytest
from app_harness import app_config, offline

from sam_backends import Instances
from sam_backends.images import image_digest
from sam_backends.masks import mask_boxes
from sam_backends.testing.random_models import synthetic_image
from ui.proposals import compare_panel
from ui.proposals.compare_panel import (
    CompareProposalsHandlers,
    ModelAnswer,
    build_compare_proposals,
    card,
    match_rows,
    summary_rows,
)
from workbench.context import AppContext
from workbench.errors import UserError

H, W = 60, 80
SCENE = synthetic_image(96, 128, seed=3)
REQUEST = types.SimpleNamespace(session_hash="browser-2")
MODELS = ["test-sam2-small", "test-sam1-small"]
# random weights: their masks are never stable at upstream's 0.95
RANDOM_WEIGHTS = {"stability_score_thresh": 0.0}


def rect(x0, y0, x1, y1):
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def answer(name, masks, scores, labels=None, seconds=1.0):
    masks = np.stack(masks) if masks else np.zeros((0, H, W), bool)
    labels = labels or ("dog",) * len(masks)
    inst = Instances(masks, np.asarray(scores, np.float32), mask_boxes(masks), labels, name,
                     {"detect": 0.25, "decode": 0.5})
    return ModelAnswer(name, name.upper(), inst, seconds)


# --- pure parts -------------------------------------------------------------------------------

def test_matching_counts_pairs_and_the_unmatched_on_each_side():
    a = answer("a", [rect(0, 0, 20, 20), rect(40, 10, 70, 40), rect(5, 40, 15, 55)],
               [0.9, 0.8, 0.7])
    # b: the second of a shifted a little (IoU 0.8), the first far off, one of its own
    b = answer("b", [rect(43, 10, 70, 40), rect(60, 45, 79, 59)], [0.6, 0.5])
    failed = ModelAnswer("c", "C", None, 0.1, "Weights missing: download them")
    rows, details = match_rows([a, failed, b])
    assert rows == [["B", 1, pytest.approx(0.9, abs=1e-3), 2, 1]]
    assert details == [["#2 dog (0.80)", "B", "#1 dog (0.60)", pytest.approx(0.9, abs=1e-3)]]
    assert match_rows([a, failed]) == ([], [])  # one usable answer: nothing to match


def test_summary_has_counts_times_stages_and_reasons():
    a = answer("a", [rect(0, 0, 20, 20)], [0.9], seconds=2.345)
    failed = ModelAnswer("grabcut", "GrabCut", None, 0.01, "Cannot segment everything")
    rows = summary_rows([a, failed])
    assert rows[0] == ["A", 1, 2.35, "detect 0.25, decode 0.50", ""]
    assert rows[1] == ["GrabCut", "–", 0.01, "", "Cannot segment everything"]


def test_card_draws_every_instance_and_captions_count_and_time():
    image = np.zeros((H, W, 3), np.uint8)
    picture, caption = card(image, answer("a", [rect(0, 0, 20, 20), rect(40, 10, 70, 40)],
                                          [0.9, 0.8], seconds=1.5))
    assert caption == "A: 2 instances · 1.5 s"
    assert picture.shape[:2] == (H, W) and picture[10, 10].any() and not picture[55, 30].any()
    _, reason = card(image, ModelAnswer("c", "C", None, 0.0, "no weights"))
    assert reason == "C: no weights"
    big = np.zeros((900, 1200, 3), np.uint8)
    empty = ModelAnswer("e", "E", Instances.empty((900, 1200), "e"), 0.2)
    picture, caption = card(big, empty)
    assert max(picture.shape[:2]) == compare_panel.CARD_SIDE and "0 instances" in caption


# --- the handlers with real models --------------------------------------------------------------

@pytest.fixture(scope="module")
def ctx(sam1_small, sam2_small, tmp_path_factory):
    from sam_backends.testing.text_models import small_owlv2_config, write_random_owlv2
    from sam_backends.text import hub

    checkpoint_dir = tmp_path_factory.mktemp("ckpt")
    write_random_owlv2(checkpoint_dir / hub.OWLV2.local_name, small_owlv2_config())
    config = app_config(sam1_small, sam2_small, checkpoint_dir,
                        temp_dir=tmp_path_factory.mktemp("temp"))
    with offline():
        context = AppContext(config)
        yield context
        context.close()


@pytest.fixture(scope="module")
def session():
    picture = types.SimpleNamespace(image=SCENE, digest=image_digest(SCENE))
    return types.SimpleNamespace(picture=picture)


@pytest.fixture()
def handlers(ctx):
    return CompareProposalsHandlers(ctx, RANDOM_WEIGHTS)


def progress_log():
    seen = []

    def progress(fraction, desc=None):
        seen.append((fraction, desc))

    return seen, progress


def test_everything_on_each_model_side_by_side(handlers, session):
    seen, progress = progress_log()
    gallery, summary, matches, details = handlers.everything(
        session, MODELS + ["grabcut"], 2, 0.0, REQUEST, progress)
    names = [handlers.ctx.spec(m).display_name for m in MODELS + ["grabcut"]]
    assert [caption.split(": ")[0] for _, caption in gallery] == names
    assert len(summary) == 3
    for row in summary[:2]:  # the SAM models answer: a count and a time
        assert isinstance(row[1], int) and row[2] >= 0 and row[4] == ""
    assert summary[2][1] == "–" and "cannot segment everything" in summary[2][4].lower()
    assert len(matches) == 1 and matches[0][0] == summary[1][0]
    matched, only_first, only_other = matches[0][1], matches[0][3], matches[0][4]
    assert matched + only_first == summary[0][1] and matched + only_other == summary[1][1]
    assert len(details) == matched and all(0.5 <= row[3] <= 1.0 for row in details)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and 0.0 <= fractions[0] and fractions[-1] <= 1.0
    assert any((desc or "").startswith(names[1] + ":") for _, desc in seen)


def test_text_on_each_model_uses_the_detector_for_sam_models(handlers, session):
    with offline():
        gallery, summary, matches, details = handlers.text(
            session, MODELS, "circle, square", 0.0, REQUEST, lambda *a, **k: None)
    assert len(gallery) == 2 and len(summary) == 2
    for row in summary:
        assert isinstance(row[1], int) and "detect" in row[3], row
    # one detection for both (the detector's feature cache): boxes, so counts, are equal
    assert summary[0][1] == summary[1][1]
    assert len(matches) == 1


def test_text_bad_input_is_refused_before_any_model(handlers, session):
    shown = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gr, "Warning", lambda message, **kw: shown.append(message))
        out = handlers.text(session, MODELS, "   ", 0.3, REQUEST, None)
        assert len(out) == compare_panel.OUTPUTS and "empty" in shown[-1]
        handlers.text(session, MODELS, "dog", 1.5, REQUEST, None)
        assert "between 0 and 1" in shown[-1]
        handlers.everything(session, MODELS, 1000, 0.5, REQUEST, None)
        assert "between 1 and 64" in shown[-1]
    with pytest.raises(UserError, match="at least one model"):
        handlers._everything(session, [], 2, 0.5, REQUEST, None)
    with pytest.raises(UserError, match="Upload an image"):
        handlers._text(types.SimpleNamespace(picture=None), MODELS, "dog", 0.3, REQUEST, None)


def test_stop_cancels_the_whole_comparison(handlers, session):
    def progress(fraction, desc=None):
        if "grid" in (desc or ""):
            handlers.stop(REQUEST)

    out = handlers.everything(session, MODELS, 2, 0.0, REQUEST, progress)
    assert len(out) == compare_panel.OUTPUTS
    assert all(isinstance(v, dict) and v.get("__type__") == "update" for v in out)


def test_section_builds_and_wires_stop_to_both_runs(ctx):
    with gr.Blocks() as demo:
        state = gr.State(None)
        models = gr.CheckboxGroup(MODELS, value=MODELS)
        section = build_compare_proposals(ctx, demo, state, models)
    deps = demo.config["dependencies"]
    on_stop = [d for d in deps if section.stop._id in [t[0] for t in d["targets"]]]
    cancelled = {c for d in on_stop for c in d["cancels"]}
    runs = [fn._id for fn in demo.fns.values() if fn.concurrency_id == "proposals"]
    assert len(runs) == 2 and set(runs) <= cancelled
    assert all(d["queue"] is False for d in on_stop)  # Stop never waits behind the runs


def test_no_match_shows_a_dash_not_a_zero_iou():
    a = answer("a", [rect(0, 0, 20, 20)], [0.9])
    b = answer("b", [rect(50, 30, 79, 59)], [0.8])
    rows, details = match_rows([a, b])
    assert rows == [["B", 0, "–", 1, 1]] and details == []
