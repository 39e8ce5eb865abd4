"""The ``/track`` endpoint for ``gradio_client``: track objects through a video file with SAM 2.1
or EdgeTAM.

    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    coco, overlay_mp4 = client.predict(
        handle_file("clip.mp4"), "sam2.1-tiny",
        '{"objects": [{"id": 1, "name": "dog", "frame": 0, "box": [40, 30, 200, 180]}]}',
        0, 0, 0, 50, api_name="/track")      # stride (0: about 5 fps), start s, end s, frames

Prompts JSON: ``{"objects": [...]}``, each entry ``id`` (a whole number >= 1), optional
``name``, ``frame`` (index among the processed frames, default 0) and the ``/segment`` prompt
keys ``points`` [[x, y], ...], ``labels`` [1 | 0, ...], ``box`` [x0, y0, x1, y1] in pixels of
the frame as displayed. An id may appear on several frames (corrections). The text is bounded
and strictly typed before any work (``sam_backends.prompts.prompt_parsing``).

Returns a standard COCO JSON (``sam_backends.video.coco``: one image per processed frame, each
object's mask on it as an RLE annotation with ``track_id``; the clip's fps and frame indices;
timings) and the overlay MP4 (H.264). The call runs as a job with progress
(``job.status()`` in ``gradio_client``), in the tracking lane shared with the page (one at a
time, a few waiting, "busy, retry in N s" beyond), each frame admitted through the encoder
lane, and stops at its next frame after ``--video-timeout`` seconds. It deliberately does not
hold ``ctx.api_lane``: a minute of tracking there would refuse every ``/segment`` call.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from sam_backends import PromptError
from sam_backends.prompts.prompt_parsing import PromptLimits, json_depth, prompts_from_json
from ui.disconnects import caller_gone_check
from ui.feedback import api_error
from ui.video.handlers import selection
from workbench.context import AppContext
from workbench.errors import UserError, log
from workbench.estimates import RunEstimate
from workbench.exports import safe_stem
from workbench.lanes import CallerGoneError, Deadline
from workbench.objects import PromptSet
from workbench.video import values
from workbench.video.exports import write_overlay_mp4
from workbench.video.state import MAX_OBJECTS, Clip, VideoSession, to_prompts

KEEP_OUTPUTS = 16  # result folders kept for Gradio to serve; older ones are deleted
MAX_ENTRIES = 64  # (object, frame) prompt entries per call
ENTRY_KEYS = ("id", "name", "frame")
MAX_DIGITS = 32
EXAMPLE = '{"objects": [{"id": 1, "frame": 0, "points": [[120, 80]], "labels": [1]}]}'
WORDS_EXAMPLE = '{"text": "dog", "re_detect_every": 10}'
WORDS_KEYS = ("text", "threshold", "re_detect_every", "detector")


def _bounded(literal: str) -> Any:
    if len(literal) > MAX_DIGITS:
        raise PromptError(f"The prompts contain a number written with {len(literal):,} "
                          "characters; coordinates are pixels.")
    value = float(literal) if any(c in literal for c in ".eE") else int(literal)
    if isinstance(value, float) and not math.isfinite(value):
        raise PromptError(f"The number {literal[:12]} is too large.")
    return value


def _no_constant(name: str) -> Any:
    raise PromptError(f"{name} is not a valid JSON number; coordinates must be finite numbers.")


@dataclass(frozen=True)
class WordsRequest:
    """``{"text": ...}`` prompts: track what the words name (``TextTrackParams``), found by
    ``detector`` ("auto": SAM 3 where offered and present, else OWLv2)."""

    params: Any
    detector: str = "auto"


def words_request(data: dict) -> WordsRequest:
    """A ``WordsRequest`` from the parsed prompts JSON (unknown keys refused)."""
    from sam_backends.video.text_tracking import DEFAULT_RE_DETECT_EVERY, TextTrackParams

    unknown = set(data) - set(WORDS_KEYS)
    if unknown:
        raise PromptError(f"Unknown key(s) {', '.join(sorted(unknown))} with text; the keys are "
                          f"{', '.join(WORDS_KEYS)}, e.g. {WORDS_EXAMPLE}.")
    detector = data.get("detector", "auto")
    if detector not in ("auto", "sam3", "owlv2", "sam3-video"):
        raise PromptError('detector must be "auto", "sam3", "owlv2" or "sam3-video" (SAM 3\'s '
                          'own video model, which finds and tracks by itself).')
    if not isinstance(data["text"], str):
        raise PromptError(f"text must be a string of words, e.g. {WORDS_EXAMPLE}.")
    params = TextTrackParams(data["text"], threshold=data.get("threshold", 0.3),
                             re_detect_every=data.get("re_detect_every",
                                                      DEFAULT_RE_DETECT_EVERY))
    return WordsRequest(params, detector)


def parse_track_prompts(text: str | None, limits: PromptLimits
                        ) -> list[tuple[int, str | None, int, PromptSet]] | WordsRequest:
    """``(object id, name, frame, prompts)`` per entry of the prompts JSON, strictly; or, for
    ``{"text": "dog", ...}``, a ``WordsRequest``.

    Raises:
        PromptError: too long or deep, not JSON, wrong shape or types, unknown keys, more than
            ``MAX_OBJECTS`` objects or ``MAX_ENTRIES`` entries, or an entry without prompts.
    """
    if not isinstance(text, str) or not text.strip():
        raise PromptError(f"Send the prompts as JSON text, e.g. {EXAMPLE}.")
    if len(text) > limits.max_json_chars:
        raise PromptError(f"The prompts JSON is {len(text):,} characters, more than the limit "
                          f"of {limits.max_json_chars:,}.")
    if json_depth(text) > limits.max_depth:
        raise PromptError(f"The prompts JSON nests too deeply; send e.g. {EXAMPLE}.")
    try:
        data = json.loads(text, parse_int=_bounded, parse_float=_bounded,
                          parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise PromptError(f"The prompts are not valid JSON ({exc.msg} at character "
                          f"{exc.pos}); send e.g. {EXAMPLE}.") from None
    if isinstance(data, dict) and "text" in data:
        return words_request(data)
    if not isinstance(data, dict) or set(data) != {"objects"} or \
            not isinstance(data["objects"], list) or not data["objects"]:
        raise PromptError(f'The prompts must be {{"objects": [...]}} with at least one entry, '
                          f'e.g. {EXAMPLE}, or words: {WORDS_EXAMPLE}.')
    entries = data["objects"]
    if len(entries) > MAX_ENTRIES:
        raise PromptError(f"At most {MAX_ENTRIES} prompt entries per call, got {len(entries)}.")
    parsed = []
    for k, entry in enumerate(entries):
        where = f"objects[{k}]"
        if not isinstance(entry, dict):
            raise PromptError(f"{where} must be a JSON object with id, frame and prompts.")
        object_id, frame, name = entry.get("id"), entry.get("frame", 0), entry.get("name")
        if isinstance(object_id, bool) or not isinstance(object_id, int) or object_id < 1:
            raise PromptError(f"{where}.id must be a whole number >= 1, got {object_id!r:.30}.")
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
            raise PromptError(f"{where}.frame must be a whole number >= 0 (a processed "
                              f"frame's index), got {frame!r:.30}.")
        if name is not None and (not isinstance(name, str) or len(name) > 80):
            raise PromptError(f"{where}.name must be a string of at most 80 characters.")
        try:
            prompts = prompts_from_json({key: v for key, v in entry.items()
                                         if key not in ENTRY_KEYS}, limits)
        except PromptError as exc:
            raise PromptError(f"{where}: {exc}") from None
        if prompts.multimask:
            raise PromptError(f"{where}: multimask does not apply to video tracking.")
        if not prompts.points and prompts.box is None:
            raise PromptError(f"{where} has no points and no box; give at least one.")
        prompt_set = PromptSet(tuple(prompts.points), tuple(prompts.labels),
                               None if prompts.box is None else tuple(prompts.box))
        parsed.append((object_id, name, frame, prompt_set))
    if len({p[0] for p in parsed}) > MAX_OBJECTS:
        raise PromptError(f"At most {MAX_OBJECTS} objects per call.")
    return parsed


class TrackApi:
    """The ``/track`` endpoint, bound to one ``AppContext``."""

    def __init__(self, ctx: AppContext, blocks: gr.Blocks | None = None) -> None:
        self.ctx = ctx
        self.blocks = blocks
        self.services = ctx.services.video
        self.out_dir = ctx.temp.path / "api-video"
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def track(self, video: str | None, model_id: str | None, prompts: str | None,
              stride: float = 0, start_s: float = 0, end_s: float = 0, max_frames: float = 0,
              request: gr.Request | None = None, progress: gr.Progress = gr.Progress()
              ) -> tuple[dict[str, Any], str]:
        """Track objects through a video with SAM 2.1 or EdgeTAM: from points and/or boxes on
        any frames, or from words ("every person", "dog"): the words are detected on the first
        processed frame and every re_detect_every frames, each instance tracked with its own id.

        Args:
            video: the video file (MP4, MOV, WebM, MKV) via handle_file(path).
            model_id: a video model_id (SAM 2.1, EdgeTAM) from the models tool (empty: the
                server's default).
            prompts: JSON {"objects": [{"id": 1, "frame": 0, "points": [[x, y]], "labels": [1],
                "box": [x0, y0, x1, y1]}]} (frame: the index among the processed frames), or
                words: {"text": "dog, ball", "threshold": 0.3, "re_detect_every": 30,
                "detector": "auto"} (auto: SAM 3 where present, else OWLv2; "sam3-video":
                SAM 3's own video model detects on every frame and tracks by itself, model_id
                unused; at most 50 detections a frame and 100 objects; words that find nothing
                give an empty result with found_nothing true, not an error).
            stride: keep every stride-th frame (0: about 5 frames per second).
            start_s: start of the part to track, in seconds.
            end_s: end of the part to track, in seconds (0: the end of the clip).
            max_frames: at most this many processed frames (0: the server's limit).

        Returns:
            coco: a COCO document: one image per processed frame, one RLE annotation per object
                on it (``track_id`` = the object's id), with the clip's fps and frame indices;
                for words also tracked_objects (phrase, first_frame, ended_at, score).
            overlay: H.264 MP4 of the clip with every object's mask drawn in its colour.
        """
        config = self.ctx.config
        deadline = Deadline(config.video_timeout_s, "The track request")
        gone = caller_gone_check(self.blocks, getattr(request, "session_hash", None))
        session: VideoSession | None = None
        try:
            entries = parse_track_prompts(prompts, self.ctx.limits.prompt_limits())
            chosen = selection(stride, start_s, end_s, max_frames)
            model = self.services.check_model(model_id)
            if not video:
                raise UserError("Send a video file as the first argument.", "No video")
            progress(0.0, desc="Waiting for a tracking slot…")
            with self.services.lane.admit(deadline, gone):
                session = VideoSession(f"api-{uuid.uuid4().hex[:12]}", model)
                return self._track(session, Path(video), entries, chosen, deadline, progress)
        except CallerGoneError:
            log.info("a /track call was dropped: its caller disconnected while it waited")
            raise gr.Error("The caller disconnected.", print_exception=False) from None
        except Exception as exc:  # noqa: BLE001 - every failure becomes a friendly gr.Error
            raise api_error(exc, config.shows_operator_details) from None
        finally:
            if session is not None:
                session.release()

    def _track(self, session: VideoSession, path: Path, entries: list, chosen: Any,
               deadline: Deadline, progress: Any) -> tuple[dict[str, Any], str]:
        from sam_backends.video.coco import coco_video_document

        started = time.perf_counter()
        folder = session.video_dir(self.ctx.temp.path / "api-video-work")
        copy = self.services.keep_copy(path, folder, path.name)
        video, chosen = self.services.open(copy, chosen)
        session.set_clip(Clip(video, path.name, copy, chosen))
        if isinstance(entries, WordsRequest):
            return self._track_words(session, video, path, entries, deadline, progress,
                                     started)
        for object_id, name, frame, prompt_set in entries:
            if frame >= video.num_frames:
                raise UserError(f"Frame {frame} is not among the {video.num_frames} processed "
                                f"frames (0 to {video.num_frames - 1}); check stride, start, "
                                "end and max_frames.", "No such frame")
            to_prompts(prompt_set).validate_for_image(video.size)
            session.add_object(object_id, name)
            session.set_prompts(object_id, frame, prompt_set)
        deadline.check("opening the video")
        progress(0.02, desc=f"Loading {self.ctx.spec(session.model_id).display_name}…")
        engine = self.services.tracker(session.model_id).start(video)
        for frame, object_id, prompt_set in session.prompted():
            with self.services.frame_step():
                session.track.set(frame, object_id,
                                  engine.add_prompts(frame, object_id, to_prompts(prompt_set)))
            deadline.check("prompting the objects")
        first = session.prompted_frames[0]
        total = video.num_frames + (1 if first > 0 else 0)
        job = session.begin_job("tracking")
        done, track_start = 0, time.perf_counter()
        pace = RunEstimate(total, self.services.pace.pace(session.model_id))
        try:
            for frame, masks in job.steps(engine.propagate_both(start_frame=first),
                                          around=self.services.frame_step):
                for object_id, mask in masks.items():
                    session.track.set(frame, object_id, mask)
                done += 1
                pace.step()
                text = values.progress_text(pace)
                progress((done, total), desc=text, unit="frames")
                deadline.check(f"tracking ({done} of {total} frames done)")
        finally:
            job.finish()
        track_s = time.perf_counter() - track_start
        self.services.record_run(track_s, session.model_id, done)
        out = self._folder()
        names = {o.object_id: o.name for o in session.objects}
        overlay = out / f"{safe_stem(path.name)}_overlay.mp4"
        write_overlay_mp4(video, session.track, overlay, copy_audio=False)
        coco = coco_video_document(video, session.track, object_names=names)
        coco["model_id"] = session.model_id
        self.ctx.observe.latency("track", session.model_id, track_s)
        coco["timings"] = {"track_s": round(track_s, 3),
                           "frames_per_s": round(done / track_s, 3) if track_s > 0 else None,
                           "total_s": round(time.perf_counter() - started, 3)}
        return coco, str(overlay)

    def _track_words(self, session: VideoSession, video: Any, path: Path, words: WordsRequest,
                     deadline: Deadline, progress: Any, started: float
                     ) -> tuple[dict[str, Any], str]:
        """Detect, track and re-detect what the words name (``TextTracker``); the same outputs
        as for clicks, with ``found_nothing`` and the objects' first and last frames."""
        from sam_backends.video.coco import coco_video_document
        from sam_backends.video.text_tracking import TextTracker
        from workbench.video.track_job import OWN_VIDEO_DETECTORS, frame_detector

        own = OWN_VIDEO_DETECTORS.get(words.detector)
        progress(0.02, desc="Loading the detector and the tracker…")
        if own is not None:  # SAM 3's video model detects and tracks; model_id is not used
            run = self.services.words_model(own).start(video, words.params)
        else:
            detector = frame_detector(self.ctx, words.detector)
            engine = self.services.tracker(session.model_id).start(video)
            run = TextTracker(engine, detector, words.params)
        job = session.begin_job("tracking")
        done, total, track_start = 0, video.num_frames, time.perf_counter()
        pace = RunEstimate(total, self.services.pace.pace(f"words:{session.model_id}"))
        try:
            for _ in job.steps(run.run(), around=self.services.frame_step):
                done += 1
                pace.step()
                text = values.progress_text(pace)
                progress((done, total), desc=text, unit="frames")
                deadline.check(f"tracking ({done} of {total} frames done)")
        finally:
            job.finish()
        track_s = time.perf_counter() - track_start
        self.services.record_run(track_s)
        result = run.result
        out = self._folder()
        overlay = out / f"{safe_stem(path.name)}_overlay.mp4"
        write_overlay_mp4(video, result.masks, overlay, copy_audio=False)
        coco = coco_video_document(video, result.masks, object_names=result.names())
        coco["model_id"] = own or session.model_id
        coco["found_nothing"] = result.found_nothing
        coco["tracked_objects"] = [
            {"id": o.object_id, "phrase": o.phrase, "first_frame": o.first_frame,
             "ended_at": o.ended_at, "score": round(o.score, 4)} for o in result.objects]
        coco["capped_frames"] = list(result.capped_frames)
        self.ctx.observe.latency("track", session.model_id, track_s)
        coco["timings"] = {"track_s": round(track_s, 3),
                           "detect_s": round(result.seconds["detect"], 3),
                           "frames_per_s": round(done / track_s, 3) if track_s > 0 else None,
                           "total_s": round(time.perf_counter() - started, 3)}
        return coco, str(overlay)

    def _folder(self) -> Path:
        folder = self.out_dir / uuid.uuid4().hex[:12]
        folder.mkdir(parents=True)
        old = sorted(self.out_dir.iterdir(), key=lambda p: p.stat().st_mtime)[:-KEEP_OUTPUTS]
        for stale in old:
            shutil.rmtree(stale, ignore_errors=True)
        return folder


def register_track_api(ctx: AppContext, blocks: gr.Blocks | None = None) -> TrackApi:
    """Hidden components and the named endpoint ``/track`` (call inside the Blocks)."""
    api = TrackApi(ctx, blocks)
    default = api.services.default_model() or ""
    with gr.Column(visible=False):
        video = gr.File(label="video", type="filepath")
        model_id = gr.Textbox(label="model_id", value=default)
        prompts = gr.Textbox(label="prompts_json", value="")
        stride = gr.Number(0, label="stride", precision=0)
        start_s = gr.Number(0, label="start_s")
        end_s = gr.Number(0, label="end_s")
        max_frames = gr.Number(0, label="max_frames", precision=0)
        coco = gr.JSON(label="coco")
        overlay = gr.File(label="overlay")
        button = gr.Button("track")
    # No Gradio concurrency limit: the tracking lane admits, bounds and refuses.
    button.click(api.track, [video, model_id, prompts, stride, start_s, end_s, max_frames],
                 [coco, overlay], api_name="track", concurrency_limit=None)
    return api
