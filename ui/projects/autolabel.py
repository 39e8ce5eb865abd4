"""The Projects view's auto-labelling panel: the same run as ``samwb label``, from the page,
with progress, time left and Cancel (``workbench.labeling.page_runs``).

A timer polls the run once a second while it runs (a plain read of its counters); the image
list is refreshed when it ends, so the new "auto-labelled" images show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ui.feedback import guard
from workbench.errors import UserError
from workbench.labeling.page_runs import progress_text
from workbench.labeling.spec import LabelRun, LabelRunError
from workbench.projects.model import ProjectError

MODES = [("Text: the phrases below (one class each)", "text"),
         ("Everything (class: the current one)", "everything")]


@dataclass(frozen=True)
class AutoLabelParts:
    model: gr.Dropdown
    mode: gr.Radio
    phrases: gr.Textbox
    threshold: gr.Slider
    start: gr.Button
    cancel: gr.Button
    progress: gr.Markdown
    timer: gr.Timer


def build_autolabel_panel(ctx: Any) -> AutoLabelParts:
    """Lay the panel out (inside an accordion of the Projects view)."""
    choices = [(ctx.spec(m).display_name, m) for m in ctx.model_ids if m != "grabcut"]
    default = ctx.default_model() if ctx.default_model() != "grabcut" else (
        choices[0][1] if choices else None)
    model = gr.Dropdown(choices, value=default, label="Model", elem_id="al-model")
    mode = gr.Radio(MODES, value="text", label="Find", elem_id="al-mode")
    phrases = gr.Textbox(label="Phrases", placeholder="car, person", max_length=500,
                         elem_id="al-phrases")
    threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="Least score kept",
                          elem_id="al-threshold")
    with gr.Row():
        start = gr.Button("Auto-label the project", size="sm", variant="primary",
                          elem_id="al-start")
        cancel = gr.Button("Cancel", size="sm", elem_id="al-cancel")
    progress = gr.Markdown("Proposals go in as auto-labelled objects to review; your own "
                           "objects are never changed.", elem_id="al-progress")
    timer = gr.Timer(1.0, active=False)
    return AutoLabelParts(model, mode, phrases, threshold, start, cancel, progress, timer)


class AutoLabelHandlers:
    """Start, cancel and poll; ``store_of(session, key)`` finds the page's project."""

    def __init__(self, ctx: Any, store_of: Any) -> None:
        self.ctx = ctx
        self.store_of = store_of
        operator = ctx.config.shows_operator_details
        self.start = guard(lambda *a: (gr.skip(), gr.skip()), operator)(self._start)
        self.cancel = guard(lambda *a: gr.skip(), operator)(self._cancel)
        self.poll = guard(lambda *a: (gr.skip(), gr.Timer(active=False)), operator)(self._poll)

    def _store(self, session: Any, key: Any) -> Any:
        store = self.store_of(session, key)
        if store is None:
            raise UserError("Open or make a project first.", "No project")
        return store

    def _start(self, session: Any, key: Any, model_id: str, mode: str, phrases: str,
               threshold: float) -> tuple:
        store = self._store(session, key)
        try:
            run = LabelRun(str(model_id), mode=str(mode),
                           phrases=str(phrases or "") if mode == "text" else (),
                           threshold=float(threshold))
            handle = self.ctx.services.label_runs.start(store, run)
        except (LabelRunError, ProjectError) as exc:
            raise UserError(str(exc), "Run not started") from exc
        return progress_text(handle).text, gr.Timer(active=True)

    def _cancel(self, session: Any, key: Any) -> Any:
        store = self._store(session, key)
        if not self.ctx.services.label_runs.cancel(store):
            return "No run is labelling this project now."
        return "Cancelling after the image in hand…"

    def _poll(self, session: Any, key: Any) -> tuple:
        store = self.store_of(session, key)
        handle = self.ctx.services.label_runs.of(store) if store is not None else None
        if handle is None:
            return gr.skip(), gr.Timer(active=False)
        view = progress_text(handle)
        return view.text, gr.Timer(active=view.running)
