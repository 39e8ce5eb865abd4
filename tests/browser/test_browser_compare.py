"""The compare view in a real browser: Playwright driving Debian's Chromium against the app
started in-process with two random-weight test models, GrabCut and an absent SAM 2.1 tiny.

Screenshots go to ``$ARTIFACTS_DIR`` (default ``test-artifacts/``).
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from app_harness import app_config, running_app
from canvas_pixels import close, fill_of, image_to_screen
from PIL import Image
from test_browser_segment import hidden_under

from workbench.drawing import SPEC

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", Path(__file__).resolve().parents[2]
                                / "test-artifacts"))
TIMEOUT_MS = 120_000
WIDTH, HEIGHT = 200, 150
BOX = (40, 30, 150, 115)  # image pixels, around the object


def scene() -> tuple[np.ndarray, np.ndarray]:
    """A red rectangle on a textured grey background, and its mask."""
    rng = np.random.default_rng(7)
    image = rng.normal(110, 18, size=(HEIGHT, WIDTH, 1)).repeat(3, axis=2)
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[40:105, 50:140] = True
    image[mask] = (225, 50, 45)
    return np.clip(image, 0, 255).astype(np.uint8), mask


@pytest.fixture(scope="module")
def server(sam1_small, sam2_small, tmp_path_factory):
    config = app_config(sam1_small, sam2_small, tmp_path_factory.mktemp("no-checkpoints"),
                        examples_dir=None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAM_OFFLINE", "1")  # as CI runs it: this server downloads nothing
        with running_app(config) as running:
            yield running


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare-files")
    image, mask = scene()
    Image.fromarray(image).save(folder / "red box.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "truth.png")
    return folder


@pytest.fixture
def page():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(TIMEOUT_MS)
        try:
            yield page
        finally:
            browser.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def set_models(page, wanted: list[str], unwanted: list[str]) -> None:
    """Tick ``wanted`` model ids before unticking ``unwanted`` (never fewer than 2 selected);
    a box the page's own late start-up update put back is set again (bounded tries)."""
    for model_id, state in [(m, True) for m in wanted] + [(m, False) for m in unwanted]:
        box = page.locator(f'#compare-models input[name="{model_id}"]')
        for _ in range(3):
            box.set_checked(state)
            page.wait_for_timeout(300)
            if box.is_checked() == state:
                break


def ticked(page) -> list[str]:
    return page.eval_on_selector_all("#compare-models input[type=checkbox]",
                                     "els => els.filter(e => e.checked).map(e => e.name)")


