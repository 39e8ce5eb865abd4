"""The video view driven in Debian's Chromium through Playwright, against the real app with the
random-weight SAM 2.1 test model and small synthetic clips. Screenshots (1366x768 and
1920x1080) go to ``$ARTIFACTS_DIR`` (default ``./test-artifacts``).

Clip: ``test_video_ui.make_clip`` at 320 x 180, a red 24 x 24 square at (10 + 4i, 20) on
frame i.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ui"))  # make_clip, run alone too
from app_harness import app_config, running_app
from canvas_pixels import close, drawn_colours, fill_of, image_to_screen
from test_browser_segment import artifacts, hidden_under, launch_chromium
from test_video_ui import make_clip  # noqa: E402

from workbench.drawing import SPEC

pytestmark = pytest.mark.browser

W, H = 320, 180
TIMEOUT = 240_000  # ms; a tracked frame of the test model takes seconds on a busy CPU

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - CI installs it
    sync_playwright = None


@pytest.fixture(scope="module")
def server(sam1_small, sam2_small, random_checkpoint_dir, tmp_path_factory):
    from sam_backends.testing.random_models import small_sam2_spec, write_random_checkpoint
    from workbench.config import ExtraModel

    other = small_sam2_spec("test-sam2-small-b")  # other random weights: a second model
    other_path = write_random_checkpoint(other, random_checkpoint_dir / other.checkpoint_file,
                                         seed=1)
    extra = (ExtraModel(sam2_small.spec, sam2_small.path), ExtraModel(other, other_path))
    config = app_config(sam1_small, sam2_small, tmp_path_factory.mktemp("no-checkpoints"),
                        video_max_frames=12, extra_models=extra)
    with running_app(config) as running:
        yield running


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser-clips")
    return {"short": make_clip(folder / "square.mp4", frames=4, width=W, height=H),
            "long": make_clip(folder / "longer.mp4", frames=10, width=W, height=H)}


@pytest.fixture(scope="module")
def browser():
    yield from launch_chromium()


def video_page(browser, server, width=1366, height=768):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(server.url)
    page.get_by_role("tab", name="Video").click()
    expect(page.locator("#video-upload")).to_be_visible(timeout=60_000)
    return context, page


def render_count(page) -> int:
    found = page.locator("#video-canvas [data-render]")
    return int(found.get_attribute("data-render")) if found.count() else 0


def wait_render(page, before: int) -> None:
    page.wait_for_function(
        "n => { const e = document.querySelector('#video-canvas [data-render]');"
        " return e && Number(e.dataset.render) > n; }", arg=before, timeout=TIMEOUT)


def every_frame(page) -> None:
    """Stride 1 instead of the automatic one (which would halve the test clips' 10 fps), for
    the clip just uploaded: set it and press Apply, then wait until the page says so (set
    before the upload, the value was now and then not yet taken on a loaded machine)."""
    page.locator("#video-selection").get_by_text("Frames to process").click()
    stride = page.locator("#video-stride input")
    info = page.locator("#video-info")
    for _ in range(3):  # on a loaded machine the upload's own late update can reset the field
        stride.fill("1")
        stride.press("Tab")
        before = render_count(page)
        page.locator("#video-apply").click()
        wait_render(page, before)
        try:
            expect(info).to_contain_text("(every frame,", timeout=20_000)
            return
        except AssertionError:
            continue
    expect(info).to_contain_text("(every frame,", timeout=20_000)


def first_frames(page, count: int) -> None:
    """Only the first ``count`` processed frames of the clip just opened: Max frames set and
    Apply pressed until the page says so (as ``every_frame``: on a loaded machine a late update
    of the opening can reset the field)."""
    page.locator("#video-selection").get_by_text("Frames to process").click()
    field = page.locator("#video-max-frames input")
    info = page.locator("#video-info")
    for _ in range(3):
        field.fill(str(count))
        field.press("Tab")
        before = render_count(page)
        page.locator("#video-apply").click()
        wait_render(page, before)
        try:
            expect(info).to_contain_text(f"processing {count} frames", timeout=20_000)
            return
        except AssertionError:
            continue
    expect(info).to_contain_text(f"processing {count} frames", timeout=20_000)


def page_with_clip(browser, server, clip: Path, width=1366, height=768):
    """A new page on the Video tab with ``clip`` uploaded and every frame processed."""
    context, page = video_page(browser, server, width, height)
    upload(page, clip)
    every_frame(page)
    return context, page


def upload(page, clip: Path) -> None:
    before = render_count(page)
    page.locator("#video-upload input[type=file]").set_input_files(str(clip))
    wait_render(page, before)
    expect(page.locator("#video-canvas [data-testid=prompt-canvas]")).to_be_visible()


def screen(page, x: float, y: float, size=(W, H)) -> tuple[float, float]:
    return image_to_screen(page, "#video-canvas", x, y, *size)


def plant_square(server, frame: int) -> int:
    """Put the red square of ``frame`` into the newest video session's track as object 1's
    mask (the random-weight test model's masks are empty here); its pixel count."""
    from workbench.video.state import VideoSession

    ctx = server.ctx
    sessions = [ctx.sessions.get(i) for i in ctx.sessions.ids()]
    session = [s for s in sessions if isinstance(s, VideoSession) and s.clip is not None][-1]
    mask = np.zeros((H, W), bool)
    mask[20:44, 10 + 4 * frame:34 + 4 * frame] = True
    session.track.set(frame, 1, mask)
    return int(mask.sum())


def assert_drawn_as_specified(page, pixels: int) -> None:
    """The browser canvas (not the server) draws object 1's mask: every mask pixel, its fill
    in the spec's colour at the spec's opacity, over the plain frame."""
    colour, alpha = fill_of(page, "#video-canvas")
    assert close(colour, SPEC.colour_for(1)) and abs(alpha - round(255 * SPEC.fill_opacity)) <= 1
    assert sum(row[4] for row in drawn_colours(page, "#video-canvas")) == pixels
    assert page.locator("#video-canvas img.pcl-img").get_attribute("src").startswith(
        "data:image/jpeg;base64,")


def drag_box(page, x0, y0, x1, y1, size=(W, H)) -> None:
    page.locator("#video-canvas [data-testid=prompt-canvas]").scroll_into_view_if_needed()
    before = render_count(page)
    page.mouse.move(*screen(page, x0, y0, size))
    page.mouse.down()
    for step in range(1, 6):
        t = step / 5
        page.mouse.move(*screen(page, x0 + t * (x1 - x0), y0 + t * (y1 - y0), size))
    page.mouse.up()
    wait_render(page, before)


def scrub(page, frame: int) -> None:
    before = render_count(page)
    number = page.locator("#video-frame input[type=number]")
    number.fill(str(frame))
    number.press("Enter")
    wait_render(page, before)


def shot(page, name: str) -> None:
    width = page.viewport_size["width"]
    page.screenshot(path=str(artifacts() / f"video-{width}-{name}.png"), full_page=True)


def test_upload_scrub_click_track_and_export(browser, server, clips):
    context, page = page_with_clip(browser, server, clips["short"])
    expect(page.locator("#video-info")).to_contain_text("processing 4 frames")
    expect(page.locator("#video-frame-label")).to_contain_text("Frame 0 of 3")
    shot(page, "01-uploaded")
    # at 1366x768, unscrolled: the frame and its controls together
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts() / "video-1366-01b-fold.png"))
    for selector in ("#video-canvas [data-testid=prompt-canvas]", "#video-play", "#video-pause",
                     "#video-frame", "#video-timeline", "#video-track", "#video-stop"):
        box = page.locator(selector).first.bounding_box()
        print(selector, box and (round(box["y"]), round(box["height"])))
        assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= 768 + 1, \
            f"{selector} is not on a 1366x768 screen with the frame"
    assert hidden_under(page, "video-upload") == []  # nothing drawn under a label or arrow

    scrub(page, 2)
    expect(page.locator("#video-frame-label")).to_contain_text("Frame 2 of 3")
    scrub(page, 0)

    drag_box(page, 6, 16, 38, 48)
    expect(page.locator("#video-canvas rect.pc-box")).to_have_count(1)
    expect(page.locator("#video-objects .ol-row")).to_contain_text("prompts on frame 0")
    shot(page, "02-box")

    page.locator("#video-track").click()
    expect(page.locator("#video-status")).to_contain_text("Tracking:", timeout=TIMEOUT)
    expect(page.locator("#video-status")).to_contain_text("Tracked 4 frames", timeout=TIMEOUT)
    expect(page.locator("#video-objects .ol-row")).to_contain_text("masks on 4/4")
    shot(page, "03-tracked")
    pixels = plant_square(server, 3)
    scrub(page, 3)
    assert_drawn_as_specified(page, pixels)  # a tracked frame's mask, drawn in the browser
    shot(page, "03b-mask-on-canvas")
    scrub(page, 0)

    # the downloads were written when the track ended: no click needed
    expect(page.locator("#video-export-note")).to_contain_text("ready", timeout=TIMEOUT)
    player = page.locator("#video-player video")
    expect(player).to_have_count(1, timeout=TIMEOUT)
    page.wait_for_function(
        "() => { const v = document.querySelector('#video-player video');"
        " return v && v.readyState >= 1 && v.duration > 0; }", timeout=60_000)
    duration = page.evaluate("() => document.querySelector('#video-player video').duration")
    assert duration == pytest.approx(0.4, abs=0.15)  # 4 frames at 10 fps
    expect(page.locator("#video-download-coco")).to_be_enabled()
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.wait_for_timeout(300)
    shot(page, "04-exported")
    context.close()


