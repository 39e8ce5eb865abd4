"""A project annotated in Debian's Chromium (Playwright) against the real app in its own
process (``project_app.py``), which the test kills with SIGKILL mid-edit.

The project: 30 images (the photos of ``../shared/media`` when present, the rest generated;
names with spaces and accents), classes "car" and "person". The person picks classes with the
number keys, clicks objects, moves on with ``D`` / ``A``, closes the browser mid-image and comes
back to the same image and objects; the server is killed (``kill -9``) right after a click is
sent, restarted, and everything but that click is there, in the page and in the database.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from app_harness import ROOT, free_port
from PIL import Image, ImageDraw
from test_browser_segment import TIMEOUT, H, W, artifacts, launch_chromium

from workbench.projects.model import default_color

pytestmark = pytest.mark.browser

MEDIA = ROOT.parent / "shared" / "media"
IMAGES = 30

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - CI installs it; ``browser`` then skips
    expect = None


@pytest.fixture(scope="module")
def browser():
    yield from launch_chromium()


def make_project(folder: Path) -> list[str]:
    """30 images: generated ones first (names sort before the photos), then the photos."""
    photos = sorted(MEDIA.glob("*.jpg")) if MEDIA.is_dir() else []
    generated = IMAGES - len(photos)
    for i in range(generated):
        image = Image.new("RGB", (W, H), (236, 232, 224))
        draw = ImageDraw.Draw(image)
        x = 60 + (i * 17) % 200
        draw.ellipse((x, 150, x + 160, 310), fill=(220, 40, 40))
        draw.rounded_rectangle((360, 170, 500, 340), radius=14, fill=(40, 80, 220))
        accent = " café" if i % 5 == 0 else ""
        sub = folder / ("more shots" if i >= 20 else "")
        sub.mkdir(parents=True, exist_ok=True)
        image.save(sub / f"{i:02d} shapes{accent}.png")
    for photo in photos:  # copied into the temp project (never into the repository)
        shutil.copyfile(photo, folder / photo.name)
    from workbench.projects.store import ProjectStore

    with ProjectStore.open(folder, create=True, name="Browser test") as store:
        first = store.classes()[0]  # a new project has one class, "object"
        store.update_class(first.class_id, name="car")
        store.add_class("person")
        return [e.path for e in store.page(0, 100)]


class ProjectServer:
    """``project_app.py`` in a subprocess on a free loopback port."""

    def __init__(self, project: Path, checkpoint: Path, temp: Path) -> None:
        self.args = [sys.executable, str(Path(__file__).with_name("project_app.py")),
                     str(project), "0", str(checkpoint), str(temp)]
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> None:
        port = free_port()
        self.args[3] = str(port)
        self.url = f"http://127.0.0.1:{port}/"
        log = open(artifacts() / "project-server.log", "ab")
        self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the app stopped (rc {self.process.returncode}); see "
                                     "test-artifacts/project-server.log")
            try:
                with urllib.request.urlopen(self.url + "healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise AssertionError("the app did not start in 120 s")

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()


def open_page(browser, server: ProjectServer, width: int = 1366, height: int = 768):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector("#project-bar", state="visible", timeout=TIMEOUT)
    wait_ready(page)
    return context, page


def wait_ready(page) -> None:
    """The project image is shown and encoded (no busy indicator on the canvas)."""
    page.wait_for_selector("#canvas img.pcl-img", timeout=TIMEOUT)
    page.wait_for_function(
        "() => { const r = document.querySelector('#canvas .pcl-root');"
        " return r && !r.dataset.busy; }", timeout=TIMEOUT)


def assert_list_layout(page) -> None:
    """Nothing floats over the first row of thumbnails (the gallery's label and its buttons
    sit above it), and the class editor's colour picker shows the colour "Add" would give a
    new class (it was an empty box)."""
    found = page.evaluate("""() => {
        const box = s => document.querySelector(s).getBoundingClientRect();
        const first = box('#pj-gallery .thumbnail-item');
        const over = [...document.querySelectorAll(
            '#pj-gallery [data-testid=block-label], #pj-gallery .icon-button-wrapper')]
            .map(e => e.getBoundingClientRect()).filter(b => b.width && b.height);
        const swatch = getComputedStyle(document.querySelector('#pj-class-color button'));
        return {first: first.top, floating: over.map(b => b.bottom), count: over.length,
                swatch: swatch.backgroundColor};
    }""")
    assert found["count"] >= 1, found  # the label at least
    assert all(bottom <= found["first"] for bottom in found["floating"]), found
    # the project has "car" and "person": a third class gets the third colour of the palette
    assert found["swatch"] == css_rgb(default_color(2)), found


def css_rgb(hex_colour: str) -> str:
    """``#rrggbb`` as the browser's computed style writes it."""
    return "rgb({}, {}, {})".format(*(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)))


