"""The compare view's proposals section: one text prompt or everything run, every model's answer.

Each selected model answers the same request on the compare session's image: with text, SAM 3
reads the words itself and every SAM 1 / SAM 2.1 model gets OWLv2's boxes (one detection,
cached per image by the engine); with "everything", each SAM 1 / SAM 2.1 model runs its grid.
Shown side by side: an overlay per model with its instance count and time, a table of counts
and times per stage, and how the instances of each model match those of the first one (a
one-to-one matching on mask IoU, ``workbench.proposals.matching``).

A model that cannot answer (weights missing, no text capability, grabcut for everything) gets
its reason in the table; the others still answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import gradio as gr
import numpy as np

from sam_backends import Instances
from ui.feedback import guard
from ui.proposals.handlers import CancelFlags, _key, _progress_adapter
from ui.proposals.panel import ENTER_APPLIES_JS
from workbench.context import AppContext
from workbench.errors import UserError, describe, log_unexpected
from workbench.proposals import engines
from workbench.proposals.logic import check_threshold
from workbench.proposals.matching import MATCH_IOU, iou_matrix, match
from workbench.proposals.review import proposal_color
from workbench.render import Layer, compose, fit_size, resize_image, resize_nearest

CARD_SIDE = 640
SUMMARY_HEADERS = ("Model", "Instances", "Time (s)", "Stages", "Note")
MATCH_HEADERS = ("Compared with the first model", "Matched", "Mean IoU of matches",
                 "Only in the first", "Only in this one")
DETAIL_HEADERS = ("First model's instance", "Model", "Its instance", "IoU")
OUTPUTS = 4  # gallery, summary, matches, details
# The run buttons sit at the foot of their rows, as tall as the inputs beside them.
CSS = """
#compare-proposals-find, #compare-proposals-everything, #compare-proposals-stop {
  align-self: flex-end; flex-grow: 0; height: auto; min-height: 42px; margin-bottom: 4px;
}
"""


@dataclass(frozen=True)
class ModelAnswer:
    """One model's answer: its instances (None when it could not answer) and why not."""

    model_id: str
    name: str
    instances: Instances | None
    seconds: float
    error: str = ""


@dataclass(frozen=True)
class CompareProposals:
    """The section's components; ``ran`` is the dependency of the text / everything runs."""

    text: gr.Textbox
    find: gr.Button
    everything: gr.Button
    points_per_side: gr.Dropdown
    threshold: gr.Slider
    stop: gr.Button
    gallery: gr.Gallery
    summary: gr.Dataframe
    matches: gr.Dataframe
    details: gr.Dataframe
    ran: Any


def _describe_instance(instances: Instances, i: int) -> str:
    label = instances.labels[i] or "object"
    return f"#{i + 1} {label} ({instances.scores[i]:.2f})"


def card(image: np.ndarray, answer: ModelAnswer) -> tuple[np.ndarray, str]:
    """(picture, caption) of one model's answer at most ``CARD_SIDE`` pixels wide."""
    size = fit_size(*image.shape[:2], CARD_SIDE)
    base = resize_image(image, size)
    if answer.instances is None:
        return base, f"{answer.name}: {answer.error}"
    layers = [Layer(resize_nearest(answer.instances.masks[i], size), proposal_color(i))
              for i in range(len(answer.instances))]
    count = len(answer.instances)
    caption = f"{answer.name}: {count} instance{'s' if count != 1 else ''} · {answer.seconds:.1f} s"
    return compose(base, layers), caption


def summary_rows(answers: Sequence[ModelAnswer]) -> list[list[Any]]:
    rows = []
    for a in answers:
        if a.instances is None:
            rows.append([a.name, "–", round(a.seconds, 2), "", a.error])
            continue
        stages = ", ".join(f"{k} {v:.2f}" for k, v in a.instances.seconds.items())
        rows.append([a.name, len(a.instances), round(a.seconds, 2), stages, ""])
    return rows


