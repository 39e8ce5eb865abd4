"""The Video view's "Find by words": detect what the words name, track every instance, re-detect
(at most the tab's object limit, ``MAX_OBJECTS``).

The engine's ``TextTracker`` runs on the tab's own tracker session (``VideoHandlers.engine``),
so the objects it finds are ordinary objects of the tab: each is added with the phrase as its
name and its first detection's box as its prompt on that frame (so a model change or a
correction replays it like a click), and clicks and boxes correct any of them afterwards.

"SAM 3 video" runs SAM 3's own video model instead (``Sam3TextVideoRun``: it detects on every
frame and tracks with its own memory); its masks fill the tab, and the objects join the tab's
tracker the same way (box prompt on the first frame where SAM 3 saw them; the tracker's
session is rebuilt with them at the next click or Track, whose decoder then redraws the mask
on that first frame). It runs as Track does: in the tracking lane, each frame through the
encoder lane, Stop ending it after the frame in progress, the view updated after every frame.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

import gradio as gr

from ui.feedback import warn
from workbench.errors import UserError
from workbench.estimates import RunEstimate
from workbench.objects import PromptSet
from workbench.video import values
from workbench.video.state import MAX_OBJECTS, VideoSession

DETECTOR_CHOICES = [("Automatic (SAM 3 if present, else OWLv2)", "auto"),
                    ("OWLv2 boxes", "owlv2"), ("SAM 3", "sam3"),
                    ("SAM 3 video (finds and tracks by itself)", "sam3-video")]


class WordsHandlers:
    """Find by words for one ``VideoHandlers`` (its sessions, services and views)."""

    def __init__(self, video: Any) -> None:
        self.video = video

    def find(self, session: VideoSession | None, text: str, detector: str, threshold: float,
             every: float, request: gr.Request, progress: gr.Progress = gr.Progress()
             ) -> Iterator[tuple]:
        """Detect and track what ``text`` names; yields the view after each frame."""
        h = self.video
        try:
            session = h.session_for(session, request)
            yield from self._find(session, text, detector, threshold, every, progress)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            warn(exc, h.operator)
            if session is not None:
                yield h.view(session)

    def _find(self, session: VideoSession, text: str, detector: str, threshold: float,
              every: float, progress: Any) -> Iterator[tuple]:
        from sam_backends.video.text_tracking import TextTracker, TextTrackParams
        from workbench.video.track_job import OWN_VIDEO_DETECTORS, frame_detector

        h = self.video
        if session.video is None:
            raise UserError("Upload a clip first (or pick the example).", "No video")
        if every is None or float(every) != int(every):
            raise UserError("Re-detect every: a whole number of frames (0: the first frame "
                            "only).", "Not a whole number")
        room = MAX_OBJECTS - sum(1 for o in session.objects if not o.is_empty)
        if room <= 0:
            raise UserError(f"This clip already has {MAX_OBJECTS} objects, the most a tab "
                            "tracks; remove some first.", "Too many objects")
        params = TextTrackParams(text or "", threshold=float(threshold),
                                 re_detect_every=int(every), max_objects=room)
        job = session.begin_job("tracking")
        start, done, total = time.perf_counter(), 0, session.video.num_frames
        try:
            progress(0.0, desc="Waiting for a tracking slot…")
            with h.services.lane.admit():
                own = OWN_VIDEO_DETECTORS.get(detector)
                progress(0.02, desc="Loading SAM 3's video model…" if own else
                         "Loading the detector and the tracker…")
                found_by = None if own else frame_detector(h.ctx, detector)
                with session.lock:
                    first_id = max([0, *(o.object_id for o in session.objects
                                         if not o.is_empty)]) + 1
                    if own:
                        run = h.services.words_model(own).start(session.video, params,
                                                                first_object_id=first_id)
                    else:
                        run = TextTracker(h.engine(session), found_by, params,
                                          first_object_id=first_id)
                start = time.perf_counter()
                pace = RunEstimate(total, h.services.pace.pace(f"words:{session.model_id}"))
                for frame, masks in job.steps(run.run(), around=h.services.frame_step):
                    with session.lock:
                        self._adopt(session, run)
                        if own:  # the tracker's session lacks them until it is rebuilt
                            session.engine_stale = True
                        for object_id, mask in masks.items():
                            session.track.set(frame, object_id, mask)
                        session.frame = frame
                    done += 1
                    pace.step()
                    status = values.progress_text(pace)
                    progress((done, total), desc=status, unit="frames")
                    yield h.view(session, status=status)
        finally:
            seconds = time.perf_counter() - start
            session.last_run = {"frames": done, "seconds": seconds, "stopped": job.stopped,
                                "model": h.ctx.spec(session.model_id).display_name}
            session.compare = None
            h.services.record_run(seconds, f"words:{session.model_id}", done)
            job.finish()
        found = run.result
        if found.found_nothing:
            yield h.view(session, status=f"Nothing matched **{', '.join(params.phrases)}** "
                                         f"at threshold {params.threshold:g}; lower it or try "
                                         "other words.")
            return
        summary = f"Found {len(found.objects)} object(s) for {', '.join(params.phrases)}."
        if found.objects_refused:
            summary += (f" {found.objects_refused} more were left out: a tab tracks at most "
                        f"{MAX_OBJECTS} objects.")
        if found.capped_frames:
            summary += (f" {len(found.capped_frames)} frame(s) had more than "
                        f"{params.max_detections} detections; the best were kept.")
        yield h.view(session, status=summary)

    @staticmethod
    def _adopt(session: VideoSession, run: Any) -> None:
        """Objects the words found become the tab's objects, prompted with their box."""
        names = run.result.names()
        for obj in run.result.objects:
            if session.get(obj.object_id) is not None:
                continue
            session.add_object(obj.object_id, names[obj.object_id])
            session.set_prompts(obj.object_id, obj.first_frame, PromptSet(box=obj.box),
                                record=False)
