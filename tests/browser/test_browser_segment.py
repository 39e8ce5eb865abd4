"""The segment view driven in Debian's Chromium through Playwright, against the real app with
random-weight SAM test models and GrabCut. Screenshots go to ``$ARTIFACTS_DIR`` (default
``./test-artifacts``).

The canvas is the live one: clicks go to ``/samwb/segment`` and the answer is drawn in the
browser; ``data-render`` on the canvas counts every drawing (a full value or a live answer).

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

from sam_backends.masks import decode_rle

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


def write_examples(folder: Path) -> Path:
    """This file's own examples (the app's assets change with the project): fruit.png,
    shapes.png (see the module docstring) and street.png, all 640 x 448."""
    from PIL import ImageDraw

    shapes = Image.new("RGB", (W, H), (236, 232, 224))
    draw = ImageDraw.Draw(shapes)
    draw.ellipse((80, 150, 240, 310), fill=(220, 40, 40))
    draw.rounded_rectangle((300, 170, 440, 340), radius=14, fill=(40, 80, 220))
    draw.polygon([(540, 150), (470, 345), (610, 345)], fill=(240, 200, 30))
    shapes.save(folder / "shapes.png")
    fruit = Image.new("RGB", (W, H), (120, 90, 60))
    ImageDraw.Draw(fruit).ellipse((200, 120, 440, 360), fill=(250, 140, 20))
    fruit.save(folder / "fruit.png")
    street = Image.new("RGB", (W, H), (150, 170, 200))
    draw = ImageDraw.Draw(street)
    draw.rectangle((0, 330, W, H), fill=(70, 70, 75))
    draw.rounded_rectangle((150, 250, 360, 340), radius=20, fill=(200, 30, 30))
    draw.rounded_rectangle((450, 150, 600, 260), radius=10, fill=(230, 230, 230))
    street.save(folder / "street.png")
    return folder


@pytest.fixture(scope="module")
def server(sam1_small, sam2_small, tmp_path_factory):
    config = app_config(sam1_small, sam2_small, tmp_path_factory.mktemp("no-checkpoints"),
                        max_image_pixels=1_000_000,
                        examples_dir=write_examples(tmp_path_factory.mktemp("examples")))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAM_OFFLINE", "1")  # as CI runs it: this server downloads nothing
        with running_app(config) as running:
            yield running


def launch_chromium():
    """Debian's Chromium through Playwright, for a module's ``browser`` fixture to yield from
    (skips with the reason when playwright or the browser is missing)."""
    if sync_playwright is None:
        pytest.skip("playwright is not installed (pip install -r tests/requirements.txt)")
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def browser():
    yield from launch_chromium()


def new_page(browser, server, width: int = 1400, height: int = 1100):
    context = browser.new_context(viewport={"width": width, "height": height},
                                  accept_downloads=True)
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


def open_example(page, index: int, encoded: bool = True) -> None:
    """Open an example; with ``encoded``, wait until its encode finished too."""
    before = render_count(page)
    page.locator("#examples img").nth(index).click()
    wait_render(page, before)
    expect(page.locator("[data-testid=prompt-canvas]")).to_be_visible()
    if encoded:
        page.wait_for_function("() => !document.querySelector('#canvas .pcl-root').dataset.busy",
                               timeout=TIMEOUT)


LIVE_ANSWERS = """() => (window.__samwb_marks || []).filter(m => m.kind === 'point' ||
  m.kind === 'box').length"""


def live_answers(page) -> int:
    return int(page.evaluate(LIVE_ANSWERS))


def wait_live(page, before: int) -> None:
    """Wait for the next live answer (a click or box drawn from ``/samwb/segment``)."""
    page.wait_for_function(f"n => ({LIVE_ANSWERS})() > n", arg=before, timeout=TIMEOUT)


def screen(page, x: float, y: float, w: int = W, h: int = H) -> tuple[float, float]:
    """Screen position of image pixel (x, y) on the canvas (zoom and pan included)."""
    box = page.locator("#canvas img.pcl-img").bounding_box()
    return box["x"] + x / w * box["width"], box["y"] + y / h * box["height"]


def click_image(page, x: float, y: float, **kwargs) -> None:
    before = live_answers(page)
    page.mouse.click(*screen(page, x, y), **kwargs)
    wait_live(page, before)


def drag_box(page, x0: float, y0: float, x1: float, y1: float) -> None:
    before = live_answers(page)
    page.mouse.move(*screen(page, x0, y0))
    page.mouse.down()
    for step in range(1, 6):
        t = step / 5
        page.mouse.move(*screen(page, x0 + t * (x1 - x0), y0 + t * (y1 - y0)))
    page.mouse.up()
    wait_live(page, before)


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


MASK_PIXELS = """sel => { const c = document.querySelector(sel); const d = c.getContext('2d')
  .getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""


def mask_pixels(page, selector: str = "#canvas canvas.pcl-masks") -> int:
    """Drawn (non-transparent) pixels of the mask layer (or the hover preview layer)."""
    return int(page.evaluate(MASK_PIXELS, selector))


def marks(page) -> list[dict]:
    return page.evaluate("() => window.__samwb_marks || []")


def wait_synced(page) -> None:
    """Let the side panels catch up with the last live answer (the ``synced`` event)."""
    page.wait_for_function("() => !document.querySelector('#object-list .pending')",
                           timeout=TIMEOUT)
    page.wait_for_timeout(400)


def download(page, selector: str):
    with page.expect_download() as info:
        page.locator(selector).click()
    return info.value


def shot(page, name: str) -> None:
    page.screenshot(path=str(artifacts() / f"segment-{name}.png"), full_page=True)


def test_click_refine_box_objects_model_switch_and_cutout(browser, server):
    context, page = new_page(browser, server)
    open_example(page, SHAPES)
    expect(page.locator("#status")).to_contain_text("test-sam2-small")
    expect(page.locator("[data-testid=image-name]")).to_have_text("shapes.png")
    assert mask_pixels(page) == 0

    # A single click: the mask appears, with candidates to pick from (the strip, or a note
    # that they agree with a "show them" button) since one point is ambiguous.
    click_image(page, 160, 230)
    assert mask_pixels(page) > 0
    expect(page.locator("#canvas circle.pc-pt.fg")).to_have_count(1)
    rows = page.locator(".ol-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("score")
    expect(page.locator("#undo")).to_be_enabled()
    if page.locator("[data-testid=candidates-similar]").count():
        press(page, "#candidates .cs-show")
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

    # Downloads in one step, named after the image; the cut-out is transparent off the masks.
    rows.nth(1).locator(".ol-ren").click()
    page.keyboard.type("blue box")
    page.keyboard.press("Enter")
    expect(rows.nth(1)).to_contain_text("blue box")
    cutout_file = download(page, "#download-cutout")
    assert cutout_file.suggested_filename == "shapes_cutout.png"
    coco_file = download(page, "#download-coco")
    coco = json.loads(Path(coco_file.path()).read_text())
    assert coco_file.suggested_filename == "shapes_coco.json"
    assert [c["name"] for c in coco["categories"]] == ["object", "blue box"]
    annotations = coco["annotations"]
    assert [a["object_id"] for a in annotations] == [1, 2]
    assert {a["model_id"] for a in annotations} == {"grabcut"}
    assert annotations[1]["prompts"]["box"] == pytest.approx([290, 160, 450, 350], abs=2)
    union = np.zeros((H, W), bool)
    for annotation in annotations:
        union |= decode_rle(annotation["segmentation"])
    cutout = Image.open(cutout_file.path())
    assert cutout.format == "PNG" and cutout.mode == "RGBA" and cutout.size == (W, H)
    alpha = np.asarray(cutout)[:, :, 3]
    assert union.any() and not union.all()
    np.testing.assert_array_equal(alpha == 0, ~union)
    np.testing.assert_array_equal(alpha == 255, union)
    assert alpha[255, 370] == 255 and alpha[5, 5] == 0  # GrabCut found the blue rectangle
    named_mask = "#export-files a[href$='/shapes_object2-blue_box_mask.png']"  # its name
    expect(page.locator(named_mask)).to_have_count(1)
    page.locator(".dl-crop-box").check()  # cropped cut-outs: the object's box plus 5 %
    page.locator("#export-files summary").click()
    cropped = Image.open(download(
        page, "#export-files a[download='shapes_object2-blue_box_cutout.png']").path())
    assert cropped.size[0] < W and cropped.size[1] < H
    shot(page, "06-downloads")

    # Select the first object again to refine it, delete the second, clear and undo the clear.
    press(page, ".ol-row[data-id='1']")
    assert hint(page).startswith("Object 1:")
    expect(page.locator(".ol-row.active")).to_have_attribute("data-id", "1")
    press(page, ".ol-row[data-id='2'] .ol-del")
    expect(rows).to_have_count(1)
    expect(page.locator(named_mask)).to_have_count(0)
    press(page, "#undo")  # deleting can be undone
    expect(rows).to_have_count(2)
    press(page, ".ol-row[data-id='2'] .ol-del")
    expect(rows).to_have_count(1)
    press(page, ".ol-row[data-id='1']")
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

    pick_model(page, "SAM 2.1 Tiny")  # absent, and this server runs offline
    expect(page.locator("#model-status")).to_contain_text("not downloaded")
    expect(page.locator("#model-status")).to_contain_text("does not download models")
    expect(page.locator("#model-status")).to_contain_text(
        "python -m sam_backends download sam2.1-tiny")  # the operator's details, on here
    expect(page.locator("#download-model")).to_be_hidden()
    open_example(page, SHAPES)
    assert "not on this server" in hint(page) and "Segmenting" not in hint(page)
    page.mouse.click(*screen(page, 160, 230))  # no answer can come: the hint must not say
    page.wait_for_timeout(1500)                # "Segmenting…" for ever
    assert "Segmenting" not in hint(page) and "not on this server" in hint(page), hint(page)
    expect(page.locator(".toast-body", has_text="Download failed")).to_have_count(0)
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
    expect(page_a.locator("[data-testid=image-name]")).to_have_text("shapes.png")
    expect(page_b.locator("[data-testid=image-name]")).to_have_text("street.png")
    expect(page_b.locator("#canvas circle.pc-pt")).to_have_count(2)
    for page, stem in ((page_a, "shapes"), (page_b, "street")):
        expect(page.locator(f"#download-cutout[download='{stem}_cutout.png']")).to_have_count(
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


def test_hover_preview_appears_without_a_click_and_can_be_switched_off(browser, server):
    context, page = new_page(browser, server)
    open_example(page, SHAPES)
    page.wait_for_function("() => !document.querySelector('#canvas .pcl-root').dataset.busy",
                           timeout=TIMEOUT)
    requests = []
    page.on("request", lambda r: requests.append(r.url) if r.url.endswith("/hover") else None)
    page.mouse.move(*screen(page, 370, 255))
    page.wait_for_function("() => (window.__samwb_marks || []).some(m => m.kind === 'hover')",
                           timeout=TIMEOUT)
    assert mask_pixels(page, "#canvas canvas.pcl-preview") > 0  # a preview, no click
    assert mask_pixels(page) == 0 and server.ctx.sessions  # the session has no mask yet
    expect(page.locator(".ol-row").first).to_contain_text("empty")
    shot(page, "11-hover-preview")
    sent = len(requests)
    page.wait_for_timeout(600)
    assert len(requests) == sent  # a resting pointer sends nothing more
    # The click there turns the preview into the prompt (the hover's mask is reused).
    click_image(page, 370, 255)
    last = [m for m in marks(page) if m["kind"] == "point"][-1]
    assert last["reused"] is True
    assert mask_pixels(page, "#canvas canvas.pcl-preview") == 0 and mask_pixels(page) > 0
    # Switched off: moving sends nothing and shows no preview.
    page.locator("#canvas .pcl-hover").uncheck()
    sent = len(requests)
    for x in (200, 230, 260):
        page.mouse.move(*screen(page, x, 240))
        page.wait_for_timeout(100)
    page.wait_for_timeout(400)
    assert len(requests) == sent and mask_pixels(page, "#canvas canvas.pcl-preview") == 0
    page.keyboard.press("h")  # H turns it back on
    expect(page.locator("#canvas .pcl-hover")).to_be_checked()
    context.close()


def test_image_shown_at_once_one_indicator_and_clicks_during_encode_kept(browser, server,
                                                                        tmp_path):
    context, page = new_page(browser, server, 1366, 768)
    fresh = tmp_path / "fresh.png"  # never encoded before: the encode really runs
    pixels = np.random.default_rng(7).integers(0, 255, (H, W, 3), dtype=np.uint8)
    pixels[250:340, 150:360] = (200, 30, 30)
    Image.fromarray(pixels).save(fresh)
    before = render_count(page)
    page.set_input_files("#image-upload input[type=file]", str(fresh))
    wait_render(page, before)
    # The image comes with the first answer, before the encode; one indicator, on the canvas.
    page.wait_for_function("() => { const r = document.querySelector('#canvas .pcl-root');"
                           " return r && r.dataset.busy === '1'; }", timeout=TIMEOUT)
    expect(page.locator("#canvas .pcl-busy")).to_be_visible()
    expect(page.locator("#canvas .pcl-busy")).to_contain_text("clicks are kept")
    shot(page, "12-encoding")
    bars = page.locator("[data-testid=status-tracker]:not(.hide) .progress-text:visible, "
                        "[data-testid=status-tracker]:not(.hide) .eta-bar:visible")
    owners = bars.evaluate_all("els => els.map(e => (e.closest('[id]') || {}).id)")
    assert bars.count() == 0, owners
    click_image(page, 250, 290)  # made while encoding: kept, then answered
    assert mask_pixels(page) > 0
    expect(page.locator("#canvas .pcl-busy")).to_be_hidden(timeout=TIMEOUT)
    expect(page.locator(".ol-row").first).to_contain_text("score")
    context.close()


def test_zoom_pan_keys_and_mask_display(browser, server):
    context, page = new_page(browser, server, 1366, 768)
    open_example(page, SHAPES)
    before = page.locator("#canvas img.pcl-img").bounding_box()
    page.mouse.move(*screen(page, 160, 230))
    page.mouse.wheel(0, -600)  # zoom in at the pointer
    page.wait_for_timeout(200)
    zoomed = page.locator("#canvas img.pcl-img").bounding_box()
    assert zoomed["width"] > 1.5 * before["width"]
    # The point under the pointer stayed put, and a click still lands on image pixels.
    click_image(page, 160, 230)
    point = page.locator("#canvas circle.pc-pt.fg").first
    assert float(point.get_attribute("cx")) == pytest.approx(160, abs=3)
    assert float(point.get_attribute("cy")) == pytest.approx(230, abs=3)
    # Space + drag pans without adding a prompt.
    page.keyboard.down(" ")
    page.mouse.move(*screen(page, 160, 230))
    page.mouse.down()
    page.mouse.move(*screen(page, 220, 260), steps=4)
    page.mouse.up()
    page.keyboard.up(" ")
    expect(page.locator("#canvas circle.pc-pt")).to_have_count(1)
    shot(page, "13-zoomed")
    page.locator("#canvas .pcl-fit").click()
    fitted = page.locator("#canvas img.pcl-img").bounding_box()
    assert fitted["width"] == pytest.approx(before["width"], abs=2)

    # Opacity and outline-only are drawn here, without a server round trip.
    full = mask_pixels(page)
    page.keyboard.press("o")
    assert 0 < mask_pixels(page) < full
    page.keyboard.press("o")
    assert mask_pixels(page) == full

    # Keys: B toggles background, N new object, Delete deletes (undoable), Ctrl+Z / Shift.
    page.keyboard.press("b")
    expect(page.get_by_label("Background (not object)")).to_be_checked()
    page.keyboard.press("b")
    expect(page.get_by_label("Foreground (object)")).to_be_checked()
    wait_synced(page)
    before_render = render_count(page)
    page.keyboard.press("n")
    wait_render(page, before_render)
    expect(page.locator(".ol-row")).to_have_count(2)
    drag_box(page, 290, 160, 450, 350)
    expect(page.locator("#canvas rect.pcl-box-under")).to_have_count(1)
    expect(page.locator(".ol-row").nth(1)).to_contain_text("score")
    before_render = render_count(page)
    page.keyboard.press("Delete")
    wait_render(page, before_render)
    expect(page.locator(".ol-row")).to_have_count(1)
    before_render = render_count(page)
    page.keyboard.press("Control+z")
    wait_render(page, before_render)
    expect(page.locator(".ol-row")).to_have_count(2)
    before_render = render_count(page)
    page.keyboard.press("Control+z")  # now undoes the box
    wait_render(page, before_render)
    expect(page.locator("#canvas rect.pcl-box")).to_have_count(0)
    before_render = render_count(page)
    page.keyboard.press("Control+Shift+z")
    wait_render(page, before_render)
    expect(page.locator("#canvas rect.pcl-box")).to_have_count(1)
    page.keyboard.press("?")
    expect(page.locator("#canvas .pcl-help")).to_be_visible()
    expect(page.locator("#canvas .pcl-help")).to_contain_text("new object")
    shot(page, "14-help")
    page.keyboard.press("Escape")
    expect(page.locator("#canvas .pcl-help")).to_be_hidden()
    context.close()


@pytest.mark.parametrize("size", [(1366, 768), (1400, 900), (1920, 1080)])
def test_the_view_fits_the_screen(browser, server, size):
    width, height = size
    context, page = new_page(browser, server, width, height)
    open_example(page, STREET)
    click_image(page, 250, 290)
    wait_synced(page)
    if page.locator("[data-testid=candidates-similar]").count():
        press(page, "#candidates .cs-show")
    for selector in ("[data-testid=prompt-canvas]", "#status", "#candidates",
                     "[data-testid=canvas-hint]"):
        box = page.locator(selector).first.bounding_box()
        assert box is not None and box["y"] + box["height"] <= height + 1, selector
    # Reachable means on screen, unscrolled: the object list's first row, the labelled
    # "Downloads" box and its first link (the cut-out), beside the candidates under the canvas.
    for name, selector in (("object list", "#object-list [data-testid=object-list] > *"),
                           ("downloads", "#downloads-box"),
                           ("first download", "#downloads a.dl-main")):
        box = page.locator(selector).first.bounding_box()
        assert box is not None and box["y"] >= 0, name
        top = box["height"] if name != "downloads" else 40  # the box's labelled header
        assert box["y"] + top <= height + 1, f"{name} is below the fold at {width}x{height}"
    assert page.evaluate("() => document.scrollingElement.scrollTop") == 0
    page.screenshot(path=str(artifacts() / f"segment-15-fits-{width}x{height}.png"))
    context.close()
