"""The segment view: layout and event wiring (handlers live in ``ui.segment.handlers``).

Clicks, boxes and hover previews do not use Gradio's queue: the live canvas sends them to
``server.live_route`` (serialised per model there) and then fires ``synced``, which
refreshes the side panels in the "decode" group. Uploads and model switches run in the "encode"
group; an upload shows the image first and encodes in a second event, with one progress
indicator on the canvas (every output's own progress display is hidden).
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ui.proposals.panel import build_proposals_panel
from ui.segment.downloads_panel import DownloadsPanel
from ui.segment.handlers import BACKGROUND, FOREGROUND, SegmentHandlers
from ui.segment.project_bar import (
    KEYS_JS,
    ProjectBarHandlers,
    ProjectBarParts,
    build_project_bar,
)
from ui.widgets import models_panel
from ui.widgets.canvas import CandidateStrip, PromptCanvas
from ui.widgets.examples_gallery import examples_gallery
from ui.widgets.object_list import SegmentObjectList
from workbench.context import AppContext
from workbench.examples import EXAMPLE_SUFFIXES, list_examples  # noqa: F401 - re-exported

CSS = """
#examples .grid-container { grid-template-columns: repeat(3, minmax(0, 1fr)) !important; }
#status { min-height: 1.4em; }
#status p { margin: 0; font-size: .9em; }
#toolbar { align-items: center; }
#toolbar .wrap { gap: 4px 12px; }
"""


@dataclass(frozen=True)
class SegmentTab:
    """Components other parts of the app may need (tests use the ids through the page)."""

    state: gr.State
    model: gr.Dropdown
    canvas: PromptCanvas
    view: list  # the outputs every segment handler returns (``handlers.VIEW_SIZE``)
    bar: ProjectBarParts
    handlers: SegmentHandlers
    project: ProjectBarHandlers
    project_key: gr.BrowserState  # the secret of this browser's visitor project ("": none)


def build_segment_tab(ctx: AppContext, demo: gr.Blocks) -> SegmentTab:
    """Lay out the segment view inside the current Blocks context and wire its events."""
    examples = list_examples(ctx.config.examples_dir)
    h = SegmentHandlers(ctx, examples)
    default = ctx.default_model()
    state = gr.State(None, delete_callback=ctx.sessions.release_value)
    project_key = gr.BrowserState("", storage_key="samwb-project-key")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=290):
            gr.Markdown("#### 1 · Image")
            upload = gr.File(label="Upload, or pick an example",
                             file_types=["image"], type="filepath", height=120,
                             elem_id="image-upload")
            gallery = None
            if examples:  # no line of its own: the object list's top stays on a laptop screen
                gallery = examples_gallery(examples, label="Examples", show_label=False,
                                           columns=3, rows=1, height=110,
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
            objects = SegmentObjectList({"items": []}, elem_id="object-list")
            new_btn = gr.Button("+ New object (N)", size="sm", elem_id="new-object")
        with gr.Column(scale=3):
            bar = build_project_bar()
            with gr.Row(equal_height=False, elem_id="toolbar"):
                gr.Radio([FOREGROUND, BACKGROUND], value=FOREGROUND,
                                label="A left click adds (B toggles)", elem_id="click-mode",
                                scale=3, container=False, interactive=True)
                undo = gr.Button("↶ Undo", interactive=False, size="sm", elem_id="undo",
                                 scale=0, min_width=80)
                redo = gr.Button("↷ Redo", interactive=False, size="sm", elem_id="redo",
                                 scale=0, min_width=80)
                clear = gr.Button("Clear prompts", interactive=False, size="sm",
                                  elem_id="clear", scale=0, min_width=110)
            # pcl-local-upload: a chosen file shows at once, from the browser's own copy
            canvas = PromptCanvas({"hint": "Upload an image or pick an example on the left."},
                                  elem_id="canvas", elem_classes=["pcl-local-upload"])
            status = gr.Markdown(elem_id="status")
            # side by side, so the downloads are on a 1366 x 768 screen with the canvas
            with gr.Row(equal_height=False, elem_id="below-canvas"):
                with gr.Column(scale=2, min_width=420):
                    candidates = CandidateStrip({"items": []}, elem_id="candidates")
                with gr.Column(scale=1, min_width=280), gr.Accordion(
                        "Downloads", open=True, elem_id="downloads-box"):
                    downloads = DownloadsPanel({"items": []}, elem_id="downloads")
            with gr.Accordion("Find many objects at once: Everything, or type what to find",
                              open=False, elem_id="proposals-box"):
                proposals = build_proposals_panel(ctx, demo, state, canvas)

    view = [state, canvas, objects, candidates, status, undo, redo, clear, downloads]
    panels = view[2:]
    panel = [model, model_status, download_btn]
    quiet = {"show_progress": "hidden", "concurrency_id": "decode",
             "api_visibility": "private"}
    # One progress indicator (on the canvas, from its value's "busy" text), none per output.
    heavy = {"concurrency_id": "encode", "api_visibility": "private", "show_progress": "hidden"}

    opened = upload.upload(h.upload, [state, upload, model], view, **heavy)
    opened.then(lambda: None, None, upload, api_visibility="private")  # ready for the next file
    opened.then(h.encode, [state], view, **heavy)
    if gallery is not None:
        gallery.select(h.example, [state, model], view, **heavy).then(
            h.encode, [state], view, **heavy)
    project = ProjectBarHandlers(h)
    # After a live click: the side panels, and the image's status (a first object moves it
    # from "new" to "in review") in the same event.
    canvas.synced(project.sync, [state], panels + [bar.status], trigger_mode="always_last",
                  **quiet)
    candidates.choose(h.choose, [state], view, **quiet)
    candidates.show_all(h.show_candidates, [state], view, **quiet)
    objects.pick_object(h.pick_object, [state], view, **quiet)
    objects.remove_object(h.remove_object, [state], view, **quiet)
    objects.rename_object(h.rename_object, [state], view, **quiet)
    objects.bulk_action(h.bulk_action, [state], view, **quiet)
    new_btn.click(h.new_object, [state], view, **quiet)
    undo.click(h.undo, [state], view, **quiet)
    redo.click(h.redo, [state], view, **quiet)
    clear.click(h.clear, [state], view, **quiet)
    # Kept proposals are ordinary objects now: redraw the canvas and the panels.
    proposals.changed.then(h.refresh, [state], view, **quiet)
    model.select(h.change_model, [state, model], view + panel, **heavy).then(
        h.after_switch, [state], view, **heavy)
    # Downloads have their own lane: a multi-GB fetch must not hold up encodes or clicks.
    download_btn.click(h.download_model, [state, model], view + panel, show_progress="full",
                       concurrency_id="download", api_visibility="private").then(
        h.after_switch, [state], view, **heavy)

    def refresh_models() -> tuple:
        # Another session (or the start-up prefetch) may have downloaded a model meanwhile.
        return models_panel.panel_updates(ctx, ctx.default_model())

    demo.load(refresh_models, None, panel, api_visibility="private")
    wire_project_bar(demo, project, state, project_key, view, bar, heavy, quiet)
    return SegmentTab(state=state, model=model, canvas=canvas, view=view, bar=bar,
                      handlers=h, project=project, project_key=project_key)


def wire_project_bar(demo: gr.Blocks, p: ProjectBarHandlers, state: gr.State,
                     project_key: gr.BrowserState, view: list, bar: ProjectBarParts,
                     heavy: dict, quiet: dict) -> None:
    """The project bar's events: moving to another image is two events like an upload."""
    h = p.segment
    both = view + bar.outputs
    for button, handler in ((bar.prev, p.previous), (bar.next, p.next),
                            (bar.unfinished, p.unfinished), (bar.done, p.done)):
        button.click(handler, [state], both, **heavy).then(h.encode, [state], view, **heavy)
    bar.status.select(p.set_status, [state, bar.status], both, **quiet)
    bar.klass.select(p.pick_class, [state, bar.klass], both, **quiet)
    demo.load(p.restore, [state, project_key], both, **heavy).then(
        h.encode, [state], view, **heavy)
    demo.load(None, None, None, js=KEYS_JS)
