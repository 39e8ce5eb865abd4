"""The video view: layout and event wiring (handlers in ``ui.video.handlers``, per-user state in
``workbench.video.state``, values shown in ``workbench.video.values``; the compare panel in
``ui.video.compare``, the downloads in ``ui.video.exports``).

Concurrency: clicks on a frame run in the "video-click" group (two at once, all users), frame
scrubbing and play in "video-view" (four at once: they only decode and draw), tracking and
comparing with no Gradio limit: the tracking lane admits one job, lets a few wait and refuses
the rest at once, and every frame goes through the shared encoder lane.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from sam_backends.video.text_tracking import DEFAULT_RE_DETECT_EVERY
from ui.sessions import unload_handler
from ui.video.compare import build_compare_panel
from ui.video.exports import build_exports_panel
from ui.video.handlers import (
    BACKGROUND,
    FOREGROUND,
    SESSION_SUFFIX,
    TRACK_ALL,
    TRACK_FROM_HERE,
    VideoHandlers,
)
from ui.video.words import DETECTOR_CHOICES, WordsHandlers
from ui.widgets.canvas import ObjectList, PromptCanvas
from ui.widgets.timeline import Timeline
from workbench.context import AppContext
from workbench.video.services import DEFAULT_MAX_FRAMES, VIDEO_SUFFIXES

EXAMPLE_NAME = "moving_shapes.mp4"  # made by assets/make_video_example.py
# One line: on a 1366 x 768 screen the frame and its controls (Play, the slider, the timeline,
# Track) must fit together below it. The canvas's hint says the rest.
INTRO = """
**Track objects through a clip:** click an object or drag a box on any frame, press **Track**,
then correct it on any frame and track again.
"""

# The canvas leaves room under it for the player row, the timeline and the Track row.
CSS = """
#video-canvas { --pcl-reserve: 190px; }
#video-intro p { margin: 0; }
"""


def limits_markdown(ctx: AppContext) -> str:
    limits = ctx.services.video.limits
    megapixels = limits.max_pixels / 1e6
    return (f"This server takes clips up to **{limits.max_duration_s:g} s** (of the selected "
            f"part), **{limits.max_frames} processed frames**, {megapixels:.1f} megapixels per "
            f"frame and {limits.max_file_bytes / 2**20:.0f} MiB; longer clips: choose a part "
            "or a larger stride.")


def proposal_markdown(services: Any) -> str:
    """The one line that says why the Video view proposes a model (empty when it does not)."""
    proposed = services.proposal()
    return "" if proposed is None else f"*{proposed[1]}*"


def build_video_tab(ctx: AppContext, demo: gr.Blocks) -> VideoHandlers:
    """Lay out the video view inside the current Blocks context and wire its events."""
    examples_dir = ctx.config.examples_dir
    example = Path(examples_dir) / EXAMPLE_NAME if examples_dir is not None else None
    h = VideoHandlers(ctx, example if example is not None and example.is_file() else None)
    services = h.services
    model_ids = services.model_ids()
    default = services.default_model()
    limits = services.limits
    state = gr.State(None, delete_callback=ctx.sessions.release_value)
    gr.Markdown(INTRO, elem_id="video-intro")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=290):
            gr.Markdown("#### 1 · Clip (MP4, MOV, WebM, MKV)")
            upload = gr.File(label="Upload a clip", type="filepath",
                             file_types=list(VIDEO_SUFFIXES), height=120,
                             elem_id="video-upload")
            example_btn = gr.Button("Use the example clip", size="sm", elem_id="video-example",
                                    visible=h.example is not None)
            with gr.Accordion("Frames to process", open=False, elem_id="video-selection"):
                gr.Markdown(limits_markdown(ctx), elem_id="video-limits")
                with gr.Row():
                    stride = gr.Number(0, label="Stride (0: about 5 fps)", precision=0,
                                       minimum=0, elem_id="video-stride")
                    max_frames = gr.Number(min(DEFAULT_MAX_FRAMES, limits.max_frames),
                                           label="Max frames", precision=0, minimum=0,
                                           maximum=limits.max_frames,
                                           elem_id="video-max-frames")
                with gr.Row():
                    start_s = gr.Number(0, label="Start (s)", minimum=0, elem_id="video-start")
                    end_s = gr.Number(0, label="End (s, 0: the end)", minimum=0,
                                      elem_id="video-end")
                apply_btn = gr.Button("Apply (prompts start again)", size="sm",
                                      elem_id="video-apply")
            gr.Markdown("#### 2 · Model")
            model = gr.Dropdown([(ctx.spec(m).display_name, m) for m in model_ids],
                                value=default, label="Tracker", elem_id="video-model")
            gr.Markdown(proposal_markdown(services), elem_id="video-model-proposal")
            gr.Markdown("#### 3 · Objects")
            objects = ObjectList({"items": []}, elem_id="video-objects")
            with gr.Row():
                name = gr.Textbox(placeholder="name, e.g. dog", show_label=False, max_lines=1,
                                  scale=3, elem_id="video-object-name")
                new_btn = gr.Button("+ New object", size="sm", scale=2,
                                    elem_id="video-new-object")
            rename_btn = gr.Button("Rename the selected object", size="sm",
                                   elem_id="video-rename")
            with gr.Accordion("Find by words", open=False, elem_id="video-words"):
                words_text = gr.Textbox(placeholder="what to find, e.g. dog, person",
                                        show_label=False, max_lines=1,
                                        elem_id="video-words-text")
                words_detector = gr.Dropdown(DETECTOR_CHOICES, value="auto", label="Detector",
                                             elem_id="video-words-detector")
                with gr.Row():
                    words_threshold = gr.Number(0.3, label="Score threshold", minimum=0,
                                                maximum=1, step=0.05,
                                                elem_id="video-words-threshold")
                    words_every = gr.Number(DEFAULT_RE_DETECT_EVERY, label="Re-detect every "
                                            "(frames; 0: first only)", precision=0, minimum=0,
                                            elem_id="video-words-every")
                words_btn = gr.Button("Find and track", variant="primary", size="sm",
                                      elem_id="video-words-find")
        with gr.Column(scale=3):
            with gr.Row(equal_height=False):
                mode = gr.Radio([FOREGROUND, BACKGROUND], value=FOREGROUND,
                                label="A left click adds", elem_id="video-click-mode", scale=3,
                                container=False)
                undo = gr.Button("↶ Undo", size="sm", elem_id="video-undo", scale=0,
                                 min_width=80)
                clear = gr.Button("Clear this frame", size="sm", elem_id="video-clear",
                                  scale=0, min_width=120)
            canvas = PromptCanvas({"hint": "Upload a clip or pick the example on the left."},
                                  elem_id="video-canvas")
            # One row under the frame: the player and Track, then the timeline (1366 x 768).
            with gr.Row(equal_height=True, elem_id="video-player-row"):
                play = gr.Button("▶ Play", size="sm", scale=0, min_width=80,
                                 elem_id="video-play")
                pause = gr.Button("❚❚ Pause", size="sm", scale=0, min_width=80,
                                  elem_id="video-pause")
                slider = gr.Slider(0, 1, value=0, step=1, label="Frame", interactive=False,
                                   scale=4, container=False, elem_id="video-frame")
                track_btn = gr.Button("▶ Track", variant="primary", scale=0, min_width=110,
                                      elem_id="video-track")
                stop_btn = gr.Button("■ Stop", variant="stop", scale=0, min_width=90,
                                     elem_id="video-stop")
            timeline = Timeline({"frames": 0, "current": 0, "rows": []},
                                elem_id="video-timeline")
            with gr.Row(equal_height=False, elem_id="video-track-row"):
                frame_text = gr.Markdown("No clip yet.", elem_id="video-frame-label")
                how = gr.Radio([TRACK_ALL, TRACK_FROM_HERE], value=TRACK_ALL, label="Track",
                               scale=2, elem_id="video-track-mode", container=False)
            status = gr.Markdown(elem_id="video-status")
            info = gr.Markdown("No clip yet.", elem_id="video-info")
            timer = gr.Timer(0.25, active=False)
            compare = build_compare_panel(ctx, model_ids, default)
            exports = build_exports_panel()

    view = [state, canvas, slider, frame_text, info, objects, timeline, status]
    selection = [stride, start_s, end_s, max_frames]
    clicks = {"show_progress": "hidden", "concurrency_id": "video-click",
              "concurrency_limit": 2, "api_visibility": "private"}
    looks = {"show_progress": "hidden", "concurrency_id": "video-view",
             "concurrency_limit": 4, "api_visibility": "private"}
    opens = {"show_progress": "full", "concurrency_id": "video-open",
             "concurrency_limit": 2, "api_visibility": "private"}

    upload.upload(h.upload, [state, upload] + selection, view, **opens).then(
        lambda: None, None, upload, api_visibility="private")
    example_btn.click(h.open_example, [state] + selection, view, **opens)
    apply_btn.click(h.reselect, [state] + selection, view, **opens)
    slider.input(h.scrub, [state, slider], view, trigger_mode="always_last", **looks)
    play.click(h.play, [state], timer, api_visibility="private", show_progress="hidden")
    pause.click(h.pause, [state], timer, api_visibility="private", show_progress="hidden")
    timeline.seek(h.seek, [state], view, trigger_mode="always_last", **looks)
    timer.tick(h.tick, [state], [canvas, slider, frame_text, timer, timeline],
               trigger_mode="always_last", **looks)
    canvas.point(h.point, [state, mode], view, trigger_mode="multiple", **clicks)
    canvas.box(h.box, [state], view, trigger_mode="multiple", **clicks)
    objects.pick_object(h.pick_object, [state], view, **clicks)
    objects.remove_object(h.remove_object, [state], view, **clicks)
    new_btn.click(h.new_object, [state, name], view, **clicks).then(
        lambda: "", None, name, api_visibility="private")
    rename_btn.click(h.rename, [state, name], view, **clicks)
    name.submit(h.rename, [state, name], view, **clicks)
    undo.click(h.undo, [state], view, **clicks)
    clear.click(h.clear, [state], view, **clicks)
    model.input(h.change_model, [state, model], view, **opens)
    # api_name: the page's own name, so the public name "track" stays free for ui.video.api
    tracking = track_btn.click(h.track, [state, how], view, concurrency_limit=None,
                               api_name="video_page_track", api_visibility="private",
                               show_progress="full")
    words = WordsHandlers(h)
    finding = gr.on([words_btn.click, words_text.submit], words.find,
                    [state, words_text, words_detector, words_threshold, words_every], view,
                    concurrency_limit=None, api_visibility="private", show_progress="full")
    comparing = compare.wire(h, state)
    stops = {"cancels": [tracking, comparing, finding], "concurrency_id": "video-stop",
             "concurrency_limit": None, "api_visibility": "private", "show_progress": "hidden"}
    stopping = stop_btn.click(h.stop, [state], view, **stops)
    compare.stop.click(h.stop_compare, [state], compare.outputs(state), **stops)
    # the downloads are written when a run ends (no "Prepare downloads" click)
    exports.wire(h, state, after=[tracking, finding, stopping])
    demo.unload(unload_handler(ctx.sessions, SESSION_SUFFIX))
    return h
