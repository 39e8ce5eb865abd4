"""The segment view's proposals handlers: bad input named, Stop (cancellation), keeping.

Direct calls on ``ProposalsHandlers`` with the real ``AppContext``, the random-weight SAM 2.1
test model and a random-weight OWLv2 (tiny byte-level tokenizer: every non-ASCII character is
spelled byte by byte, i.e. "a script the tokenizer does not know"). The unwrapped ``_run``
methods are called where a test wants the exception (the wrapped ones turn it into a toast).
"""

from __future__ import annotations

import types

import gradio as gr
import numpy as np
import pytest
from app_harness import app_config, offline

from sam_backends import PromptError, UnsupportedPromptError
from sam_backends.images import image_digest
from sam_backends.testing.random_models import synthetic_image
from ui.proposals.handlers import CancelFlags, ProposalsHandlers
from workbench.context import AppContext
from workbench.errors import UserError
from workbench.proposals import engines, logic
from workbench.proposals.detector_cache import BoundedDetectorCache
from workbench.session import Session

SCENE = synthetic_image(96, 128, seed=3)
REQUEST = types.SimpleNamespace(session_hash="browser-1")
# random weights: their masks are never stable at upstream's 0.95
RANDOM_WEIGHTS = {"stability_score_thresh": 0.0}


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


@pytest.fixture()
def session(ctx):
    s = Session("browser-1", ctx.default_model())
    s.set_image(SCENE, image_digest(SCENE), "scene.png")
    return s


@pytest.fixture()
def handlers(ctx):
    return ProposalsHandlers(ctx, RANDOM_WEIGHTS)


def no_progress(fraction, desc=None):
    pass


def decode_payload(payload, height, width):
    """A canvas mask payload (a cropped 1-bit PNG at display size) as a bool H x W mask."""
    import base64
    import io

    from PIL import Image

    crop = Image.open(io.BytesIO(base64.b64decode(payload["png"].split(",", 1)[1])))
    crop = np.asarray(crop.convert("L")) > 0  # transparent (index 0) stays 0
    out = np.zeros((height, width), bool)
    out[payload["y"]:payload["y"] + payload["h"], payload["x"]:payload["x"] + payload["w"]] = crop
    return out


# --- bad input: each refused before model work, the limit named ------------------------------

@pytest.mark.parametrize(("text", "needle"), [
    ("", "empty"),
    ("  \t  ", "empty"),
    ("a" * 10_000, "10000 characters; the limit is 500"),
    (", ".join(f"t{i}" for i in range(500)), "the limit is 500"),
    (",".join(f"p{i}" for i in range(17)), "more than 16 phrases"),
], ids=["empty", "whitespace", "10k-chars", "500-phrases", "17-phrases"])
def test_text_bad_input_names_the_limit(handlers, session, text, needle):
    with pytest.raises(PromptError, match=needle):
        handlers._text(session, text, engines.DETECTOR, 0.3, REQUEST, no_progress)


def test_text_in_an_unknown_script_is_refused_by_the_tokenizer(handlers, session):
    with offline(), pytest.raises(PromptError, match="tokenizer does not know.*English"):
        handlers._text(session, "自転車", engines.DETECTOR, 0.3, REQUEST, no_progress)


@pytest.mark.parametrize("points", [1000, 0, "many"])
def test_grid_outside_its_limit_is_refused(handlers, session, points):
    with pytest.raises(PromptError, match="between 1 and 64|whole number"):
        handlers._everything(session, points, 0.5, REQUEST, no_progress)


@pytest.mark.parametrize("threshold", [-0.1, 1.01, float("nan")])
def test_thresholds_outside_the_unit_interval_are_refused(handlers, session, threshold):
    with pytest.raises(UserError, match="between 0 and 1"):
        handlers._everything(session, 4, threshold, REQUEST, no_progress)
    with pytest.raises(UserError, match="between 0 and 1"):
        handlers._text(session, "dog", engines.DETECTOR, threshold, REQUEST, no_progress)
    with pytest.raises(UserError, match="between 0 and 1"):
        handlers._threshold(session, None, threshold)


def test_a_model_without_text_capability_names_the_alternatives(ctx, session):
    with pytest.raises(UnsupportedPromptError, match="does not read text.*sam3.*owlv2"):
        engines.text(ctx, "test-sam2-small", "", SCENE, ("dog",), 0.3)


def test_no_image_is_a_clear_message(handlers):
    with pytest.raises(UserError, match="Upload an image"):
        handlers._everything(Session("x", "test-sam2-small"), 4, 0.5, REQUEST, no_progress)


