"""The segment view's proposals panel: Everything, a text prompt, review and keep.

Layout and event wiring only (handlers in ``ui.proposals.handlers``). The lead view places it
inside its own Blocks context and chains its refresh after ``ProposalsPanel.changed``::

    panel = build_proposals_panel(ctx, demo, segment.state, segment.canvas)
    panel.changed.then(h.refresh, [segment.state], view, ...)

Proposals are reviewed on the segment view's own canvas (``canvas``): the panel's handlers
redraw it with the proposals over the image, and a click on one fires the canvas's
``proposal`` event, which selects or unselects it. The canvas's review bar has the Keep and
Discard buttons too (it presses this panel's), so the person never scrolls between them.

Concurrency: runs go in their own "proposals" group (one at a time for all users), so a long
everything grid neither blocks clicks ("decode") nor uploads ("encode"); the image encode
inside still passes the shared encoder lane. Toggles, the threshold and keeping are quick and
run in the "decode" group, in order per session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ui.proposals.handlers import EMPTY_STATUS, KEEP_ALL_ID, ProposalsHandlers
from workbench.context import AppContext
from workbench.proposals import engines, logic

# The run buttons sit at the foot of their row, as tall as the inputs beside them (a row of
# equal height would stretch them to the tallest neighbour, a dropdown with its info line).
CSS = """
#proposals-status { min-height: 1.6em; }
#proposals-everything, #proposals-find, #proposals-stop {
  align-self: flex-end; flex-grow: 0; height: auto; min-height: 42px; margin-bottom: 4px;
}
"""


# A slider's number box applies a typed value when it loses focus (its "release"); Enter did
# nothing, so a typed threshold looked ignored. Enter now leaves the box, which applies it.
ENTER_APPLIES_JS = """() => {
  if (window.samwbEnterApplies) return;
  window.samwbEnterApplies = true;
  document.addEventListener('keydown', (event) => {
    const box = event.target;
    if (event.key === 'Enter' && box.matches && box.matches('input[type=number]')
        && box.closest('[id$="-threshold"]')) {
      event.preventDefault();
      box.blur();
    }
  }, true);
}"""

@dataclass(frozen=True)
class ProposalsPanel:
    """The panel's components, and ``changed``: the event after which ``segment_state`` holds
    new objects (the caller chains its view refresh with ``changed.then(...)``)."""

    state: gr.State
    everything: gr.Button
    points_per_side: gr.Dropdown
    text: gr.Textbox
    text_model: gr.Dropdown
    find: gr.Button
    threshold: gr.Slider
    stop: gr.Button
    canvas: Any  # the segment view's ``PromptCanvas``, where the proposals are reviewed
    status: gr.Markdown
    keep_all: gr.Button
    keep_selected: gr.Button
    discard: gr.Button
    changed: Any
    ran: tuple[Any, Any]
    handlers: ProposalsHandlers


def build_proposals_panel(ctx: AppContext, demo: gr.Blocks, segment_state: gr.State,
                          canvas: Any, *,
                          points_choices: tuple[int, ...] = engines.POINTS_CHOICES,
                          everything_defaults: dict[str, Any] | None = None
                          ) -> ProposalsPanel:
    """Lay out the panel in the current Blocks context and wire its events.

    ``points_choices``: the grid sizes offered (tests offer a tiny one); ``everything_defaults``:
    the other ``EverythingParams`` (see ``ProposalsHandlers``); ``ProposalsPanel.ran`` holds the
    runs' dependencies (Everything, Find) for chaining after a run."""
    h = ProposalsHandlers(ctx, everything_defaults)
    state = gr.State(None)
    choices = engines.text_model_choices(ctx)
    with gr.Group(elem_id="proposals"):
        gr.Markdown("#### Find many objects at once", elem_id="proposals-title")
        with gr.Row(equal_height=False):
            everything = gr.Button("Everything", variant="primary", elem_id="proposals-everything",
                                   scale=1, min_width=120)
            points = gr.Dropdown(list(points_choices),
                                 value=(engines.DEFAULT_POINTS
                                        if engines.DEFAULT_POINTS in points_choices
                                        else points_choices[0]),
                                 label="Points per side", elem_id="proposals-points",
                                 info="a finer grid finds smaller objects, more slowly",
                                 scale=1, min_width=150)
            threshold = gr.Slider(0.0, 1.0, value=logic.DEFAULT_THRESHOLD, step=0.01,
                                  label="Score threshold", elem_id="proposals-threshold",
                                  scale=2, min_width=200)
        with gr.Row(equal_height=False):
            text = gr.Textbox(label="Text prompt", placeholder="dog · red car, bicycle",
                              max_lines=1, max_length=engines.MAX_TEXT_CHARS,
                              elem_id="proposals-text", scale=3, min_width=200)
            text_model = gr.Dropdown(choices, value=choices[0][1] if choices else None,
                                     label="Text model", elem_id="proposals-text-model",
                                     info=engines.text_model_note(ctx), scale=2, min_width=200)
            find = gr.Button("Find", variant="primary", elem_id="proposals-find", scale=0,
                             min_width=90)
            stop = gr.Button("Stop", variant="stop", elem_id="proposals-stop", scale=0,
                             min_width=80)
        # status and Keep buttons above the picture: on a 768-pixel screen they stay in view
        status = gr.Markdown(EMPTY_STATUS, elem_id="proposals-status")
        with gr.Row():
            keep_all = gr.Button("Keep all", elem_id=KEEP_ALL_ID, size="sm")
            keep_selected = gr.Button("Keep selected", elem_id="proposals-keep-selected",
                                      size="sm")
            discard = gr.Button("Discard", elem_id="proposals-discard", size="sm")

    panel = [state, canvas, status]
    runs = {"concurrency_id": "proposals", "concurrency_limit": 1, "show_progress": "full",
            "api_visibility": "private"}
    quick = {"concurrency_id": "decode", "show_progress": "hidden", "api_visibility": "private"}
    run_everything = everything.click(h.everything, [segment_state, points, threshold], panel,
                                      **runs)
    run_text = gr.on([find.click, text.submit], h.text,
                     [segment_state, text, text_model, threshold], panel, **runs)
    stop.click(h.stop, [state], status, cancels=[run_everything, run_text], queue=False,
               api_visibility="private")
    canvas.proposal(h.toggle, [segment_state, state], panel, **quick)
    threshold.release(h.threshold, [segment_state, state, threshold], panel, **quick)
    demo.load(None, None, None, js=ENTER_APPLIES_JS)
    discard.click(h.discard, [segment_state, state], panel, **quick)
    changed = gr.on([keep_all.click, keep_selected.click], h.keep, [segment_state, state],
                    [segment_state] + panel, **quick)
    return ProposalsPanel(state=state, everything=everything, points_per_side=points, text=text,
                          text_model=text_model, find=find, threshold=threshold, stop=stop,
                          canvas=canvas, status=status, keep_all=keep_all,
                          keep_selected=keep_selected, discard=discard, changed=changed,
                          ran=(run_everything, run_text), handlers=h)
