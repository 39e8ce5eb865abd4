"""The segment view: layout and event wiring (handlers live in ``ui.segment.handlers``).

Concurrency: clicks run in the "decode" group and uploads/model switches in the "encode"
group, one at a time each, so a long encode never blocks other users' clicks and each
session's clicks are processed in order (they queue; none is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from ui.context import AppContext
from ui.segment.handlers import BACKGROUND, FOREGROUND, SegmentHandlers
from ui.session import Session
from ui.widgets import models_panel
from ui.widgets.canvas import CandidateStrip, ObjectList, PromptCanvas

EXAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
CSS = """
#examples .grid-container { grid-template-columns: repeat(3, minmax(0, 1fr)) !important; }
#segment-intro p { margin: 0; }
#status { min-height: 1.6em; }
"""
INTRO = """
**Click an object to cut it out.** Each extra click refines it: a foreground click adds what
is missing, a background click (right-click, shift-click, or the toggle) removes what should
not be there. Drag a box around an object for a clean first mask. Use **New object** to cut out
several things; everything can be downloaded as transparent PNGs, masks and COCO JSON.
"""


@dataclass(frozen=True)
class SegmentTab:
    """Components other parts of the app may need (tests use the ids through the page)."""

    state: gr.State
    model: gr.Dropdown
    canvas: PromptCanvas


def list_examples(folder: Path | None) -> list[Path]:
    if folder is None or not Path(folder).is_dir():
        return []
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in EXAMPLE_SUFFIXES)


def _release(ctx: AppContext):
    def release(session: Session | None) -> None:
        if session is not None and not ctx.sessions.release(session.session_id):
            session.release()

    return release


def release_on_unload(ctx: AppContext):
    """A ``demo.unload`` handler: free the closing tab's session data at once."""

    def release_session(request: gr.Request) -> None:
        ctx.sessions.release(request.session_hash)

    return release_session


def build_segment_tab(ctx: AppContext, demo: gr.Blocks) -> SegmentTab:
    """Lay out the segment view inside the current Blocks context and wire its events."""
    examples = list_examples(ctx.config.examples_dir)
    h = SegmentHandlers(ctx, examples)
    default = ctx.default_model()
    state = gr.State(None, delete_callback=_release(ctx))
    gr.Markdown(INTRO, elem_id="segment-intro")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=290):
            gr.Markdown("#### 1 · Image")
            upload = gr.File(label="Upload an image", file_types=["image"], type="filepath",
                             height=120, elem_id="image-upload")
            gallery = None
            if examples:
                gr.Markdown("…or pick an example:")
                gallery = gr.Gallery([str(p) for p in examples], label="Examples",
                                     show_label=False, columns=3, rows=1, height=110,
                                     allow_preview=False,
                                     object_fit="cover", elem_id="examples")
            gr.Markdown("#### 2 · Model")
            model = gr.Dropdown(models_panel.choices(ctx), value=default, label="Model",
                                elem_id="model-select")
            model_status = gr.Markdown(models_panel.status_markdown(ctx, default),
                                       elem_id="model-status")
            download_btn = gr.Button("Download model", size="sm", elem_id="download-model",
                                     visible=models_panel.needs_download(ctx, default))
            gr.Markdown("#### 3 · Objects")
            objects = ObjectList({"items": []}, elem_id="object-list")
            new_btn = gr.Button("+ New object", size="sm", elem_id="new-object")
        with gr.Column(scale=3):
            with gr.Row(equal_height=False, elem_id="toolbar"):
                mode = gr.Radio([FOREGROUND, BACKGROUND], value=FOREGROUND,
                                label="A left click adds", elem_id="click-mode", scale=3)
                undo = gr.Button("↶ Undo", interactive=False, size="sm", elem_id="undo",
                                 scale=0, min_width=80)
                redo = gr.Button("↷ Redo", interactive=False, size="sm", elem_id="redo",
                                 scale=0, min_width=80)
                clear = gr.Button("Clear prompts", interactive=False, size="sm",
                                  elem_id="clear", scale=0, min_width=110)
            canvas = PromptCanvas({"hint": "Upload an image or pick an example on the left."},
                                  elem_id="canvas")
            status = gr.Markdown(elem_id="status")
            candidates = CandidateStrip({"items": []}, elem_id="candidates")
            with gr.Accordion("Downloads", open=True):
                gr.Markdown("Cut-outs are PNGs, transparent outside the mask; masks are "
                            "black/white PNGs; COCO JSON holds every object as RLE. Files are "
                            "named after your image.")
                with gr.Row():
                    export_btn = gr.Button("Prepare downloads", variant="primary",
                                           elem_id="export")
                    cutout_dl = gr.DownloadButton("↓ Cut-out (all objects)", interactive=False,
                                                  elem_id="download-cutout")
                    coco_dl = gr.DownloadButton("↓ COCO JSON", interactive=False,
                                                elem_id="download-coco")
                files = gr.File(label="All files: per-object cut-outs and masks",
                                file_count="multiple", interactive=False, visible=False,
                                elem_id="export-files")

    view = [state, canvas, objects, candidates, status, undo, redo, clear, cutout_dl, coco_dl,
            files]
    panel = [model, model_status, download_btn]
    quiet = {"show_progress": "hidden", "concurrency_id": "decode",
             "api_visibility": "private"}
    heavy = {"concurrency_id": "encode", "api_visibility": "private"}

    upload.upload(h.upload, [state, upload, model], view, show_progress="full", **heavy).then(
        lambda: None, None, upload, api_visibility="private")  # ready for the next file
    if gallery is not None:
        gallery.select(h.example, [state, model], view, show_progress="full", **heavy)
    canvas.point(h.point, [state, mode], view, trigger_mode="multiple", **quiet)
    canvas.box(h.box, [state], view, trigger_mode="multiple", **quiet)
    candidates.choose(h.choose, [state], view, **quiet)
    objects.pick_object(h.pick_object, [state], view, **quiet)
    objects.remove_object(h.remove_object, [state], view, **quiet)
    new_btn.click(h.new_object, [state], view, **quiet)
    undo.click(h.undo, [state], view, **quiet)
    redo.click(h.redo, [state], view, **quiet)
    clear.click(h.clear, [state], view, **quiet)
    model.select(h.change_model, [state, model], view + panel, show_progress="full", **heavy)
    # Downloads have their own lane: a multi-GB fetch must not hold up encodes or clicks.
    download_btn.click(h.download_model, [state, model], view + panel, show_progress="full",
                       concurrency_id="download", api_visibility="private")
    export_btn.click(h.export, [state], [cutout_dl, coco_dl, files], concurrency_id="decode",
                     api_visibility="private")

    def refresh_models() -> tuple:
        # Another session (or the start-up prefetch) may have downloaded a model meanwhile.
        return models_panel.panel_updates(ctx, ctx.default_model())

    demo.load(refresh_models, None, panel, api_visibility="private")
    return SegmentTab(state=state, model=model, canvas=canvas)
