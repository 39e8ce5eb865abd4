"""The proposals panel in Chromium (Playwright): Everything -> outlines on the canvas ->
toggle -> keep.

A small harness app lays out the segment view's canvas and the panel beside a ``gr.State``
holding a segment-view ``Session`` (loaded with a synthetic 640 x 448 scene by a button, and
tracked by the app's session registry, so the live route serves its image), with the real
``AppContext``, the live route and the random-weight SAM 2.1 test model, and shows the
session's objects as JSON after each keep (chained on ``ProposalsPanel.changed`` as the segment
view does). Proposals are reviewed on the canvas, as in the app. Screenshots at 1366x768 and
1920x1080 go to ``$ARTIFACTS_DIR`` (default ``./test-artifacts``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import pytest
from app_harness import app_config, free_port, offline
from test_browser_segment import CHROMIUM, CHROMIUM_ARGS, TIMEOUT, artifacts

from sam_backends.testing.random_models import synthetic_image

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - CI installs it
    sync_playwright = None

GRID = "4"  # points per side: 16 decoder calls keep the run short on a shared CPU

def wait_reviewing(page, count: int | None = None) -> None:
    """Until the canvas's review bar shows (``count`` selected, when given)."""
    page.wait_for_selector("#harness-canvas [data-testid=canvas-review]:not([hidden])",
                           timeout=TIMEOUT)
    if count is not None:
        page.wait_for_function(
            "(n) => document.querySelector('#harness-canvas .pcl-review-text').textContent"
            ".includes(`${n} selected`)", arg=count, timeout=TIMEOUT)