def test_wrapped_handler_keeps_the_panel_on_bad_input(handlers, session, monkeypatch):
    shown = []
    monkeypatch.setattr(gr, "Warning", lambda message, **kw: shown.append(message))
    outputs = handlers.text(session, "", engines.DETECTOR, 0.3, REQUEST, no_progress)
    assert len(outputs) == 3 and shown and "empty" in shown[0]


# --- Stop ---------------------------------------------------------------------------------------

def test_cancel_flags_are_per_session_and_bounded():
    flags = CancelFlags(capacity=2)
    first = flags.start("a")
    assert flags.stop("a") and first.is_set()
    again = flags.start("a")  # a new run starts unstopped
    assert not again.is_set()
    flags.start("b")
    flags.start("c")  # "a" is the oldest: forgotten
    assert not flags.stop("a") and flags.stop("c")
    assert not flags.stop("nobody")
    flags.finish("c", again)  # not c's flag: kept
    assert flags.stop("c")
    flags.finish("c", flags._flags["c"])
    assert not flags.stop("c")  # its run ended: nothing to stop


def test_engine_cancel_raises_cancelled(ctx):
    with pytest.raises(engines.Cancelled):
        engines.everything(ctx, "test-sam2-small", SCENE, 4, 0.0, defaults=RANDOM_WEIGHTS,
                           cancel=lambda: True)
    with offline(), pytest.raises(engines.Cancelled):
        engines.text(ctx, engines.DETECTOR, "test-sam2-small", SCENE, ("dog",), 0.0,
                     cancel=lambda: True)


def test_stop_during_everything_keeps_nothing(handlers, session):
    """Stop pressed while the grid runs: the engine sees its flag at the next batch, the run
    ends with a clear status, the panel and the session's objects stay as they were."""
    before = session.workspace
    seen = []

    pressed = []

    def progress(fraction, desc=None):  # the Stop button, pressed once the grid starts
        seen.append(desc or "")
        if "grid" in (desc or "") and not pressed:
            # the button's own answer: the run's event is cancelled, so its outputs never land
            pressed.append(handlers.stop(None, REQUEST))

    state, picture, status = handlers.everything(session, 4, 0.0, REQUEST, progress)
    assert isinstance(state, type(gr.skip())) and isinstance(picture, type(gr.skip()))
    assert status.startswith("Stopped") and "nothing was kept" in status
    assert session.workspace is before
    assert any("Encoding" in text for text in seen)
    assert pressed == ["Stopped: nothing was kept from that run."]
    skip = type(gr.skip())
    assert isinstance(handlers.stop(None, REQUEST), skip)  # no run: nothing to say
    # the next run starts with a fresh flag and finishes
    state, picture, status = handlers.everything(session, 4, 0.0, REQUEST, no_progress)
    assert isinstance(state, logic.ProposalSet) and "proposal" in status


def test_stop_during_text_keeps_nothing(handlers, session):
    def progress(fraction, desc=None):
        if (desc or "").startswith("Encoding"):
            handlers.stop(None, REQUEST)

    with offline():
        _, _, status = handlers.text(session, "dog", engines.DETECTOR, 0.0, REQUEST, progress)
    assert status.startswith("Stopped")


def test_stop_is_wired_to_cancel_both_runs(ctx):
    from ui.proposals.panel import build_proposals_panel

    with gr.Blocks() as demo:
        from ui.widgets.canvas import PromptCanvas

        panel = build_proposals_panel(ctx, demo, gr.State(None), PromptCanvas({}))
    deps = demo.config["dependencies"]
    ran = {dep["id"] for dep in panel.ran}
    on_stop = [d for d in deps if panel.stop._id in [t[0] for t in d["targets"]]]
    assert len(ran) == 2 and any(ran <= set(d["cancels"]) for d in on_stop)
    assert all(d["queue"] is False for d in on_stop)  # Stop never waits behind the run


# --- the run, the review and keeping ------------------------------------------------------------

def click_on(index):
    return types.SimpleNamespace(_data={"index": index})