def open_compare(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("tab", name="Compare").click()
    page.locator("#compare-models").wait_for()


def upload_image(page, path: Path) -> None:
    page.locator("#compare-upload input[type=file]").set_input_files(str(path))
    page.locator("#compare-canvas [data-testid=prompt-canvas]").wait_for()
    page.locator("#compare-canvas img.pcl-img").wait_for()


def drag_box(page, box) -> None:
    def at(x, y):  # image pixels -> page pixels
        return image_to_screen(page, "#compare-canvas", x, y, WIDTH, HEIGHT)

    x0, y0 = at(box[0], box[1])
    x1, y1 = at(box[2], box[3])
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
    page.mouse.move(x1, y1, steps=5)
    page.mouse.up()


def test_three_models_answer_one_box(server, files, page):
    open_compare(page, server.url)
    estimates = page.locator("#compare-estimates")
    assert ticked(page) == ["grabcut", "test-sam2-small"]  # present models only
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(4):  # on a cold or loaded machine the page's start-up update can undo a tick
        set_models(page, ["test-sam1-small"], [])
        try:
            page.wait_for_function("() => document.querySelector('#compare-estimates')"
                                   ".innerText.includes('sam1-small')", timeout=30_000)
            break
        except PlaywrightTimeout:
            set_models(page, [], ["test-sam1-small"])
    else:
        raise AssertionError("ticking a model never updated the estimates")
    text = estimates.inner_text()
    assert "no encode measured on this machine yet" in text and "GrabCut" in text
    shot(page, "compare_1_models.png")

    upload_image(page, files / "red box.png")
    drag_box(page, BOX)
    cutouts = page.locator("#compare-cards [data-testid=compare-cutout]")
    page.wait_for_function(
        "() => document.querySelectorAll('#compare-cards [data-testid=compare-cutout]').length"
        " === 3")
    cards = page.locator("#compare-cards [data-testid=compare-card]")
    assert cards.count() == 3
    assert [cards.nth(i).get_attribute("data-model") for i in range(3)] == [
        "grabcut", "test-sam2-small", "test-sam1-small"]
    for i in range(3):
        src = cutouts.nth(i).get_attribute("src")
        assert src.startswith("data:image/webp;base64,")
        encode = cards.nth(i).locator("[data-testid=compare-encode]").inner_text()
        decode = cards.nth(i).locator("[data-testid=compare-decode]").inner_text()
        assert re.fullmatch(r"\d+ ms|\d+\.\d\d s|cached", encode), encode
        assert re.fullmatch(r"\d+ ms", decode), decode
        assert re.fullmatch(r"\d\.\d\d", cards.nth(i).locator(
            "[data-testid=compare-score]").inner_text())
    matrix = page.locator("#compare-agreement [data-testid=agreement-matrix]")
    assert matrix.locator("tbody tr").count() == 3
    assert matrix.locator("td").count() == 9
    diagonal = [matrix.locator("tbody tr").nth(i).locator("td").nth(i).inner_text()
                for i in range(3)]
    assert diagonal == ["1.000"] * 3
    assert page.locator("#compare-agreement [data-testid=disagreement]").is_visible()
    assert "Orange: the models disagree" in page.locator("#compare-agreement").inner_text()
    table = page.locator("#compare-table")
    for name in ("GrabCut", "test-sam1-small", "test-sam2-small"):
        assert name in table.inner_text()
    assert re.search(r"[\d,]+ px \(\d+\.\d%\)", cards.nth(0).inner_text())
    shot(page, "compare_2_box_three_models.png")
    # the canvas draws the shown model's mask in the browser, as the drawing spec says
    colour, alpha = fill_of(page, "#compare-canvas")
    assert close(colour, SPEC.colour_for(1)) and abs(alpha - round(255 * SPEC.fill_opacity)) <= 1
    assert page.locator("#compare-canvas img.pcl-img").get_attribute("src").startswith(
        "data:image/jpeg;base64,")  # the plain image: no overlay composited on the server

    # now every model's encode was measured: the estimates say so
    assert page.locator("#compare-estimates").inner_text().count("cached") == 3

    # ground truth: each model gets IoU and boundary F-score
    page.get_by_text("Ground truth (optional)").click()
    page.locator("#compare-truth input[type=file]").set_input_files(str(files / "truth.png"))
    page.wait_for_function(
        "() => document.querySelectorAll('#compare-cards [data-testid=compare-gt]').length"
        " === 3")
    truth_text = cards.nth(0).locator("[data-testid=compare-gt]").inner_text()
    assert re.fullmatch(r"IoU \d\.\d{3} · boundary F \d\.\d{3}", truth_text), truth_text
    iou_grabcut = float(truth_text.split()[1])
    assert iou_grabcut > 0.8  # GrabCut finds the plain red rectangle
    shot(page, "compare_3_ground_truth.png")

    # downloads: a ZIP of every cut-out and mask, and the table as CSV
    page.locator("#compare-export").click()
    zip_button = page.locator("#compare-download-zip")
    page.wait_for_function("() => !document.querySelector('#compare-download-zip').disabled")
    with page.expect_download() as download_info:
        zip_button.click()
    archive_path = download_info.value.path()
    with zipfile.ZipFile(archive_path) as archive:
        names = set(archive.namelist())
        for model_id in ("grabcut", "test-sam1-small", "test-sam2-small"):
            assert f"red_box_compare/{model_id}/cutout.png" in names
            assert f"red_box_compare/{model_id}/object1_mask.png" in names
        cutout = Image.open(io.BytesIO(archive.read("red_box_compare/grabcut/cutout.png")))
        assert cutout.mode == "RGBA" and cutout.size == (WIDTH, HEIGHT)
        assert np.asarray(cutout)[0, 0, 3] == 0  # transparent outside the object
        table_csv = archive.read("red_box_compare/comparison.csv").decode()
    assert table_csv.splitlines()[0].startswith("model_id,model,objects,score")
    assert len(table_csv.splitlines()) == 4


def test_missing_model_gets_a_message_and_the_other_still_answers(server, files, page):
    open_compare(page, server.url)
    set_models(page, ["sam2.1-tiny"], ["test-sam2-small"])  # GrabCut and the absent model
    upload_image(page, files / "red box.png")
    drag_box(page, BOX)
    page.wait_for_function(
        "() => document.querySelectorAll('#compare-cards [data-testid=compare-cutout]').length"
        " === 1")
    error = page.locator("#compare-cards [data-testid=compare-error]")
    assert error.count() == 1
    assert "python -m sam_backends download sam2.1-tiny" in error.inner_text()
    hint = page.locator("#compare-canvas [data-testid=canvas-hint]").inner_text()
    assert "Segmenting" not in hint, hint  # the absent model does not leave it "…ing"
    assert "Traceback" not in page.content()
    assert "at least two models have a mask" in page.locator("#compare-agreement").inner_text()
    shot(page, "compare_4_missing_model.png")


VIEWPORTS = ((1366, 768), (1920, 1080))


def click_image(page, x: float, y: float) -> None:
    """A left click at image pixel (x, y) on the compare canvas."""
    page.mouse.click(*image_to_screen(page, "#compare-canvas", x, y, WIDTH, HEIGHT))


def cutout_count(page, count: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('#compare-cards [data-testid=compare-cutout]').length"
        " === n", arg=count)


def test_defaults_are_present_models_and_absent_ones_are_marked(server, page):
    """Nothing absent is ticked; the absent model is marked "not downloaded", and this server,
    which runs offline, offers no download that could only fail (an online server's download
    is tested in tests/workbench/test_compare_state.py)."""
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        open_compare(page, server.url)
        assert ticked(page) == ["grabcut", "test-sam2-small"]
        tiny = page.locator("#compare-models label", has_text="SAM 2.1 Tiny")
        assert "not downloaded" in tiny.inner_text()
        assert not page.locator('#compare-models input[name="sam2.1-tiny"]').is_checked()
        assert not page.locator("#compare-download-model").is_visible()
        assert not page.locator("#compare-download-choice").is_visible()
        assert "download sam2.1-tiny" not in page.locator("#compare-estimates").inner_text()
        # the image comes first: the upload and the canvas are on screen without scrolling
        for selector in ("#compare-upload", "#compare-canvas",
                         "#compare-models"):
            assert on_screen(page, selector), f"{selector} is below the fold at {width}x{height}"
        assert hidden_under(page, "compare-upload") == []  # nothing drawn under a label or arrow
        page.screenshot(path=str(artifact(f"compare_5_defaults_{width}x{height}.png")))


def on_screen(page, selector: str) -> bool:
    """Whether the top of ``selector`` (at least 40 px of it) is inside the viewport unscrolled."""
    box = page.locator(selector).first.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + min(40, box["height"]) <= \
        page.viewport_size["height"]


def header_lines(page) -> dict[str, int]:
    """Lines of text per header cell of the comparison table (a wrapped header has several)."""
    return page.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll('#compare-table thead th')].map(th => {
          const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
          const tops = new Set();
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            if (!node.textContent.trim()) continue;
            const range = document.createRange();
            range.selectNodeContents(node);
            [...range.getClientRects()].filter(r => r.width > 0)
              .forEach(r => tops.add(Math.round(r.top)));
          }
          return [th.innerText.trim(), tops.size];
        }).filter(([name]) => name))""")


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def test_canvas_switch_lightbox_names_and_toolbar(server, files, page):
    open_compare(page, server.url)
    upload_image(page, files / "red box.png")
    drag_box(page, BOX)
    cutout_count(page, 2)
    cards = page.locator("#compare-cards [data-testid=compare-card]")
    names = [cards.nth(i).locator(".cc-name").inner_text().replace("on the canvas", "").strip()
             for i in range(2)]
    # the matrix uses the cards' names, in the same order
    matrix = page.locator("#compare-agreement [data-testid=agreement-matrix]")
    assert [matrix.locator("thead th").nth(i + 1).inner_text() for i in range(2)] == names
    assert [matrix.locator("tbody th").nth(i).inner_text() for i in range(2)] == names
    # the toolbar reads like the Segment view's
    for selector, label in (("#compare-undo", "↶ Undo"), ("#compare-redo", "↷ Redo"),
                            ("#compare-clear", "Clear prompts"),
                            ("#compare-new-object", "+ New object")):
        assert page.locator(selector).inner_text().strip() == label
    # the switch above the canvas: GrabCut first, then the SAM model
    switch = page.locator("#compare-canvas-model")
    assert switch.locator("input:checked").get_attribute("value") == "grabcut"
    assert cards.nth(0).locator("[data-testid=compare-on-canvas]").count() == 1
    switch.locator("label", has_text=names[1]).click()
    page.wait_for_function(
        "() => document.querySelectorAll('#compare-cards [data-testid=compare-card]')[1]"
        ".querySelector('[data-testid=compare-on-canvas]') !== null")
    assert "test-sam2-small" in page.locator("#compare-status").inner_text()
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)
        lines = header_lines(page)
        assert "Waited" in lines and "Encode" in lines  # own time and waiting, apart
        # a header may wrap between its words, never inside one (it was one letter a line)
        assert all(count <= len(name.split()) for name, count in lines.items()), lines
        page.screenshot(path=str(artifact(f"compare_6_switch_{width}x{height}.png")),
                        full_page=True)
    # a thumbnail opens large, and closes with Escape
    lightbox = page.locator("#compare-cards [data-testid=compare-lightbox]")
    assert lightbox.is_hidden()
    cards.nth(1).locator("[data-testid=compare-overlay]").click()
    lightbox.wait_for(state="visible")
    big = lightbox.locator("[data-testid=compare-lightbox-img]").bounding_box()
    small = cards.nth(1).locator("[data-testid=compare-overlay]").bounding_box()
    assert big["width"] > 1.8 * small["width"]
    page.screenshot(path=str(artifact("compare_7_lightbox_1920x1080.png")))
    page.keyboard.press("Escape")
    lightbox.wait_for(state="hidden")
    page.set_viewport_size({"width": 1366, "height": 768})
    cards.nth(0).locator("[data-testid=compare-cutout]").click()
    lightbox.wait_for(state="visible")
    page.screenshot(path=str(artifact("compare_7_lightbox_1366x768.png")))
    lightbox.locator("[data-testid=compare-lightbox-close]").click()
    lightbox.wait_for(state="hidden")


def test_a_slow_model_does_not_hold_back_the_others(server, files, page, monkeypatch):
    """GrabCut on a point is held until the page shows the SAM model's answer: its card fills
    in first, GrabCut's says it is still answering, then fills in when released."""
    import threading

    from sam_backends.families.grabcut import backend as grabcut_backend

    gate = threading.Event()
    predict = grabcut_backend.GrabCutBackend.predict

    def slow(self, embedding, prompts):
        gate.wait(timeout=90)
        return predict(self, embedding, prompts)

    monkeypatch.setattr(grabcut_backend.GrabCutBackend, "predict", slow)
    try:
        open_compare(page, server.url)
        upload_image(page, files / "red box.png")
        page.locator("#compare-cards [data-testid=compare-card]").nth(1).wait_for()
        click_image(page, 95, 72)
        page.wait_for_function("""() => {
            const cards = [...document.querySelectorAll(
                '#compare-cards [data-testid=compare-card]')];
            const sam = cards.find(c => c.dataset.model === 'test-sam2-small');
            const gc = cards.find(c => c.dataset.model === 'grabcut');
            return sam && gc && sam.querySelector('[data-testid=compare-cutout]')
                && gc.dataset.pending === 'true'; }""")
        assert "Still answering: GrabCut" in page.locator("#compare-status").inner_text()
        for width, height in VIEWPORTS:
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(artifact(f"compare_8_streaming_{width}x{height}.png")),
                            full_page=True)
    finally:
        gate.set()
    cutout_count(page, 2)
    assert page.locator("#compare-cards [data-pending=true]").count() == 0