def test_stop_keeps_the_frames_tracked_so_far(browser, server, clips):
    context, page = page_with_clip(browser, server, clips["long"], 1920, 1080)
    drag_box(page, 6, 16, 38, 48)
    page.locator("#video-track").click()
    expect(page.locator("#video-status")).to_contain_text("Tracking: 1/10", timeout=TIMEOUT)
    shot(page, "05-tracking")
    page.locator("#video-stop").click()
    expect(page.locator("#video-status")).to_contain_text("Stopped", timeout=TIMEOUT)
    # The page is usable again: a click on another frame is accepted (not "busy").
    scrub(page, 5)
    drag_box(page, 24, 16, 60, 48)
    expect(page.locator("#video-objects .ol-row")).to_contain_text("prompts on frame 0, 5")
    shot(page, "06-stopped-and-corrected")
    context.close()


def frame_shown(page) -> int:
    """The frame number in "Frame i of n"."""
    text = page.locator("#video-frame-label").inner_text()
    return int(text.split("Frame", 1)[1].split("of", 1)[0])


def test_play_and_pause(browser, server, clips):
    context, page = page_with_clip(browser, server, clips["long"])
    page.locator("#video-play").click()
    page.wait_for_function(  # checked every animation frame: ticks come every 0.2 s
        "() => { const t = document.querySelector('#video-frame-label').innerText;"
        " const m = t.match(/Frame (\\d+) of/); return m && Number(m[1]) >= 2; }",
        polling="raf", timeout=60_000)
    page.locator("#video-pause").click()
    page.wait_for_timeout(600)  # the pause event and any tick already on its way
    paused = frame_shown(page)
    assert 2 <= paused < 9
    page.wait_for_timeout(1500)  # 7 ticks' worth at 10 fps: nothing moves while paused
    assert frame_shown(page) == paused
    assert page.locator("#video-frame input[type=number]").input_value() == str(paused)
    # play on to the end: the last frame stays (no wrap, the timer stops itself)
    page.locator("#video-play").click()
    expect(page.locator("#video-frame-label")).to_contain_text("Frame 9 of 9", timeout=60_000)
    page.wait_for_timeout(1000)
    assert frame_shown(page) == 9
    context.close()