def test_everything_is_reviewed_on_the_canvas_then_keep_selected_makes_objects(handlers,
                                                                             session):
    state, canvas, status = handlers.everything(session, 4, 0.0, REQUEST, no_progress)
    assert isinstance(state, logic.ProposalSet) and len(state) > 0, status
    # the segment view's canvas draws every visible proposal, best first, none selected yet
    drawn = canvas["proposals"]
    assert [p["index"] for p in drawn] == [p.index for p in state.visible]
    assert not any(p["selected"] for p in drawn) and "Reviewing" in canvas["hint"]
    first = state.visible[0]
    # its mask as the canvas gets it: the full mask sampled at display pixel centres
    from workbench.segment.masks import _source_index
    full = first.result.mask()
    rows = _source_index(canvas["dh"], full.shape[0])
    cols = _source_index(canvas["dw"], full.shape[1])
    mask = decode_payload(drawn[0]["mask"], canvas["dh"], canvas["dw"])
    assert mask.sum() > 0 and np.array_equal(mask, full[rows][:, cols])
    # a click on the canvas names the proposal under it: selected, and drawn so
    state, canvas, status = handlers.toggle(session, state, click_on(first.index))
    assert state.selected == {first.index}
    assert [p["selected"] for p in canvas["proposals"]][0] is True
    # a later view of the canvas (an undo, a new object) still shows the review
    from workbench.segment.values import live_canvas_value
    assert len(live_canvas_value(session, handlers.ctx)["proposals"]) == len(drawn)
    session_out, cleared, canvas, note = handlers.keep(session, state, None, everything=False)
    assert session_out is session and cleared is None and note.startswith("Kept 1 object")
    assert "proposals" not in canvas and session.review is None
    kept = [o for o in session.workspace.objects if o.result is not None]
    assert len(kept) == 1 and kept[0].prompts.box == first.box
    assert canvas["objects"][-1]["mask"] is not None  # the kept one is an ordinary object now


def test_a_click_on_a_proposal_that_is_not_shown_is_refused(handlers, session):
    state, _, _ = handlers.everything(session, 4, 0.0, REQUEST, no_progress)
    hidden = logic.with_threshold(state, 1.0)
    gone = next((p.index for p in state.proposals if p.score < 1.0), None)
    assert gone is not None
    with pytest.raises(UserError, match="no longer shown"):
        handlers._toggle(session, hidden, click_on(gone))
    with pytest.raises(UserError, match="not a proposal number"):
        handlers._toggle(session, state, click_on("two"))


def test_discard_and_a_new_image_end_the_review(handlers, session):
    before = session.nbytes()
    state, _, _ = handlers.everything(session, 4, 0.0, REQUEST, no_progress)
    # the review is the session's memory too (the budget sees it), and goes with it
    held = sum(p.result.bits.nbytes + p.small.nbytes for p in state.proposals)
    assert session.nbytes() >= before + held
    cleared, canvas, status = handlers.discard(session, state)
    assert cleared is None and "proposals" not in canvas and "discarded" in status
    state, canvas, _ = handlers.everything(session, 4, 0.0, REQUEST, no_progress)
    assert canvas["proposals"]
    other = synthetic_image(96, 128, seed=9)
    session.set_image(other, image_digest(other), "other.png")
    from workbench.segment.values import live_canvas_value
    assert "proposals" not in live_canvas_value(session, handlers.ctx)


def test_keep_refuses_proposals_of_another_image(handlers, session):
    state, _, _ = handlers.everything(session, 4, 0.0, REQUEST, no_progress)
    other = synthetic_image(96, 128, seed=9)
    session.set_image(other, image_digest(other), "other.png")
    with pytest.raises(UserError, match="previous image"):
        handlers._keep(session, logic.select_all(state), None, everything=True)


# --- the detector cache -------------------------------------------------------------------------

def test_detector_cache_is_bounded_and_loads_once():
    cache = BoundedDetectorCache(max_entries=2)
    loads = []

    def loader(name):
        return lambda: loads.append(name) or name

    assert cache.get("a", loader("a")) == "a" and cache.get("a", loader("a")) == "a"
    cache.get("b", loader("b"))
    cache.get("c", loader("c"))
    assert loads == ["a", "b", "c"] and len(cache) == 2 and "a" not in cache

    def broken():
        raise OSError("no such folder")

    with pytest.raises(OSError):
        cache.get("d", broken)
    assert "d" not in cache
    with pytest.raises(ValueError):
        BoundedDetectorCache(max_entries=0)


def test_bad_everything_defaults_are_refused_at_build_time(ctx):
    with pytest.raises(PromptError, match="stability_score_thresh"):
        ProposalsHandlers(ctx, {"stability_score_thresh": 2.0})


def test_the_app_detector_is_shared_and_keyed_by_configuration(ctx):
    with offline():
        first = engines.detector(ctx)
        assert engines.detector(ctx) is first
    detectors = ctx.services.detectors  # the app's own registry, not a module-level pool
    assert len(detectors) <= detectors.max_entries
    assert any(str(ctx.config.checkpoint_dir) == key[0] for key in detectors._entries)
