"""The segment view driven in Debian's Chromium through Playwright, against the real app with
random-weight SAM test models and GrabCut. Screenshots go to ``$ARTIFACTS_DIR`` (default
``./test-artifacts``).

Example image ``shapes.png`` (640 x 448): red circle centred (160, 230) r 80, blue rounded
rectangle (300..440, 170..340), yellow triangle (470..610, 150..345).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from app_harness import ROOT, app_config, running_app
from PIL import Image

from ui.exports import rle_to_mask

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
SHAPES = 1  # index of shapes.png among the sorted examples (fruit, shapes, street)
STREET = 2
W, H = 640, 448
TIMEOUT = 90_000  # ms; a first encode of a test model includes loading it

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - CI installs it
    sync_playwright = None


def artifacts() -> Path:
    folder = Path(os.environ.get("ARTIFACTS_DIR") or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def server(sam1_small, sam2_small, tmp_path_factory):
    config = app_config(sam1_small, sam2_small, tmp_path_factory.mktemp("no-checkpoints"),
                        max_image_pixels=1_000_000)
    with running_app(config) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    if sync_playwright is None:
        pytest.skip("playwright is not installed (pip install -r tests/requirements.txt)")
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def new_page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector("#examples img", timeout=TIMEOUT)
    return context, page


def render_count(page) -> int:
    return int(page.eval_on_selector("#canvas [data-render]", "e => Number(e.dataset.render)"))


def wait_render(page, before: int) -> None:
    page.wait_for_function(
        "n => { const e = document.querySelector('#canvas [data-render]');"
        " return e && Number(e.dataset.render) > n; }", arg=before, timeout=TIMEOUT)


def open_example(page, index: int) -> None:
    before = render_count(page)
    page.locator("#examples img").nth(index).click()
    wait_render(page, before)
    expect(page.locator("[data-testid=prompt-canvas]")).to_be_visible()


def screen(page, x: float, y: float) -> tuple[float, float]:
    """Screen position of image pixel (x, y) on the canvas."""
    box = page.locator("[data-testid=prompt-canvas]").bounding_box()
    return box["x"] + x / W * box["width"], box["y"] + y / H * box["height"]


def click_image(page, x: float, y: float, **kwargs) -> None:
    before = render_count(page)
    page.mouse.click(*screen(page, x, y), **kwargs)
    wait_render(page, before)


def drag_box(page, x0: float, y0: float, x1: float, y1: float) -> None:
    before = render_count(page)
    page.mouse.move(*screen(page, x0, y0))
    page.mouse.down()
    for step in range(1, 6):
        t = step / 5
        page.mouse.move(*screen(page, x0 + t * (x1 - x0), y0 + t * (y1 - y0)))
    page.mouse.up()
    wait_render(page, before)


def press(page, selector: str) -> None:
    before = render_count(page)
    page.locator(selector).click()
    wait_render(page, before)


def pick_model(page, label: str) -> None:
    before = render_count(page)
    page.locator("#model-select input").click()
    page.locator("li[data-testid=dropdown-option]", has_text=label).first.click()
    wait_render(page, before)


def hint(page) -> str:
    return page.locator("[data-testid=canvas-hint]").inner_text()


def canvas_src(page) -> str:
    return page.locator("#canvas img.pc-img").get_attribute("src")


def shot(page, name: str) -> None:
    page.screenshot(path=str(artifacts() / f"segment-{name}.png"), full_page=True)


def test_click_refine_box_objects_model_switch_and_cutout(browser, server):
    context, page = new_page(browser, server)
    open_example(page, SHAPES)
    plain = canvas_src(page)
    expect(page.locator("#status")).to_contain_text("test-sam2-small")

    # A single click: the mask appears, with three candidates since one point is ambiguous.
    click_image(page, 160, 230)
    assert canvas_src(page) != plain
    expect(page.locator("#canvas circle.pc-pt.fg")).to_have_count(1)
    rows = page.locator(".ol-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("score")
    items = page.locator(".cs-item")
    expect(items).to_have_count(3)
    shot(page, "01-first-click")

    # Pick another candidate: it becomes the shown mask and the object's score follows.
    other = page.locator(".cs-item:not(.chosen)").first
    index = int(other.get_attribute("data-index"))
    score = other.inner_text().split("score")[1].split("·")[0].strip()
    press(page, f".cs-item[data-index='{index}']")
    expect(page.locator(f".cs-item[data-index='{index}']")).to_have_class("cs-item chosen")
    expect(rows.first).to_contain_text(f"score {score}")
    shot(page, "02-candidate-picked")

    # Background through the toggle, then through a right-click.
    page.get_by_label("Background (not object)").check()
    click_image(page, 300, 60)
    expect(page.locator("#canvas circle.pc-pt.bg")).to_have_count(1)
    click_image(page, 600, 420, button="right")
    expect(page.locator("#canvas circle.pc-pt.bg")).to_have_count(2)
    assert "2 background points" in hint(page)

    # Undo and redo the last click.
    press(page, "#undo")
    expect(page.locator("#canvas circle.pc-pt.bg")).to_have_count(1)
    expect(page.locator("#redo")).to_be_enabled()
    press(page, "#redo")
    expect(page.locator("#canvas circle.pc-pt.bg")).to_have_count(2)
    press(page, "#undo")
    expect(page.locator("#canvas circle.pc-pt.bg")).to_have_count(1)

    # A box dragged with the mouse combines with the points.
    page.get_by_label("Foreground (object)").check()
    drag_box(page, 70, 140, 250, 320)
    expect(page.locator("#canvas rect.pc-box")).to_have_count(1)
    assert "1 foreground point + 1 background point + box" in hint(page)
    shot(page, "03-box-and-points")

    # A second object with its own colour.
    press(page, "#new-object")
    expect(rows).to_have_count(2)
    expect(page.locator("#canvas circle.pc-pt")).to_have_count(0)  # the new one is empty
    drag_box(page, 290, 160, 450, 350)
    expect(rows.nth(1)).to_contain_text("score")
    colours = page.locator(".ol-swatch").evaluate_all(
        "els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(set(colours)) == 2
    shot(page, "04-two-objects")

    # Switching the model re-runs both objects' prompts on GrabCut.
    pick_model(page, "GrabCut")
    expect(page.locator("#status")).to_contain_text("GrabCut")
    expect(rows).to_have_count(2)
    expect(page.locator("#canvas rect.pc-box")).to_have_count(1)
    shot(page, "05-switched-to-grabcut")

    # Downloads are named after the image; the cut-out is transparent exactly off the masks.
    page.locator("#export").click()
    expect(page.locator("#download-cutout")).to_be_enabled(timeout=TIMEOUT)
    with page.expect_download() as info:
        page.locator("#download-cutout").click()
    cutout_file = info.value
    assert cutout_file.suggested_filename == "shapes_cutout.png"
    with page.expect_download() as info:
        page.locator("#download-coco").click()
    coco = json.loads(Path(info.value.path()).read_text())
    assert info.value.suggested_filename == "shapes_coco.json"
    annotations = coco["annotations"]
    assert [a["object_id"] for a in annotations] == [1, 2]
    assert {a["model_id"] for a in annotations} == {"grabcut"}
    assert annotations[1]["prompts"]["box"] == pytest.approx([290, 160, 450, 350], abs=2)
    union = np.zeros((H, W), bool)
    for annotation in annotations:
        union |= rle_to_mask(annotation["segmentation"])
    cutout = Image.open(cutout_file.path())
    assert cutout.format == "PNG" and cutout.mode == "RGBA" and cutout.size == (W, H)
    alpha = np.asarray(cutout)[:, :, 3]
    assert union.any() and not union.all()
    np.testing.assert_array_equal(alpha == 0, ~union)
    np.testing.assert_array_equal(alpha == 255, union)
    assert alpha[255, 370] == 255 and alpha[5, 5] == 0  # GrabCut found the blue rectangle
    expect(page.locator("#export-files a[href$='/shapes_object2_mask.png']")).to_have_count(1)
    shot(page, "06-downloads")

    # Select the first object again to refine it, delete the second, clear and undo the clear.
    press(page, ".ol-row[data-id='1']")
    assert hint(page).startswith("Object 1:")
    expect(page.locator(".ol-row.active")).to_have_attribute("data-id", "1")
    press(page, ".ol-row[data-id='2'] .ol-del")
    expect(rows).to_have_count(1)
    expect(page.locator("#download-cutout")).to_be_disabled()  # stale downloads are withdrawn
    press(page, "#clear")
    expect(page.locator("#canvas circle.pc-pt")).to_have_count(0)
    expect(rows.first).to_contain_text("empty")
    press(page, "#undo")
    expect(page.locator("#canvas circle.pc-pt")).to_have_count(2)
    expect(page.locator("#canvas rect.pc-box")).to_have_count(1)
    assert "Traceback" not in page.content()
    context.close()


def test_errors_become_friendly_messages(browser, server, tmp_path):
    context, page = new_page(browser, server)
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnot a png at all")
    page.set_input_files("#image-upload input[type=file]", str(corrupt))
    toast = page.locator(".toast-body")
    expect(toast.first).to_contain_text("Cannot open this image", timeout=TIMEOUT)
    expect(toast.first).to_contain_text("broken.png")
    shot(page, "07-corrupt-upload")
    page.locator(".toast-close").first.click()

    huge = tmp_path / "huge.png"
    Image.new("RGB", (1300, 800), (30, 60, 90)).save(huge)  # 1.04 MP > the 1 MP limit
    page.set_input_files("#image-upload input[type=file]", str(huge))
    expect(page.locator(".toast-body", has_text="Image too large")).to_be_visible(timeout=TIMEOUT)

    pick_model(page, "SAM 2.1 Tiny")
    expect(page.locator(".toast-body", has_text="Download failed")).to_be_visible()
    expect(page.locator("#model-status")).to_contain_text("not downloaded")
    expect(page.locator("#model-status")).to_contain_text(
        "python -m sam_backends download sam2.1-tiny")
    expect(page.locator("#download-model")).to_be_visible()
    open_example(page, SHAPES)
    assert "not downloaded" in hint(page)
    shot(page, "08-missing-model")

    pick_model(page, "test-sam1-small")  # the app keeps working
    click_image(page, 160, 230)
    expect(page.locator(".ol-row").first).to_contain_text("score")
    assert "Traceback" not in page.content()
    context.close()


def test_two_users_never_see_each_other_and_sessions_are_released(browser, server):
    known = set(server.ctx.sessions.ids())
    context_a, page_a = new_page(browser, server)
    context_b, page_b = new_page(browser, server)
    open_example(page_a, SHAPES)
    open_example(page_b, STREET)
    click_image(page_a, 160, 230)
    click_image(page_b, 250, 290)
    press(page_a, "#new-object")
    click_image(page_a, 370, 255)
    click_image(page_b, 530, 200)  # refines B's only object
    expect(page_a.locator(".ol-row")).to_have_count(2)
    expect(page_b.locator(".ol-row")).to_have_count(1)
    assert "shapes.png" in page_a.locator("#canvas img.pc-img").get_attribute("alt")
    assert "street.png" in page_b.locator("#canvas img.pc-img").get_attribute("alt")
    expect(page_b.locator("#canvas circle.pc-pt")).to_have_count(2)
    for page, stem in ((page_a, "shapes"), (page_b, "street")):
        page.locator("#export").click()
        expect(page.locator(f"#export-files a[href$='/{stem}_cutout.png']")).to_have_count(
            1, timeout=TIMEOUT)
    expect(page_b.locator("#export-files")).not_to_contain_text("shapes")
    shot(page_a, "09-user-a")
    shot(page_b, "10-user-b")

    new = [i for i in server.ctx.sessions.ids() if i not in known]
    assert len(new) == 2
    session_a = server.ctx.sessions.get(new[0])
    assert session_a.image_name == "shapes.png" and session_a.image is not None
    context_a.close()
    deadline = time.time() + 30
    while new[0] in server.ctx.sessions and time.time() < deadline:
        time.sleep(0.25)
    assert new[0] not in server.ctx.sessions and session_a.image is None
    assert new[1] in server.ctx.sessions  # B is untouched
    click_image(page_b, 300, 380)
    expect(page_b.locator("#canvas circle.pc-pt")).to_have_count(3)
    context_b.close()