def click_probe(page) -> None:
    """Click, on the canvas, the pixel the harness says lies inside a proposal."""
    page.wait_for_function(
        "() => { const e = document.querySelector('#harness-probe textarea, "
        "#harness-probe input'); return e && e.value.includes('fx'); }", timeout=TIMEOUT)
    point = json.loads(page.locator("#harness-probe textarea, #harness-probe input")
                       .first.input_value())
    page.wait_for_function("() => { const i = document.querySelector('#harness-canvas .pcl-img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=TIMEOUT)
    image = page.locator("#harness-canvas .pcl-img")
    image.scroll_into_view_if_needed()
    rect = image.bounding_box()  # the world is scaled to fit: the <img> is the picture
    page.mouse.click(rect["x"] + rect["width"] * point["fx"],
                     rect["y"] + rect["height"] * point["fy"])


def build_harness(config):
    import app
    from sam_backends.images import image_digest
    from ui.proposals.panel import CSS, build_proposals_panel
    from ui.widgets.canvas import PromptCanvas
    from workbench.context import AppContext
    from workbench.segment.values import live_canvas_value
    from workbench.session import Session

    ctx = AppContext(config, app.prepare_environment(config))

    scene = synthetic_image(448, 640, seed=1)  # flat discs on gradients: things to find

    def load(request: gr.Request):
        session = Session(request.session_hash, ctx.default_model())
        session.set_image(scene, image_digest(scene), "scene.png")
        ctx.sessions.track(session)
        return session, "loaded", live_canvas_value(session, ctx)

    def objects(session):
        if session is None:
            return []
        return [{"id": o.object_id, "name": getattr(o, "name", ""),
                 "has_mask": o.result is not None, "box": o.prompts.box}
                for o in session.workspace.objects]

    def inside(proposals):
        """A pixel deep inside the smallest-scoring visible proposal, as fractions of the
        image (random weights give random masks, so the test cannot click a fixed spot). The
        canvas picks the smallest proposal under a click, so the point must not lie inside a
        smaller one: the harness picks the smallest proposal by area."""
        if proposals is None or not proposals.visible:
            return ""
        smallest = min(proposals.visible, key=lambda p: p.result.area)
        proposals = type(proposals)(**{**proposals.__dict__, "proposals": (smallest,),
                                       "threshold": 0.0})
        small = proposals.visible[-1].small_mask().astype(np.uint8)
        depth = cv2.distanceTransform(np.pad(small, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
        row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
        return json.dumps({"fx": (col + 0.5) / small.shape[1], "fy": (row + 0.5) / small.shape[0]})

    with gr.Blocks() as demo:
        gr.HTML(f"<style>{CSS}</style>")
        state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                canvas = PromptCanvas({}, elem_id="harness-canvas")
                panel = build_proposals_panel(  # random weights are never stable at 0.95
                    ctx, demo, state, canvas, points_choices=(4, 8, 16),
                    everything_defaults={"stability_score_thresh": 0.0})
            with gr.Column(scale=1):
                load_btn = gr.Button("Load the scene", elem_id="harness-load")
                loaded = gr.Markdown(elem_id="harness-loaded")
                probe = gr.Textbox(label="A point inside a proposal", elem_id="harness-probe")
                listing = gr.JSON(label="Objects", elem_id="harness-objects")
        load_btn.click(load, None, [state, loaded, canvas])
        for run in panel.ran:
            run.then(inside, [panel.state], probe)
        panel.changed.then(objects, [state], listing)
    demo.ctx = ctx
    return demo, panel


@pytest.fixture(scope="module")
def harness(sam1_small, sam2_small, tmp_path_factory):
    if sync_playwright is None:
        pytest.skip("playwright is not installed (pip install -r tests/requirements.txt)")
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from sam_backends.testing.text_models import small_owlv2_config, write_random_owlv2
    from sam_backends.text import hub

    checkpoint_dir = tmp_path_factory.mktemp("checkpoints")
    write_random_owlv2(checkpoint_dir / hub.OWLV2.local_name, small_owlv2_config())
    config = app_config(sam1_small, sam2_small, checkpoint_dir,
                        temp_dir=tmp_path_factory.mktemp("temp"))
    with offline():
        demo, panel = build_harness(config)
        demo.queue(default_concurrency_limit=1)
        from server.live_route import live_routes

        _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(),
                                prevent_thread_lock=True, quiet=True,
                                app_kwargs={"routes": live_routes(demo.ctx)})
        try:
            yield url, demo, panel
        finally:
            demo.close()
            demo.ctx.close()


def expect_review_ended(page) -> None:
    page.wait_for_selector("#harness-canvas [data-testid=canvas-review][hidden]", state="attached",
                           timeout=TIMEOUT)
    assert page.locator("#harness-canvas text.pcl-prop-label").count() == 0


def objects_json(page) -> list:
    text = page.locator("#harness-objects").inner_text()
    start = text.find("[")
    return json.loads(text[start:]) if start >= 0 else []


def open_scene(browser, url: str, width: int = 1366, height: int = 768,
               threshold: str = "#proposals-threshold"):
    """A page on the harness with the scene loaded and the score threshold (the ``threshold``
    element's number box; Compare's panel has its own) typed as 0 (random weights score low:
    every proposal is shown); returns (page, the threshold's number box)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.click("#harness-load")
    page.wait_for_selector("#harness-loaded :text('loaded')", timeout=TIMEOUT)
    box = page.locator(f"{threshold} input[type=number]")
    box.fill("0")
    box.press("Enter")
    return page, box


def test_everything_toggle_keep(harness):
    url, demo, panel = harness
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for width, height in ((1366, 768), (1920, 1080)):
            page, _ = open_scene(browser, url, width, height)
            page.locator("#proposals-points input").click()
            page.get_by_role("option", name=GRID, exact=True).click()
            page.click("#proposals-everything")
            wait_reviewing(page, 0)
            page.wait_for_function(
                "() => document.querySelector('#proposals-status').innerText.includes("
                "'proposal')", timeout=TIMEOUT)
            status = page.locator("#proposals-status").inner_text()
            assert "0 selected" in status, status
            # on the canvas, over the image: no second picture of it anywhere
            assert page.locator("#proposals-review").count() == 0
            assert page.locator("#harness-canvas text.pcl-prop-label").count() >= 1
            assert "Reviewing" in page.locator("#harness-canvas [data-testid=canvas-hint]"
                                               ).inner_text()
            page.screenshot(path=str(artifacts() / f"proposals_found_{width}.png"))
            # a click deep inside a proposal (random weights: the harness finds one) selects it
            click_probe(page)
            wait_reviewing(page, 1)
            page.wait_for_function(
                "() => document.querySelector('#proposals-status').innerText.includes("
                "'1 selected')", timeout=TIMEOUT)
            page.screenshot(path=str(artifacts() / f"proposals_selected_{width}.png"))
            # the canvas's own bar keeps them (it presses the panel's Keep selected)
            page.click("#harness-canvas .pcl-keep-sel")
            page.wait_for_function(
                "() => document.querySelector('#proposals-status').innerText.includes('Kept')",
                timeout=TIMEOUT)
            page.wait_for_function(
                "() => document.querySelector('#harness-objects').innerText.includes('box')",
                timeout=TIMEOUT)
            kept = objects_json(page)
            assert len(kept) == 1 and kept[0]["has_mask"] and kept[0]["box"]
            expect_review_ended(page)
            page.screenshot(path=str(artifacts() / f"proposals_kept_{width}.png"))
            page.close()
        browser.close()


def test_enter_applies_the_threshold_and_stop_says_stopped(harness, monkeypatch):
    """A typed threshold applies on Enter (not only when the box loses focus), and Stop shows
    "Stopped" at once, not the previous run's result as if it were the new one's."""
    import time

    from workbench.proposals import engines

    url, demo, panel = harness
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page, box = open_scene(browser, url)
        page.locator("#proposals-points input").click()
        page.get_by_role("option", name=GRID, exact=True).click()
        page.click("#proposals-everything")
        page.wait_for_function(
            "() => document.querySelector('#proposals-status').innerText.includes("
            "'score ≥ 0.00')", timeout=TIMEOUT)
        box.fill("0.97")
        box.press("Enter")  # and nothing else: the focus stays where it was
        page.wait_for_function(
            "() => document.querySelector('#proposals-status').innerText.includes("
            "'score ≥ 0.97')", timeout=TIMEOUT)

        real = engines.everything

        def slow(*args, cancel=None, progress=None, **kwargs):  # a long grid, until Stop
            for _ in range(1200):
                if cancel is not None and cancel():
                    raise engines.Cancelled()
                time.sleep(0.05)
            return real(*args, cancel=cancel, progress=progress, **kwargs)

        monkeypatch.setattr(engines, "everything", slow)
        page.click("#proposals-everything")
        deadline = time.monotonic() + 60
        while not panel.handlers.flags._flags and time.monotonic() < deadline:
            time.sleep(0.1)  # the run has started (its Stop flag exists)
        page.click("#proposals-stop")
        page.wait_for_function(
            "() => document.querySelector('#proposals-status').innerText.includes('Stopped')",
            timeout=TIMEOUT)
        # the status line's own text (Gradio's tracker of the cancelled run may sit over it)
        status = page.locator("#proposals-status [data-testid=markdown]").inner_text()
        # the Stop button's answer, or the run's own when it ended before Gradio cancelled it:
        # either way "Stopped", never the previous run's summary as if it were this one's
        assert status.startswith("Stopped: nothing was kept") and "proposals for" not in status
        page.screenshot(path=str(artifacts() / "proposals_stopped_1366.png"))
        browser.close()


def test_text_find_keep_all_names_objects(harness):
    url, demo, panel = harness
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page, _ = open_scene(browser, url)
        page.fill("#proposals-text textarea, #proposals-text input", "circle")
        page.click("#proposals-find")
        page.wait_for_function(
            "() => document.querySelector('#proposals-status').innerText.includes('circle')",
            timeout=TIMEOUT)
        wait_reviewing(page)
        page.screenshot(path=str(artifacts() / "proposals_text_1366.png"))
        page.click("#proposals-keep-all")
        page.wait_for_function(
            "() => document.querySelector('#harness-objects').innerText.includes('box')",
            timeout=TIMEOUT)
        kept = objects_json(page)
        assert kept and all(o["has_mask"] for o in kept)
        page.screenshot(path=str(artifacts() / "proposals_text_kept_1366.png"))
        browser.close()


@pytest.fixture(scope="module")
def compare_harness(sam1_small, sam2_small, tmp_path_factory):
    """The compare view's proposals section beside a button loading the scene into its state,
    both random-weight SAM models ticked."""
    if sync_playwright is None:
        pytest.skip("playwright is not installed (pip install -r tests/requirements.txt)")
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    import types

    import app
    from sam_backends.images import image_digest
    from sam_backends.testing.text_models import small_owlv2_config, write_random_owlv2
    from sam_backends.text import hub
    from ui.proposals.compare_panel import CSS, build_compare_proposals
    from workbench.context import AppContext

    checkpoint_dir = tmp_path_factory.mktemp("checkpoints")
    write_random_owlv2(checkpoint_dir / hub.OWLV2.local_name, small_owlv2_config())
    config = app_config(sam1_small, sam2_small, checkpoint_dir,
                        temp_dir=tmp_path_factory.mktemp("temp"))
    scene = synthetic_image(448, 640, seed=1)
    ids = [sam2_small.spec.model_id, sam1_small.spec.model_id]
    with offline():
        ctx = AppContext(config, app.prepare_environment(config))

        def load():
            picture = types.SimpleNamespace(image=scene, digest=image_digest(scene))
            return types.SimpleNamespace(picture=picture), "loaded"

        with gr.Blocks() as demo:
            gr.HTML(f"<style>{CSS}</style>")
            state = gr.State(None)
            load_btn = gr.Button("Load the scene", elem_id="harness-load")
            loaded = gr.Markdown(elem_id="harness-loaded")
            models = gr.CheckboxGroup(ids, value=ids, label="Models")
            build_compare_proposals(ctx, demo, state, models)
            load_btn.click(load, None, [state, loaded])
        demo.queue(default_concurrency_limit=1)
        _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(),
                                prevent_thread_lock=True, quiet=True)
        try:
            yield url
        finally:
            demo.close()
            ctx.close()


def test_compare_text_answers_side_by_side(compare_harness):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for width, height in ((1366, 768), (1920, 1080)):
            page, _ = open_scene(browser, compare_harness, width, height,
                                 threshold="#compare-proposals-threshold")
            page.fill("#compare-proposals-text textarea, #compare-proposals-text input",
                      "circle")
            page.click("#compare-proposals-find")
            page.wait_for_function(
                "() => document.querySelectorAll('#compare-proposals-gallery img').length >= 2",
                timeout=TIMEOUT * 2)
            summary = page.locator("#compare-proposals-summary").inner_text()
            assert "Test" in summary or "test" in summary, summary
            page.wait_for_function(
                "() => document.querySelector('#compare-proposals-matches')"
                ".innerText.match(/\\d/)", timeout=TIMEOUT)
            page.screenshot(path=str(artifacts() / f"proposals_compare_{width}.png"),
                            full_page=True)
            page.close()
        browser.close()
