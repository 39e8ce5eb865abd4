"""The compare view: the same clicks and boxes replayed on 2-6 models, answers side by side.

Layout and event wiring only; the handlers live in ``ui.compare.handlers``, the per-user state
and its transitions in ``workbench.compare.state``, the values shown in
``workbench.compare.values``.

The prompt input is the segment view's own ``PromptCanvas`` (click = point, drag = box,
right-/shift-click = background) and object list, so both views behave alike. Uploads and model
changes (which encode, possibly for a minute with ViT-H on a CPU) run in the shared "encode"
concurrency group with per-model progress; clicks run in the "decode" group. Handlers that run
models stream: each card fills in as its model answers.

Only models whose weights are here are ticked at first; absent ones are marked in the picker
and can be downloaded right under it (``ui.widgets.models_panel``). The switch above the canvas
picks whose masks the canvas shows; the toolbar and object buttons are the Segment view's.
"""

from __future__ import annotations

import gradio as gr

from ui.compare.components import AgreementView, CompareCards
from ui.compare.handlers import (
    BACKGROUND,
    FOREGROUND,
    SESSION_SUFFIX,
    CompareHandlers,
    default_models,
    download_updates,
    estimates_markdown,
    model_choices,
)
from ui.proposals.compare_panel import build_compare_proposals
from ui.sessions import unload_handler
from ui.widgets import models_panel
from ui.widgets.canvas import ObjectList, PromptCanvas
from ui.widgets.examples_gallery import examples_gallery
from workbench.compare.values import TABLE_HEADERS
from workbench.context import AppContext
from workbench.examples import list_examples

CSS = """
#compare-models .wrap { gap: 4px 6px; }
#compare-models label { padding: 3px 8px; font-size: .85em; min-height: 0; }
#compare-models label span { line-height: 1.25; }
#compare-estimates { font-size: .85em; }
#compare-estimates p, #compare-estimates ul { margin: 2px 0; }
#compare-estimates li { margin: 0; }
#compare-status { min-height: 1.4em; }
#compare-status p { margin: 0; font-size: .9em; }
#compare-table th, #compare-table th * { white-space: normal; word-break: keep-all;
  overflow-wrap: normal; hyphens: none; }
"""

INTRO = """
**Which model should I use?** Pick 2 to 6 models, upload an image, then click the object or
drag a box: every model answers the same prompts. Compare their cut-outs, scores and timings,
see where they disagree, and optionally upload a ground-truth mask to score them.
"""