def match_rows(answers: Sequence[ModelAnswer]) -> tuple[list[list[Any]], list[list[Any]]]:
    """(summary rows, per-instance rows) matching every answer to the first usable one."""
    usable = [a for a in answers if a.instances is not None]
    if len(usable) < 2:
        return [], []
    first = usable[0]
    rows, details = [], []
    for other in usable[1:]:
        pairs = match(iou_matrix(first.instances.masks, other.instances.masks))
        mean = round(float(np.mean([p.iou for p in pairs])), 3) if pairs else "–"
        rows.append([other.name, len(pairs), mean,
                     len(first.instances) - len(pairs), len(other.instances) - len(pairs)])
        details += [[_describe_instance(first.instances, p.a), other.name,
                     _describe_instance(other.instances, p.b), round(p.iou, 3)] for p in pairs]
    return rows, details


class CompareProposalsHandlers:
    """The section's handlers, bound to one ``AppContext`` (``everything_defaults`` as for
    ``ProposalsHandlers``)."""

    def __init__(self, ctx: AppContext, everything_defaults: dict[str, Any] | None = None
                 ) -> None:
        self.ctx = ctx
        self.everything_defaults = dict(everything_defaults or {})
        engines.everything_params_from(self.everything_defaults)
        self.flags = CancelFlags()
        operator = ctx.config.shows_operator_details
        keep = guard(lambda *args: tuple(gr.skip() for _ in range(OUTPUTS)), operator)
        self.text = keep(self._text)
        self.everything = keep(self._everything)
        self.stop = guard(lambda *args: None, operator)(self._stop)

    def _picture(self, session: Any):
        if session is None or getattr(session, "picture", None) is None:
            raise UserError("Upload an image first (or pick an example), then compare.",
                            "No image")
        return session.picture

    def _models(self, models: Sequence[str] | None) -> list[str]:
        chosen = [m for m in (models or []) if m in self.ctx.model_ids]
        if not chosen:
            raise UserError("Pick at least one model to compare.", "No models")
        return chosen

    def _answer_all(self, models: list[str], run, request, progress) -> tuple:
        flag = self.flags.start(_key(request))
        answers = []
        for k, model_id in enumerate(models):
            name = self.ctx.spec(model_id).display_name
            report = _progress_adapter(progress)

            def step(fraction: float, text: str = "", k=k, name=name, report=report) -> None:
                report((k + fraction) / len(models), f"{name}: {text}" if text else name)

            step(0.0, "starting…")
            start = time.perf_counter()
            try:
                instances = run(model_id, flag.is_set, step)
            except engines.Cancelled:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip()
            except Exception as exc:  # noqa: BLE001 - one model's failure is shown on its row
                title, message, expected = describe(exc, self.ctx.config.shows_operator_details)
                if not expected:
                    log_unexpected(exc)
                answers.append(ModelAnswer(model_id, name, None,
                                           time.perf_counter() - start, f"{title}: {message}"))
                continue
            answers.append(ModelAnswer(model_id, name, instances, time.perf_counter() - start))
        return answers

    def _show(self, image: np.ndarray, answers: list[ModelAnswer] | tuple) -> tuple:
        if isinstance(answers, tuple):  # cancelled
            return answers
        cards = [card(image, a) for a in answers]
        rows, details = match_rows(answers)
        return (cards, summary_rows(answers), rows, details)

    def _text(self, session: Any, models: Sequence[str] | None, text: str | None,
              threshold: float, request: gr.Request, progress=gr.Progress()) -> tuple:
        phrases = engines.phrases(text)
        threshold = check_threshold(threshold)
        picture = self._picture(session)

        def run(model_id, cancel, step):
            text_model = model_id if engines.reads_text(self.ctx, model_id) else engines.DETECTOR
            return engines.text(self.ctx, text_model, model_id, picture, phrases, threshold,
                                cancel=cancel, progress=step)

        return self._show(picture.image, self._answer_all(self._models(models), run, request,
                                                          progress))

    def _everything(self, session: Any, models: Sequence[str] | None, points: Any,
                    threshold: float, request: gr.Request, progress=gr.Progress()) -> tuple:
        points = engines.check_points_per_side(points)
        threshold = check_threshold(threshold)
        picture = self._picture(session)

        def run(model_id, cancel, step):
            return engines.everything(self.ctx, model_id, picture, points, threshold,
                                      defaults=self.everything_defaults, cancel=cancel,
                                      progress=step)

        return self._show(picture.image, self._answer_all(self._models(models), run, request,
                                                          progress))

    def _stop(self, request: gr.Request) -> None:
        self.flags.stop(_key(request))