def test_compare_two_models_on_the_clip(browser, server, clips):
    context, page = page_with_clip(browser, server, clips["short"], 1920, 1080)
    drag_box(page, 6, 16, 38, 48)
    page.locator("#video-compare").get_by_text("Compare two models on this clip").click()
    model_b = page.locator("#video-compare-b input")
    model_b.click()
    page.get_by_role("option", name="test-sam2-small-b").click()
    page.locator("#video-compare-run").click()
    text = page.locator("#video-compare-text")
    expect(text).to_contain_text("IoU between them: mean", timeout=TIMEOUT)
    # ": 4 frames," per model (a rate such as "0.14 frames/s" holds "4 frames" too)
    assert text.inner_text().count(": 4 frames,") == 2
    assert "stopped early" not in text.inner_text()
    for side in ("a", "b"):
        expect(page.locator(f"#video-compare-image-{side} img")).to_be_visible()
    expect(page.locator("#video-compare-iou")).not_to_contain_text("No data")
    page.locator("#video-compare").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    shot(page, "07-compare")
    context.close()


def plant_blue_square(server) -> None:
    """The example clip's blue square, cut out of each processed frame by its colour, as object
    1's mask on every frame (the random-weight test model's own masks are empty)."""
    from workbench.video.state import VideoSession

    ctx = server.ctx
    sessions = [ctx.sessions.get(i) for i in ctx.sessions.ids()]
    session = [s for s in sessions if isinstance(s, VideoSession) and s.clip is not None
               and s.clip.name == "moving_shapes.mp4"][-1]
    for frame in range(session.video.num_frames):
        rgb = session.video.frame(frame).astype(int)
        session.track.set(frame, 1, (rgb[..., 2] > 150) & (rgb[..., 0] < 100))