def info(page) -> str:
    return page.locator("#project-info").inner_text()


def wait_info(page, text: str) -> None:
    expect(page.locator("#project-info")).to_contain_text(text, timeout=TIMEOUT)
    wait_ready(page)


LIVE = """() => (window.__samwb_marks || []).filter(m => m.kind === 'point').length"""


def click_image(page, x: float, y: float, wait: bool = True) -> None:
    """Click image pixel (x, y) (of a W x H image) and wait for the live answer."""
    before = int(page.evaluate(LIVE))
    box = page.locator("#canvas img.pcl-img").bounding_box()
    page.mouse.click(box["x"] + x / W * box["width"], box["y"] + y / H * box["height"])
    if wait:  # the answer is drawn, then the object list catches up (``synced``)
        page.wait_for_function(f"n => ({LIVE})() > n", arg=before, timeout=TIMEOUT)
        page.wait_for_function(
            "() => { const m = document.querySelector('#object-list .ol-row.active .ol-meta');"
            " return m && !m.textContent.startsWith('empty'); }", timeout=TIMEOUT)


MASKED_ROWS = """() => [...document.querySelectorAll('#object-list .ol-row')]
  .filter(r => !r.querySelector('.ol-meta').textContent.startsWith('empty'))
  .map(r => r.querySelector('.ol-name').textContent)"""


def wait_objects(page, count: int) -> list[str]:
    """The names of the objects that have a mask, once there are at least ``count``."""
    try:
        page.wait_for_function(f"n => ({MASKED_ROWS})().length >= n", arg=count,
                               timeout=TIMEOUT)
    except Exception:
        page.screenshot(path=str(artifacts() / "projects-failed.png"))
        raise AssertionError("objects: " + page.locator("#object-list").inner_text()) from None
    return page.evaluate(MASKED_ROWS)


def new_object(page) -> None:
    """Press N and wait for the new (empty) object to be the active one (an empty active
    object is reused: nothing to wait for)."""
    active = page.locator("#object-list .ol-row.active .ol-meta").inner_text()
    if active.startswith("empty"):
        return
    rows = page.locator("#object-list .ol-row").count()
    page.keyboard.press("n")
    page.wait_for_function("n => document.querySelectorAll('#object-list .ol-row').length > n",
                           arg=rows, timeout=TIMEOUT)


def press_class(page, key: str, label: str) -> None:
    page.locator("#canvas").hover()
    page.keyboard.press(key)
    expect(page.locator("#project-class label", has_text=label).locator("input")).to_be_checked(
        timeout=TIMEOUT)
    page.wait_for_timeout(500)  # the class reaches the session (a queued event)


