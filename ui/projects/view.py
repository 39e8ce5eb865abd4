"""The Projects view: open or make a project, browse its images (paged thumbnails, filters by
status and class), edit its classes, import labels, export or download it.

Picking a thumbnail opens that image on the Segment tab (with its stored objects), where the
project bar takes over (``ui.segment.project_bar``). Handlers are in ``ui.projects.handlers``.
"""

from __future__ import annotations

import gradio as gr

from ui.projects.autolabel import AutoLabelHandlers, build_autolabel_panel
from ui.projects.handlers import ProjectsHandlers
from ui.segment.view import SegmentTab
from workbench.context import AppContext
from workbench.projects.model import default_color
from workbench.projects.values import ALL, status_choices, status_legend

CSS = """
#pj-gallery .thumbnail-item { min-height: 0; }
/* the gallery's label and its buttons float over its top edge: the first row starts below */
#pj-gallery .grid-wrap { padding-top: 42px; }
.pj-classes { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: .92em; }
.pj-class { display: inline-flex; align-items: center; gap: 6px; }
.pj-swatch { width: 12px; height: 12px; border-radius: 3px; display: inline-block; }
#pj-pager { align-items: center; }
"""
FORMAT_CHOICES = [("COCO (RLE)", "coco"), ("YOLO segmentation", "yolo"), ("LabelMe", "labelme"),
                  ("Pascal VOC PNGs", "voc"), ("Cut-outs (ZIP of PNGs)", "cutouts")]
IMPORT_CHOICES = [("COCO JSON", "coco"), ("YOLO labels (ZIP with data.yaml)", "yolo"),
                  ("LabelMe JSON (one or a ZIP)", "labelme")]


