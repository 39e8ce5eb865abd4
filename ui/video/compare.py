"""The video view's "Compare two models" panel: the same prompts tracked by two models (two
SAM 2.1 sizes, or EdgeTAM beside one), their results side by side on one frame slider, the
per-frame IoU between them and their frames/s. ``CompareHandlers.compare`` does the work (a
generator, stoppable like tracking; mixed into ``ui.video.handlers.VideoHandlers``);
``build_compare_panel`` lays the panel out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator

import gradio as gr

from sam_backends.video import MaskTrack
from ui.feedback import warn
from workbench.context import AppContext
from workbench.errors import UserError
from workbench.estimates import RunEstimate
from workbench.video import values
from workbench.video.state import CompareRun, VideoSession, frame_iou, to_prompts
from workbench.video.values import compare_summary, iou_table


@dataclass
class ComparePanel:
    """The panel's components; ``wire`` connects them to the handlers and returns the compare
    event (for the Stop buttons' ``cancels``)."""

    model_a: gr.Dropdown
    model_b: gr.Dropdown
    run: gr.Button
    stop: gr.Button
    image_a: gr.Image
    image_b: gr.Image
    slider: gr.Slider
    plot: gr.LinePlot
    text: gr.Markdown

    def outputs(self, state: gr.State) -> list[Any]:
        return [state, self.image_a, self.image_b, self.slider, self.plot, self.text]

    def wire(self, handlers: Any, state: gr.State) -> Any:
        outputs = self.outputs(state)
        event = self.run.click(handlers.compare, [state, self.model_a, self.model_b], outputs,
                               concurrency_limit=None, api_visibility="private",
                               show_progress="full")
        self.slider.input(handlers.compare_frame, [state, self.slider], outputs,
                          trigger_mode="always_last", show_progress="hidden",
                          concurrency_id="video-view", api_visibility="private")
        return event


def pick_pair(model_ids: list[str], default: str | None) -> tuple[str | None, str | None]:
    """Two different models to start with: the default and the next one offered."""
    if not model_ids:
        return None, None
    first = default if default in model_ids else model_ids[0]
    others = [m for m in model_ids if m != first]
    return first, (others[0] if others else first)


def build_compare_panel(ctx: AppContext, model_ids: list[str], default: str | None
                        ) -> ComparePanel:
    choices = [(ctx.spec(m).display_name, m) for m in model_ids]
    first, second = pick_pair(model_ids, default)
    with gr.Accordion("Compare two models on this clip", open=False,
                      elem_id="video-compare"):
        with gr.Row(equal_height=False):
            model_a = gr.Dropdown(choices, value=first, label="Model A", scale=2,
                                  elem_id="video-compare-a")
            model_b = gr.Dropdown(choices, value=second, label="Model B", scale=2,
                                  elem_id="video-compare-b")
            run = gr.Button("Compare", variant="primary", scale=0, min_width=140,
                            elem_id="video-compare-run")
            stop = gr.Button("■ Stop", variant="stop", scale=0, min_width=100,
                             elem_id="video-compare-stop")
        with gr.Row(equal_height=True):
            image_a = gr.Image(label="Model A", interactive=False, type="numpy",
                               format="jpeg", elem_id="video-compare-image-a")
            image_b = gr.Image(label="Model B", interactive=False, type="numpy",
                               format="jpeg", elem_id="video-compare-image-b")
        slider = gr.Slider(0, 1, value=0, step=1, label="Frame (both models)",
                           elem_id="video-compare-frame")
        plot = gr.LinePlot(iou_table(None), x="frame", y="IoU", y_lim=[0, 1],
                           title="IoU between the two models per frame", height=220,
                           elem_id="video-compare-iou")
        text = gr.Markdown(compare_summary(None, ("", "")), elem_id="video-compare-text")
    return ComparePanel(model_a, model_b, run, stop, image_a, image_b, slider, plot, text)


class CompareHandlers:
    """The compare panel's handlers; a mixin of ``VideoHandlers`` (uses its ``ctx``,
    ``services``, ``operator`` and ``session_for``)."""

    def compare(self, session: VideoSession | None, model_a: str, model_b: str,
                request: gr.Request, progress: gr.Progress = gr.Progress()
                ) -> Iterator[tuple]:
        """Track the same prompts with two models; yields (state, A, B, slider, rows, text)."""
        try:
            session = self.session_for(session, request)
            yield from self._compare(session, model_a, model_b, progress)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            warn(exc, self.operator)
            if session is not None:
                yield self.compare_view(session)

    def compare_view(self, session: VideoSession, frame: int | None = None,
                     status: str | None = None) -> tuple:
        run = session.compare
        frame = session.frame if frame is None else frame
        image_a, image_b = values.compare_images(session, frame)
        count = session.video.num_frames if session.video is not None else 1
        slider = gr.update(maximum=max(1, count - 1), value=frame, interactive=count > 1)
        names = tuple(self.ctx.spec(m).display_name for m in run.models) if run else ("", "")
        text = status if status is not None else values.compare_summary(run, names)
        return (session, image_a, image_b, slider, values.iou_table(run), text)

    def compare_frame(self, session: VideoSession | None, frame: float) -> tuple:
        if session is None or session.compare is None:
            return (session,) + (gr.skip(),) * 5
        return self.compare_view(session, int(frame))

    def _compare(self, session: VideoSession, model_a: str, model_b: str,
                 progress: Any) -> Iterator[tuple]:
        models = (self.services.check_model(model_a), self.services.check_model(model_b))
        if models[0] == models[1]:
            raise UserError("Pick two different models to compare.", "Same model twice")
        if session.video is None or not session.prompted():
            raise UserError("Upload a clip and prompt an object first (Track tab above).",
                            "Nothing to compare")
        job = session.begin_job("comparison")
        video = session.video
        run = CompareRun(models, (MaskTrack(video.size), MaskTrack(video.size)))
        session.compare = run
        first = session.prompted_frames[0]
        total = video.num_frames + (1 if first > 0 else 0)
        # one estimate for both models: the second one's frames are priced at its pace measured
        # here before, else at the first one's (a guess, and worded as one)
        history = self.services.pace
        pace = RunEstimate(2 * total, history.pace(models[0]), later=total,
                           later_pace=history.pace(models[1]))
        try:
            with self.services.lane.admit():
                for which, model_id in enumerate(models):
                    name = self.ctx.spec(model_id).display_name
                    progress(0.0, desc=f"Loading {name}…")
                    engine = self.services.tracker(model_id).start(video)
                    for frame, object_id, prompts in session.prompted():
                        with self.services.frame_step():
                            mask = engine.add_prompts(frame, object_id, to_prompts(prompts))
                        run.tracks[which].set(frame, object_id, mask)
                    start = time.perf_counter()
                    if which:
                        pace.new_pace()
                    else:
                        pace.start()
                    frames = engine.propagate_both(start_frame=first)
                    for frame, masks in job.steps(frames, around=self.services.frame_step):
                        for object_id, mask in masks.items():
                            run.tracks[which].set(frame, object_id, mask)
                        run.frames_done[which] += 1
                        run.seconds[which] = time.perf_counter() - start
                        pace.step()
                        text = values.progress_text(pace, f"{name} ({which + 1} of 2)",
                                                    run.frames_done[which], total)
                        progress((run.frames_done[which], total), desc=text, unit="frames")
                        yield self.compare_view(session, frame, status=text)
                    history.record(model_id, run.seconds[which], run.frames_done[which])
                    del engine  # its memory goes before the second model starts
                    if job.stopped:
                        break
                ids = session.tracked_ids
                for frame in range(video.num_frames):
                    value = frame_iou(run.tracks[0], run.tracks[1], frame, ids)
                    if value is not None:
                        run.ious[frame] = value
                run.finished = not job.stopped
        finally:
            job.finish()
        yield self.compare_view(session, first)