def build_compare_proposals(ctx: AppContext, demo: gr.Blocks, compare_state: gr.State,
                            models: gr.CheckboxGroup, *,
                            everything_defaults: dict[str, Any] | None = None
                            ) -> CompareProposals:
    """Lay out the section in the current Blocks context (inside the compare view) and wire
    it to the compare view's session state and its model checkboxes."""
    h = CompareProposalsHandlers(ctx, everything_defaults)
    with gr.Group(elem_id="compare-proposals"):
        gr.Markdown("#### Many objects: the same text or everything run on each model")
        with gr.Row(equal_height=False):
            text = gr.Textbox(label="Text prompt", placeholder="dog · red car, bicycle",
                              max_lines=1, max_length=engines.MAX_TEXT_CHARS, scale=3,
                              elem_id="compare-proposals-text")
            find = gr.Button("Find with each model", variant="primary", scale=1,
                             elem_id="compare-proposals-find")
        with gr.Row(equal_height=False):
            everything = gr.Button("Everything with each model", scale=1,
                                   elem_id="compare-proposals-everything")
            points = gr.Dropdown(list(engines.POINTS_CHOICES), value=engines.DEFAULT_POINTS,
                                 label="Points per side", scale=1,
                                 elem_id="compare-proposals-points")
            threshold = gr.Slider(0.0, 1.0, value=0.5, step=0.01, label="Score threshold",
                                  scale=2, elem_id="compare-proposals-threshold")
            stop = gr.Button("Stop", variant="stop", scale=0, min_width=80,
                             elem_id="compare-proposals-stop")
        gallery = gr.Gallery(label="Each model's instances", columns=3, height="auto",
                             allow_preview=True, object_fit="contain",
                             elem_id="compare-proposals-gallery")
        summary = gr.Dataframe(headers=list(SUMMARY_HEADERS), value=[], interactive=False,
                               wrap=True, label="Counts and time per model",
                               elem_id="compare-proposals-summary")
        matches = gr.Dataframe(headers=list(MATCH_HEADERS), value=[], interactive=False,
                               wrap=True, elem_id="compare-proposals-matches",
                               label=f"Matching with the first model (one-to-one on mask IoU, "
                                     f"IoU ≥ {MATCH_IOU})")
        details = gr.Dataframe(headers=list(DETAIL_HEADERS), value=[], interactive=False,
                               wrap=True, label="Matched instances",
                               elem_id="compare-proposals-details")
    outputs = [gallery, summary, matches, details]
    runs = {"concurrency_id": "proposals", "concurrency_limit": 1, "show_progress": "full",
            "api_visibility": "private"}
    by_text = gr.on([find.click, text.submit], h.text, [compare_state, models, text, threshold],
                    outputs, **runs)
    by_grid = everything.click(h.everything, [compare_state, models, points, threshold],
                               outputs, **runs)
    stop.click(h.stop, None, None, cancels=[by_text, by_grid], queue=False,
               api_visibility="private")
    demo.load(None, None, None, js=ENTER_APPLIES_JS)
    return CompareProposals(text=text, find=find, everything=everything,
                            points_per_side=points, threshold=threshold, stop=stop,
                            gallery=gallery, summary=summary, matches=matches, details=details,
                            ran=by_text)