def timeline_cell_colour(page, frame: int, frames: int, row: int = 0) -> list[int]:
    """The RGB the timeline's rows canvas shows at the middle of ``frame``'s cell in ``row``."""
    return page.evaluate(
        """([frame, frames, row]) => {
          const cv = document.querySelector('#video-timeline canvas.tl-rows');
          const k = cv.width / cv.clientWidth;
          const x = Math.floor((frame + 0.5) / frames * cv.clientWidth * k);
          const px = cv.getContext('2d').getImageData(x, Math.floor((row * 12 + 6) * k), 1, 1);
          return Array.from(px.data.slice(0, 3)); }""", [frame, frames, row])


def test_timeline_rows_and_seeking(browser, server):
    """The example clip's first 3 processed frames: a box on the blue square, Track, then the
    timeline's row for it; a click on the timeline and the arrow keys move the frame."""
    context, page = video_page(browser, server)
    timeline = page.locator("#video-timeline")
    expect(timeline).to_contain_text("Open a clip")
    before = render_count(page)
    page.locator("#video-example").click()
    wait_render(page, before)
    first_frames(page, 3)
    expect(timeline).to_contain_text("No objects yet")

    drag_box(page, 235, 45, 365, 175, size=(640, 360))
    row = timeline.locator(".tl-name[data-id='1']")
    expect(row).to_have_attribute("data-prompted", "[0]")
    page.locator("#video-track").click()
    expect(page.locator("#video-status")).to_contain_text("Tracked 3 frames", timeout=TIMEOUT)
    expect(row).to_have_attribute("data-tracked", "[[0,3]]")
    expect(row).to_contain_text("Object 1")

    plant_blue_square(server)  # what a trained model would have found on every frame
    scrub(page, 0)
    expect(page.locator("#video-frame-label")).to_contain_text("Frame 0 of 2")
    tracks = timeline.locator(".tl-tracks").bounding_box()
    before = render_count(page)
    page.mouse.click(tracks["x"] + tracks["width"] * 2.5 / 3, tracks["y"] + 6)  # frame 2's cell
    wait_render(page, before)
    expect(page.locator("#video-frame-label")).to_contain_text("Frame 2 of 2")
    assert page.locator("#video-frame input[type=number]").input_value() == "2"
    expect(row).to_have_attribute("data-present", "[[0,3]]")
    expect(timeline.locator(".tl-root")).to_have_attribute("data-current", "2")
    assert close(timeline_cell_colour(page, 1, 3), SPEC.colour_for(1))  # a seen cell, drawn
    shot(page, "08-timeline")

    before = render_count(page)
    page.keyboard.press("ArrowLeft")  # the click focused the timeline
    wait_render(page, before)
    expect(page.locator("#video-frame-label")).to_contain_text("Frame 1 of 2")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.wait_for_timeout(300)
    shot(page, "08-timeline")
    context.close()