def build_projects_tab(ctx: AppContext, demo: gr.Blocks, segment: SegmentTab,
                       tabs: gr.Tabs) -> None:
    """Lay out the Projects view and wire it to the Segment view's state and outputs."""
    h = ProjectsHandlers(ctx, segment)
    projects = ctx.services.projects
    page = gr.State(0)
    ids = gr.State(())
    state = segment.state
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            gr.Markdown("#### Project")
            summary = gr.Markdown(h.intro(), elem_id="pj-summary")
            if projects.projects_root is not None:
                folder = gr.Dropdown(projects.folders(), label="Open a project folder",
                                     elem_id="pj-folder")
                open_btn = gr.Button("Open", size="sm", elem_id="pj-open")
            if projects.shared is None:
                uploads = gr.File(label="…or make a project from images", file_count="multiple",
                                  file_types=["image"], type="filepath", height=110,
                                  elem_id="pj-uploads")
                create_btn = gr.Button("Make a project of these images", size="sm",
                                       elem_id="pj-create")
            download_btn = gr.Button("Download the whole project (ZIP)", size="sm",
                                     elem_id="pj-download")
            gr.Markdown("#### Classes")
            classes = gr.HTML(elem_id="pj-classes")
            with gr.Row():
                class_name = gr.Textbox(label="Class name", scale=3, elem_id="pj-class-name",
                                        max_length=60)
                # a colour at once (a new project's second class's), then the project's own
                class_color = gr.ColorPicker(default_color(1), label="Colour", scale=1,
                                             elem_id="pj-class-color")
            class_pick = gr.Dropdown([], label="Class to rename, recolour or remove",
                                     elem_id="pj-class-pick")
            with gr.Row():
                add_btn = gr.Button("Add", size="sm", elem_id="pj-class-add")
                save_btn = gr.Button("Rename / recolour", size="sm", elem_id="pj-class-save")
                remove_btn = gr.Button("Remove", size="sm", variant="stop",
                                       elem_id="pj-class-remove")
            with gr.Accordion("Export and import", open=False, elem_id="pj-transfer"):
                fmt = gr.Radio(FORMAT_CHOICES, value="coco", label="Export format",
                               elem_id="pj-format")
                polygons = gr.Checkbox(False, label="COCO: polygons instead of RLE",
                                       elem_id="pj-polygons")
                export_btn = gr.Button("Export", size="sm", elem_id="pj-export")
                import_fmt = gr.Radio(IMPORT_CHOICES, value="coco", label="Import format",
                                      elem_id="pj-import-format")
                import_file = gr.File(label="Labels to import", type="filepath", height=90,
                                      file_types=[".json", ".zip", ".txt", ".yaml"],
                                      elem_id="pj-import-file")
                import_btn = gr.Button("Import as objects to review", size="sm",
                                       elem_id="pj-import")
            with gr.Accordion("Auto-label the project", open=False, elem_id="pj-autolabel"):
                auto = build_autolabel_panel(ctx)
            result = gr.File(label="Download", interactive=False, elem_id="pj-result",
                             visible=False)
        with gr.Column(scale=3):
            with gr.Row(elem_id="pj-filters"):
                status = gr.Dropdown([("All", ALL)] + status_choices(), value=ALL,
                                     label="Status", elem_id="pj-status", scale=1)
                klass = gr.Dropdown([("All", ALL)], value=ALL, label="Class",
                                    elem_id="pj-class-filter", scale=1)
                unfinished = gr.Button("Open the next unfinished image", size="sm",
                                       elem_id="pj-next-unfinished", scale=1)
            gallery = gr.Gallery(label="Images (click one to annotate it) · " + status_legend(),
                                 columns=6, height=560, allow_preview=False,
                                 object_fit="cover", elem_id="pj-gallery", show_label=True)
            with gr.Row(elem_id="pj-pager"):
                prev_page = gr.Button("◀ Page", size="sm", scale=0, min_width=90,
                                      elem_id="pj-prev-page")
                page_info = gr.Markdown(elem_id="pj-page-info")
                next_page = gr.Button("Page ▶", size="sm", scale=0, min_width=90,
                                      elem_id="pj-next-page")

    listing = [gallery, ids, page, page_info, summary, classes, klass, class_pick]
    quiet = {"show_progress": "hidden", "api_visibility": "private"}
    heavy = {"concurrency_id": "encode", "api_visibility": "private", "show_progress": "hidden"}
    view = segment.view + segment.bar.outputs
    seg = segment.handlers

    key = segment.project_key

    def refresh_list(page_delta: int):
        def run(session, at: int, status_value: str, class_value: str, secret: str,
                request: gr.Request):
            return h.listing(session, (at or 0) + page_delta, status_value, class_value,
                             secret, request)
        return run

    status.change(refresh_list(0), [state, page, status, klass, key], listing, **quiet)
    klass.change(refresh_list(0), [state, page, status, klass, key], listing, **quiet)
    prev_page.click(refresh_list(-1), [state, page, status, klass, key], listing, **quiet)
    next_page.click(refresh_list(+1), [state, page, status, klass, key], listing, **quiet)
    demo.load(refresh_list(0), [state, page, status, klass, key], listing, **quiet)

    def to_segment():
        return gr.Tabs(selected="segment")

    gallery.select(h.open_picked, [state, ids], view, **heavy).then(
        to_segment, None, tabs, **quiet).then(seg.encode, [state], segment.view, **heavy)
    unfinished.click(h.open_unfinished, [state], view, **heavy).then(
        to_segment, None, tabs, **quiet).then(seg.encode, [state], segment.view, **heavy)
    class_inputs = [state, class_name, class_color, class_pick, page, status, klass]
    class_form = [class_name, class_color]
    for button, handler in ((add_btn, h.add_class), (save_btn, h.save_class),
                            (remove_btn, h.remove_class)):
        button.click(handler, class_inputs, listing + class_form, **quiet).then(
            segment.project.refresh, [state], view, **quiet)
    class_pick.input(h.class_form, [state, class_pick, key], class_form, **quiet)

    def blank_class_form(session, secret: str):  # a project opened: nothing of it picked
        return h.class_form(session, None, secret)

    demo.load(blank_class_form, [state, key], class_form, **quiet)
    a = AutoLabelHandlers(ctx, h.store_of)
    auto.start.click(a.start, [state, key, auto.model, auto.mode, auto.phrases,
                               auto.threshold], [auto.progress, auto.timer], **quiet)
    auto.cancel.click(a.cancel, [state, key], auto.progress, **quiet)
    polled = auto.timer.tick(a.poll, [state, key], [auto.progress, auto.timer], **quiet)
    polled.then(refresh_list(0), [state, page, status, klass, key], listing, **quiet)
    demo.load(a.poll, [state, key], [auto.progress, auto.timer], **quiet)  # a run in progress
    download_btn.click(h.download, [state], result, **quiet)
    export_btn.click(h.export, [state, fmt, polygons], result, **quiet)
    import_btn.click(h.import_labels, [state, import_fmt, import_file, page, status, klass],
                     listing, **quiet)
    if projects.projects_root is not None:
        opened = open_btn.click(h.open_folder, [state, folder], view, **heavy)
        opened.then(refresh_list(0), [state, page, status, klass, key], listing, **quiet).then(
            seg.encode, [state], segment.view, **heavy)
        opened.then(blank_class_form, [state, key], class_form, **quiet)
    if projects.shared is None:
        created = create_btn.click(h.create, [state, uploads], view + [key], **heavy)
        created.then(lambda: None, None, uploads, api_visibility="private")  # the next batch
        created.then(blank_class_form, [state, key], class_form, **quiet)
        created.then(
            refresh_list(0), [state, page, status, klass, key], listing, **quiet).then(
            seg.encode, [state], segment.view, **heavy)