def build_compare_tab(ctx: AppContext, demo: gr.Blocks,
                      segment_state: gr.State | None = None) -> None:
    """Lay out the compare view inside the current Blocks context and wire its events.
    ``segment_state``: the Segment view's state, whose image "Use the Segment tab's image"
    brings over (a project image included)."""
    examples = list_examples(ctx.config.examples_dir)
    h = CompareHandlers(ctx, examples)
    chosen = default_models(ctx)
    state = gr.State(None, delete_callback=ctx.sessions.release_value)
    gr.Markdown(INTRO, elem_id="compare-intro")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=290):
            # The image comes first: with nine models, a picker above it pushed the upload
            # ~1,065 px down, off a laptop's screen. The picker is compact chips below it.
            gr.Markdown("#### 1 · Image")
            upload = gr.File(label="Upload an image", file_types=["image"], type="filepath",
                             height=120, elem_id="compare-upload")
            from_segment = None
            if segment_state is not None:
                from_segment = gr.Button("Use the Segment tab's image", size="sm",
                                         elem_id="compare-from-segment")
            gallery = None
            if examples:
                gallery = examples_gallery(examples, label="…or pick an example",
                                           columns=3, rows=1, height=110,
                                           allow_preview=False, object_fit="cover",
                                           elem_id="compare-examples")
            gr.Markdown("#### 2 · Models (2 to 6)")
            models = gr.CheckboxGroup(model_choices(ctx), value=chosen, label="Compare",
                                      show_label=False, elem_id="compare-models")
            missing = models_panel.missing_choices(ctx)
            fetch_choice = gr.Dropdown(missing, value=missing[0][1] if missing else None,
                                       label="Not downloaded yet", visible=bool(missing),
                                       elem_id="compare-download-choice")
            fetch_btn = gr.Button("Download model", size="sm", visible=bool(missing),
                                  elem_id="compare-download-model")
            estimates = gr.Markdown(estimates_markdown(ctx, chosen), elem_id="compare-estimates")
            gr.Markdown("#### 3 · Objects")
            objects = ObjectList({"items": []}, elem_id="compare-objects")
            new_btn = gr.Button("+ New object", size="sm", elem_id="compare-new-object")
            with gr.Accordion("Ground truth (optional)", open=False):
                gr.Markdown("Upload the true mask of this image (PNG, non-zero = object) to "
                            "score each model: IoU and boundary F-score.")
                truth = gr.File(label="Ground-truth mask", file_types=["image"],
                                type="filepath", height=100, elem_id="compare-truth")
                truth_clear = gr.Button("Remove ground truth", size="sm")
        with gr.Column(scale=3):
            with gr.Row(equal_height=False, elem_id="compare-toolbar"):
                mode = gr.Radio([FOREGROUND, BACKGROUND], value=FOREGROUND,
                                label="A left click adds", elem_id="compare-click-mode",
                                scale=3, container=False)
                undo = gr.Button("↶ Undo", interactive=False, size="sm", elem_id="compare-undo",
                                 scale=0, min_width=80)
                redo = gr.Button("↷ Redo", interactive=False, size="sm", elem_id="compare-redo",
                                 scale=0, min_width=80)
                clear = gr.Button("Clear prompts", interactive=False, size="sm",
                                  elem_id="compare-clear", scale=0, min_width=110)
            on_canvas = gr.Radio([(ctx.spec(m).display_name, m) for m in chosen],
                                 value=chosen[0] if chosen else None,
                                 label="The canvas shows the masks of",
                                 elem_id="compare-canvas-model")
            canvas = PromptCanvas({"hint": "Upload an image or pick an example on the left."},
                                  elem_id="compare-canvas")
            status = gr.Markdown(elem_id="compare-status")
            gr.Markdown("#### Each model's answer")
            cards = CompareCards({"items": [], "hint": "Results appear here."},
                                 elem_id="compare-cards")
            gr.Markdown("#### Agreement")
            agreement = AgreementView({"ready": False, "hint": "The agreement matrix appears "
                                       "when at least two models have a mask."},
                                      elem_id="compare-agreement")
            # only the names' column is set: at 1366 px a 9% column left a header one letter
            # wide; the figures' columns wrap headers between words, never inside one
            table = gr.Dataframe(headers=list(TABLE_HEADERS), value=[], interactive=False,
                                 wrap=True, label="Comparison table", elem_id="compare-table",
                                 column_widths=["22%"])
            with gr.Accordion("Downloads", open=True, elem_id="compare-downloads-box"):
                with gr.Row():
                    export_btn = gr.Button("Prepare downloads", size="sm", variant="primary",
                                           elem_id="compare-export", scale=0, min_width=160)
                    zip_dl = gr.DownloadButton("⬇ All cut-outs and masks (ZIP)", size="sm",
                                               interactive=False, scale=0, min_width=220,
                                               elem_id="compare-download-zip")
                    csv_dl = gr.DownloadButton("⬇ Comparison table (CSV)", size="sm",
                                               interactive=False, scale=0, min_width=200,
                                               elem_id="compare-download-csv")
            with gr.Accordion("Many objects: the same text or Everything on each model",
                              open=False, elem_id="compare-proposals-box"):
                build_compare_proposals(ctx, demo, state, models)

    view = [state, canvas, objects, cards, agreement, table, status, undo, redo, clear,
            estimates, zip_dl, csv_dl, on_canvas]
    quiet = {"show_progress": "hidden", "concurrency_id": "decode",
             "api_visibility": "private"}
    # The progress (per model, with its expected time) shows on the canvas only: over every
    # output it covered the status line and greyed out the toolbar and the picker.
    heavy = {"concurrency_id": "encode", "api_visibility": "private",
             "show_progress_on": [canvas]}

    upload.upload(h.upload, [state, upload, models], view, show_progress="full", **heavy)
    if from_segment is not None:
        from_segment.click(h.from_segment, [state, segment_state, models], view,
                           show_progress="full", **heavy)
    if gallery is not None:
        gallery.select(h.example, [state, models], view, show_progress="full", **heavy)
    models.input(h.change_models, [state, models], view, show_progress="full", **heavy)
    canvas.point(h.point, [state, mode], view, trigger_mode="multiple", **quiet)
    canvas.box(h.box, [state], view, trigger_mode="multiple", **quiet)
    objects.pick_object(h.pick_object, [state], view, **quiet)
    objects.remove_object(h.remove_object, [state], view, **quiet)
    new_btn.click(h.new_object, [state], view, **quiet)
    undo.click(h.undo, [state], view, **quiet)
    redo.click(h.redo, [state], view, **quiet)
    clear.click(h.clear, [state], view, **quiet)
    truth.upload(h.ground_truth, [state, truth], view, **quiet)
    truth_clear.click(h.clear_ground_truth, [state], view, **quiet)
    on_canvas.input(h.show_on_canvas, [state, on_canvas], view, **quiet)
    export_btn.click(h.export, [state], [zip_dl, csv_dl], concurrency_id="decode",
                     api_visibility="private")
    # Downloads have their own lane (as in the Segment view); then the new model is compared.
    fetch_btn.click(h.download, [models, fetch_choice], [models, estimates, fetch_choice,
                                                         fetch_btn],
                    show_progress="full", show_progress_on=[estimates],
                    concurrency_id="download", api_visibility="private").success(
        h.change_models, [state, models], view, show_progress="full", **heavy)

    def refresh() -> tuple:
        # measurements made since the page was built (any tab, any user) improve the estimates;
        # another session may have downloaded a model meanwhile
        return (gr.update(choices=model_choices(ctx)), estimates_markdown(ctx, chosen)
                ) + download_updates(ctx)

    demo.load(refresh, None, [models, estimates, fetch_choice, fetch_btn],
              show_progress="hidden", api_visibility="private")
    demo.unload(unload_handler(ctx.sessions, SESSION_SUFFIX))
