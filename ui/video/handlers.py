"""Handlers of the video view: small functions from (session, event) to the new view.

Each handler works on the caller's own ``VideoSession`` (from ``gr.State``); ``feedback.guard``
turns any failure into a toast and re-renders the unchanged session. The long ones (track,
compare) are generators: they yield the view after every frame, so frames appear as they are
tracked, and end early when Stop is pressed (``VideoSession.stop``; the Stop button also
``cancels`` the event, and Gradio then closes the generator, which closes the engine's
iterator through ``Job``).

Engine work for a session happens under ``session.lock``; every frame the model computes goes
through the shared encoder lane (``VideoServices.frame_step``) and every job through the
tracking lane (``VideoServices.lane``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from sam_backends.video import MaskTrack
from ui.feedback import guard, warn
from ui.video.compare import CompareHandlers
from workbench.context import AppContext
from workbench.errors import UserError
from workbench.estimates import RunEstimate
from workbench.event_payloads import (
    box_from_event,
    check_point_cap,
    frame_from_event,
    object_id_from_event,
    point_from_event,
)
from workbench.objects import PromptSet
from workbench.video import values
from workbench.video.services import VideoServices
from workbench.video.state import SESSION_SUFFIX, Clip, Selection, VideoSession, to_prompts

FOREGROUND = "Foreground (object)"
BACKGROUND = "Background (not object)"
TRACK_ALL = "Whole clip (both ways from the prompts)"
TRACK_FROM_HERE = "Forward from this frame"
VIEW_SIZE = 8  # state, canvas, slider, frame label, info, objects, timeline, status
STOP_WAIT_S = 120.0  # the Stop handler waits this long for the frame in progress


class VideoHandlers(CompareHandlers):
    """The video view's event handlers, bound to one ``AppContext`` (the compare panel's
    in ``ui.video.compare.CompareHandlers``)."""

    def __init__(self, ctx: AppContext, example: Path | None = None) -> None:
        self.ctx = ctx
        self.services: VideoServices = ctx.services.video
        self.example = example
        operator = ctx.config.shows_operator_details
        self.operator = operator
        view = guard(self._view_fallback, operator)
        self.upload = view(self._upload)
        self.open_example = view(self._open_example)
        self.reselect = view(self._reselect)
        self.scrub = view(self._scrub)
        self.seek = view(self._seek)
        self.tick = guard(lambda *a: (gr.skip(),) * 5, operator)(self._tick)
        self.play = guard(lambda *a: gr.Timer(active=False), operator)(self._play)
        self.pause = guard(lambda *a: gr.Timer(active=False), operator)(self._pause)
        self.point = view(self._point)
        self.box = view(self._box)
        self.pick_object = view(self._pick_object)
        self.remove_object = view(self._remove_object)
        self.new_object = view(self._new_object)
        self.rename = view(self._rename)
        self.undo = view(self._undo)
        self.clear = view(self._clear)
        self.change_model = view(self._change_model)

    # --- views -------------------------------------------------------------------------------

    def session_for(self, session: VideoSession | None, request: gr.Request | None,
                    model_id: str | None = None) -> VideoSession:
        """The caller's session, created (and registered for release) on first use."""
        if session is None or session.released:
            base = getattr(request, "session_hash", None) or f"anon-{id(request)}"
            chosen = model_id or self.services.default_model() or self.ctx.default_model()
            session = VideoSession(base + SESSION_SUFFIX, chosen)
            self.ctx.sessions.track(session)
        return session

    def view(self, session: VideoSession, hint: str | None = None, status: str | None = None
             ) -> tuple:
        video = session.video
        count = video.num_frames if video is not None else 1
        slider = gr.update(minimum=0, maximum=max(1, count - 1), value=session.frame,
                           interactive=video is not None and count > 1)
        if status is None:
            status = values.run_summary(session.last_run)
        return (session, values.canvas_value(session, hint), slider,
                values.frame_label(session), values.info_markdown(session),
                values.objects_value(session), values.timeline_value(session), status)

    def _view_fallback(self, session: VideoSession | None, *_: Any) -> tuple:
        if session is None:
            return (None,) + tuple(gr.skip() for _ in range(VIEW_SIZE - 1))
        return self.view(session)

    # --- the clip ----------------------------------------------------------------------------

    def _upload(self, session: VideoSession | None, path: str | None, stride: float,
                start_s: float, end_s: float, max_frames: float, request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        if not path:
            return self.view(session)
        return self._open(session, Path(path), Path(path).name,
                          selection(stride, start_s, end_s, max_frames))

    def _open_example(self, session: VideoSession | None, stride: float, start_s: float,
                      end_s: float, max_frames: float, request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        if self.example is None or not self.example.is_file():
            raise UserError("The example clip is missing on this server; upload a clip.",
                            "No example")
        return self._open(session, self.example, self.example.name,
                          selection(stride, start_s, end_s, max_frames))

    def _reselect(self, session: VideoSession | None, stride: float, start_s: float,
                  end_s: float, max_frames: float, request: gr.Request) -> tuple:
        """Open the same clip again with other frames (prompts and masks start again)."""
        session = self.session_for(session, request)
        if session.clip is None:
            raise UserError("Upload a clip first (or pick the example).", "No video")
        clip = session.clip
        return self._open(session, clip.path, clip.name,
                          selection(stride, start_s, end_s, max_frames), copy=False)

    def _open(self, session: VideoSession, path: Path, name: str, chosen: Selection,
              copy: bool = True) -> tuple:
        session.check_idle()
        with session.lock:
            if copy:
                path = self.services.keep_copy(path, session.video_dir(self.ctx.export_parent),
                                               name)
            video, chosen = self.services.open(path, chosen)
            session.set_clip(Clip(video, name, path, chosen))
        return self.view(session)

    def _scrub(self, session: VideoSession | None, frame: float,
               request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        if session.video is not None:
            session.frame = min(max(0, int(frame)), session.video.num_frames - 1)
        return self.view(session)

    def _seek(self, session: VideoSession | None, evt: gr.EventData,
              request: gr.Request) -> tuple:
        """A click (or key) on the timeline: the same as moving the Frame slider there."""
        session = self.session_for(session, request)
        if session.video is None:
            return self.view(session)
        return self._scrub(session, frame_from_event(getattr(evt, "_data", None),
                                                     session.video.num_frames), request)

    def _play(self, session: VideoSession | None) -> Any:
        """Start the play timer at the clip's frame rate (at most 5 frames/s: each is an event)."""
        if session is None or session.video is None:
            return gr.Timer(active=False)
        session.playing = True
        return gr.Timer(value=max(0.2, 1.0 / session.video.fps), active=True)

    def _pause(self, session: VideoSession | None) -> Any:
        """Stop play. The flag matters: a tick already on its way would re-arm the timer."""
        if session is not None:
            session.playing = False
        return gr.Timer(active=False)

    def _tick(self, session: VideoSession | None, request: gr.Request) -> tuple:
        """One step of play: the next frame; at the end (or once paused), stop the timer.
        Outputs: canvas, slider, frame label, timer, timeline (its frame marker)."""
        if session is None or session.video is None or not session.playing:
            return gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False), gr.skip()
        last = session.video.num_frames - 1
        session.frame = 0 if session.frame >= last else session.frame + 1
        session.playing = session.frame < last
        timer = gr.Timer(active=session.playing)
        return (values.canvas_value(session), gr.update(value=session.frame),
                values.frame_label(session), timer, values.timeline_value(session))

    # --- prompts -----------------------------------------------------------------------------

    def _point(self, session: VideoSession | None, mode: str, evt: gr.EventData,
               request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        click = point_from_event(getattr(evt, "_data", None))
        current = self._current_prompts(session)
        check_point_cap(len(current.points), self.ctx.limits.max_points)
        background = click.background or mode == BACKGROUND
        return self._prompt(session, current.with_point(click.x, click.y, 0 if background else 1))

    def _box(self, session: VideoSession | None, evt: gr.EventData,
             request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        box = box_from_event(getattr(evt, "_data", None))
        return self._prompt(session, self._current_prompts(session).with_box(box))

    @staticmethod
    def _current_prompts(session: VideoSession) -> PromptSet:
        if session.video is None:
            raise UserError("Upload a clip first (or pick the example).", "No video")
        return session.active.on(session.frame)

    def _prompt(self, session: VideoSession, prompts: PromptSet) -> tuple:
        """Run the new prompts of the active object on the current frame, then record them."""
        session.check_idle()
        engine_prompts = to_prompts(prompts)
        engine_prompts.validate_for_image(session.video.size)
        with session.lock:
            engine = self.engine(session)
            frame, object_id = session.frame, session.active_id
            with self.services.frame_step():
                mask = engine.add_prompts(frame, object_id, engine_prompts)
            session.set_prompts(object_id, frame, prompts)
            session.track.set(frame, object_id, mask)
            session.compare = None
        return self.view(session)

    def engine(self, session: VideoSession) -> Any:
        """The session's tracker session for its model, made (and the prompts replayed) when
        missing, stale or for another model. Call under ``session.lock``."""
        engine = session.engine
        if engine is not None and not session.engine_stale and \
                engine.tracker.model_id == session.model_id:
            return engine
        tracker = self.services.tracker(session.model_id)
        engine = tracker.start(session.video)
        for frame, object_id, prompts in session.prompted():
            with self.services.frame_step():
                mask = engine.add_prompts(frame, object_id, to_prompts(prompts))
            session.track.set(frame, object_id, mask)
        session.engine, session.engine_stale = engine, False
        return engine

    def _reprompt_object(self, session: VideoSession, object_id: int) -> None:
        """After an edit the engine cannot take back (prompts removed from a frame): forget the
        object in the engine and give it its remaining prompts again. Its tracked masks go
        (they came from the removed prompts); track again to bring them back."""
        session.track.remove_object(object_id)
        session.compare = None
        engine = session.engine
        if engine is None or session.engine_stale:
            session.engine_stale = True
            return
        if object_id in engine.object_ids:
            engine.remove_object(object_id)
        obj = session.get(object_id)
        for frame, prompts in (obj.prompts if obj is not None else ()):
            with self.services.frame_step():
                mask = engine.add_prompts(frame, object_id, to_prompts(prompts))
            session.track.set(frame, object_id, mask)

    def _undo(self, session: VideoSession | None, request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        session.check_idle()
        with session.lock:
            edit = session.undo()
            if edit is None:
                return self.view(session, status="Nothing to undo.")
            session.frame = edit.frame
            if edit.before.is_empty or session.engine is None:
                self._reprompt_object(session, edit.object_id)
            else:
                engine = self.engine(session)
                with self.services.frame_step():
                    mask = engine.add_prompts(edit.frame, edit.object_id,
                                              to_prompts(edit.before))
                session.track.set(edit.frame, edit.object_id, mask)
                session.compare = None
        return self.view(session)

    def _clear(self, session: VideoSession | None, request: gr.Request) -> tuple:
        """Remove the active object's prompts on this frame (undoable)."""
        session = self.session_for(session, request)
        session.check_idle()
        if session.video is None or session.active.on(session.frame).is_empty:
            return self.view(session)
        with session.lock:
            session.set_prompts(session.active_id, session.frame, PromptSet())
            self._reprompt_object(session, session.active_id)
        return self.view(session)

    # --- objects -----------------------------------------------------------------------------

    def _object_id(self, session: VideoSession, evt: gr.EventData) -> int:
        known = [o.object_id for o in session.objects]
        return object_id_from_event(getattr(evt, "_data", None), known)

    def _pick_object(self, session: VideoSession | None, evt: gr.EventData,
                     request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        session.select(self._object_id(session, evt))
        return self.view(session)

    def _remove_object(self, session: VideoSession | None, evt: gr.EventData,
                       request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        session.check_idle()
        object_id = self._object_id(session, evt)
        with session.lock:
            engine = session.engine
            if engine is not None and object_id in engine.object_ids:
                engine.remove_object(object_id)
            session.delete(object_id)
        return self.view(session)

    def _new_object(self, session: VideoSession | None, name: str | None,
                    request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        session.new_object(name.strip() if name and name.strip() else None)
        return self.view(session)

    def _rename(self, session: VideoSession | None, name: str | None,
                request: gr.Request) -> tuple:
        session = self.session_for(session, request)
        session.rename(session.active_id, name or "")
        return self.view(session)

    def _change_model(self, session: VideoSession | None, model_id: str,
                      request: gr.Request) -> tuple:
        """Another tracker: the prompts stay, their masks are recomputed with the new model."""
        session = self.session_for(session, request, model_id)
        session.check_idle()
        model_id = self.services.check_model(model_id)
        with session.lock:
            session.model_id = model_id
            session.drop_engine()
            if session.video is not None:
                session.track = MaskTrack(session.video.size)
                session.last_run = {}
                if session.prompted():
                    self.engine(session)  # replays the prompts: their frames show masks
        name = self.ctx.spec(model_id).display_name
        return self.view(session, status=f"Tracking with **{name}**; press Track.")

    # --- tracking ----------------------------------------------------------------------------

    def track(self, session: VideoSession | None, how: str, request: gr.Request,
              progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:
        """Propagate every prompted object; yields the view after each frame."""
        try:
            session = self.session_for(session, request)
            yield from self._track(session, how, progress)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            warn(exc, self.operator)
            if session is not None:
                yield self.view(session)

    def _track(self, session: VideoSession, how: str, progress: Any) -> Iterator[tuple]:
        if session.video is None:
            raise UserError("Upload a clip first (or pick the example).", "No video")
        if not session.prompted():
            raise UserError("Click an object (or drag a box around it) on a frame first.",
                            "Nothing to track")
        job = session.begin_job("tracking")
        name = self.ctx.spec(session.model_id).display_name
        start = time.perf_counter()
        done, total = 0, session.video.num_frames
        try:
            progress(0.0, desc="Waiting for a tracking slot…")
            with self.services.lane.admit():
                progress(0.02, desc=f"Loading {name}…")
                with session.lock:
                    engine = self.engine(session)
                    if how == TRACK_FROM_HERE:
                        frames = engine.propagate(start_frame=session.frame)
                        total = session.video.num_frames - session.frame
                    else:
                        first = session.prompted_frames[0]
                        frames = engine.propagate_both(start_frame=first)
                        total = session.video.num_frames + (1 if first > 0 else 0)
                start = time.perf_counter()
                pace = RunEstimate(total, self.services.pace.pace(session.model_id))
                for frame, masks in job.steps(frames, around=self.services.frame_step):
                    for object_id, mask in masks.items():
                        session.track.set(frame, object_id, mask)
                    done += 1
                    pace.step()
                    session.frame = frame
                    text = values.progress_text(pace)
                    progress((done, total), desc=text, unit="frames")
                    yield self.view(session, status=text)
        finally:
            seconds = time.perf_counter() - start
            session.last_run = {"frames": done, "seconds": seconds, "stopped": job.stopped,
                                "model": name}
            session.compare = None
            self.services.record_run(seconds, session.model_id, done)
            job.finish()
        yield self.view(session)

    def stop(self, session: VideoSession | None) -> tuple:
        """The Stop button: end the running job after the frame in progress, wait for it to
        end (at most ``STOP_WAIT_S``), then show the view with what was tracked."""
        if session is None:
            return self._view_fallback(session)
        if not self._stop_and_wait(session):
            return self.view(session, status="Nothing is running.")
        return self.view(session)

    def stop_compare(self, session: VideoSession | None) -> tuple:
        """The compare panel's Stop button (see ``stop``)."""
        if session is None:
            return (None,) + (gr.skip(),) * 5
        self._stop_and_wait(session)
        return self.compare_view(session)

    @staticmethod
    def _stop_and_wait(session: VideoSession) -> bool:
        if not session.stop():
            return False
        deadline = time.monotonic() + STOP_WAIT_S
        while session.busy and time.monotonic() < deadline:
            time.sleep(0.05)
        return True


SELECTION_MAX_SECONDS = 86_400.0  # a day: far beyond any clip the server accepts
SELECTION_MAX_COUNT = 1_000_000  # frames (stride, max frames)


def selection(stride: Any, start_s: Any, end_s: Any, max_frames: Any) -> Selection:
    """A ``Selection`` from the page's number fields (stride 0: automatic; end 0: the end;
    max frames 0: no cap beyond the server's limit)."""
    def number(value: Any, what: str, most: float) -> float:
        try:
            out = float(value if value not in (None, "") else 0)
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"{what} must be a number.", "Check the frame selection") from None
        if out < 0 or out != out:
            raise UserError(f"{what} must be 0 or more.", "Check the frame selection")
        if out > most:  # refused here, before the probe sees an absurd seek or count
            raise UserError(f"{what} must be at most {most:,.0f}; got {out:g}.",
                            "Check the frame selection")
        return out

    stride_n = int(number(stride, "Stride", SELECTION_MAX_COUNT))
    start = number(start_s, "Start", SELECTION_MAX_SECONDS)
    end = number(end_s, "End", SELECTION_MAX_SECONDS)
    cap = int(number(max_frames, "Max frames", SELECTION_MAX_COUNT))
    if end and end <= start:
        raise UserError(f"End ({end:g} s) must be later than start ({start:g} s), or 0 for the "
                        "end of the clip.", "Check the frame selection")
    return Selection(stride_n, start, end or None, cap or None)