def test_label_close_reopen_and_kill9(browser, sam2_small, tmp_path):
    project = tmp_path / "my project"
    project.mkdir()
    paths = make_project(project)
    assert len(paths) == IMAGES
    server = ProjectServer(project, sam2_small.path, tmp_path / "temp")
    server.start()
    try:
        context, page = open_page(browser, server)
        wait_info(page, f"image 1 of {IMAGES}")
        assert paths[0] in info(page)
        press_class(page, "2", "person")
        click_image(page, 160 + 0, 230)
        rows = wait_objects(page, 1)
        assert any("person" in r for r in rows), rows
        page.screenshot(path=str(artifacts() / "projects-segment-1366.png"))

        page.locator("#canvas").hover()
        page.keyboard.press("d")
        wait_info(page, f"image 2 of {IMAGES}")
        press_class(page, "1", "car")
        click_image(page, 430, 250)
        new_object(page)
        click_image(page, 180, 230)
        rows = wait_objects(page, 2)
        assert sum("car" in r for r in rows) == 2, rows
        context.close()  # the tab closes mid-image

        context, page = open_page(browser, server)
        wait_info(page, f"image 2 of {IMAGES}")  # back where the person was
        rows = wait_objects(page, 2)
        assert sum("car" in r for r in rows) == 2, rows
        page.locator("#canvas").hover()
        page.keyboard.press("a")
        wait_info(page, f"image 1 of {IMAGES}")
        rows = wait_objects(page, 1)
        assert any("person" in r for r in rows), rows
        press_class(page, "2", "person")
        new_object(page)
        click_image(page, 430, 250)  # saved: its answer came back
        wait_objects(page, 2)
        new_object(page)
        click_image(page, 300, 100, wait=False)  # in flight when the server dies
        server.kill9()
        context.close()

        server.start()
        context, page = open_page(browser, server, 1920, 1080)
        wait_info(page, f"image 1 of {IMAGES}")
        rows = wait_objects(page, 2)
        assert sum("person" in r for r in rows) >= 2, rows
        page.screenshot(path=str(artifacts() / "projects-segment-1920.png"))
        page.get_by_role("tab", name="Projects").click()
        expect(page.locator("#pj-page-info")).to_contain_text(f"{IMAGES} images",
                                                             timeout=TIMEOUT)
        expect(page.locator("#pj-gallery img").first).to_be_visible(timeout=TIMEOUT)
        page.wait_for_function(  # every thumbnail of the page is drawn
            "() => { const im = [...document.querySelectorAll('#pj-gallery img')];"
            " return im.length >= 30 && im.every(i => i.complete && i.naturalWidth > 0); }",
            timeout=TIMEOUT)
        assert "●" in page.locator("#pj-gallery").inner_text()  # the two images in review
        page.screenshot(path=str(artifacts() / "projects-list-1920.png"))
        assert_list_layout(page)
        page.set_viewport_size({"width": 1366, "height": 768})
        page.screenshot(path=str(artifacts() / "projects-list-1366.png"))
        assert_list_layout(page)
        page.locator("#pj-class-pick input").click()  # the editor takes the picked class
        page.locator("li[data-testid=dropdown-option]", has_text="person").first.click()
        expect(page.locator("#pj-class-name input, #pj-class-name textarea")).to_have_value(
            "person", timeout=TIMEOUT)
        expect(page.locator("#pj-class-color button")).to_have_css(
            "background-color", css_rgb(default_color(1)))  # person was the second class
        page.locator("#pj-status input").click()
        page.locator("li[data-testid=dropdown-option]", has_text="In review").first.click()
        expect(page.locator("#pj-page-info")).to_contain_text("2 images", timeout=TIMEOUT)
        page.locator("#pj-gallery .thumbnail-item").nth(1).click()
        wait_info(page, f"image 2 of {IMAGES}")
        expect(page.locator("#project-status input")).to_have_value("In review")
        context.close()
    finally:
        server.stop()

    from workbench.projects.store import ProjectStore

    with ProjectStore.open(project) as store:
        classes = {c.name: c.class_id for c in store.classes()}
        first, second = store.page(0, 2)
        assert first.status == second.status == "review"
        on_first = store.objects(first.image_id)
        on_second = store.objects(second.image_id)
        assert len(on_first) >= 2 and {o.class_id for o in on_first} == {classes["person"]}
        assert len(on_second) == 2 and {o.class_id for o in on_second} == {classes["car"]}
        assert all(o.mask().any() for o in on_first + on_second)


def test_a_visitors_project_from_uploads_comes_back_after_a_reload_and_is_theirs_only(
        browser, sam2_small, tmp_path):
    from app_harness import running_app

    from workbench.config import AppConfig, ExtraModel

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    for i in range(3):
        image = Image.new("RGB", (W, H), (236, 232, 224))
        ImageDraw.Draw(image).ellipse((100 + 40 * i, 150, 260 + 40 * i, 310), fill=(220, 40, 40))
        image.save(uploads / f"upload {i}.png")
    config = AppConfig(models=("grabcut",), extra_models=(
        ExtraModel(sam2_small.spec, sam2_small.path),), default_model=sam2_small.spec.model_id,
        device="cpu", precision="fp32", examples_dir=None, temp_dir=tmp_path / "temp")
    with running_app(config) as running:
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        page.goto(running.url)
        page.get_by_role("tab", name="Projects").click()
        page.locator("#pj-uploads input[type=file]").set_input_files(
            [str(p) for p in sorted(uploads.iterdir())])
        expect(page.locator("#pj-uploads")).to_contain_text("upload 2 .png", timeout=TIMEOUT)
        page.locator("#pj-create").click()
        expect(page.locator("#pj-page-info")).to_contain_text("3 images", timeout=TIMEOUT)
        page.screenshot(path=str(artifacts() / "projects-visitor-1366.png"))
        page.locator("#pj-gallery .thumbnail-item").nth(1).click()
        wait_info(page, "image 2 of 3")
        click_image(page, 220, 230)
        wait_objects(page, 1)
        page.reload()  # the same browser: its secret key finds the project again
        page.wait_for_selector("#project-bar", state="visible", timeout=TIMEOUT)
        wait_info(page, "image 2 of 3")
        assert len(wait_objects(page, 1)) == 1
        context.close()

        stranger = browser.new_context(viewport={"width": 1366, "height": 768})
        other = stranger.new_page()
        other.goto(running.url)
        other.get_by_role("tab", name="Projects").click()
        expect(other.locator("#pj-page-info")).to_contain_text("No project open",
                                                              timeout=TIMEOUT)
        assert other.locator("#pj-gallery img").count() == 0
        assert not other.locator("#project-bar").is_visible()
        stranger.close()
