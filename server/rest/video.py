"""``POST /v1/video`` and ``POST /v1/video/upload``: a clip tracked as a background job.

Thin over ``workbench.video.track_job``: the route checks the key (scope ``video``), reads the
clip (a ``data:video/...;base64,`` URI, an allowed ``https://`` URL, or a multipart ``file``;
at most the Video view's file limit), writes it into a private job folder under the run's
temp area (counted against its bound), and queues a job of kind ``video`` in the same
``JobManager`` as ``/v1/jobs`` (202 with the job; poll ``GET /v1/jobs/{id}``, cancel with
``DELETE``; the same per-key limits and round-robin turns). The finished job's ``result`` is a
``VideoResult`` whose ``file_url`` is served by ``GET /v1/files/{token}`` to the same key.

A job's folder is removed when it ends, whatever the end: the runner removes it after moving
the output into the file store, and a job cancelled before it ran is released by the
manager's ``on_release`` hook, so a cancelled clip leaves no file behind.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from pydantic import ValidationError

from server.rest.images import UrlFetcher
from server.rest.jobs import JobCanceled, JobManager
from server.rest.routes_jobs import translated
from server.rest.schemas import ErrorBody, JobState
from server.rest.service import RestError, SegmentService
from server.rest.video_schemas import (
    VideoFrameRecord,
    VideoObjectRecord,
    VideoRequest,
    VideoResult,
)
from workbench.video.services import VIDEO_SUFFIXES

SCOPE = "video"
KIND = "video"
DATA_URI = re.compile(r"data:(?P<type>[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+)(?P<params>(;[^;,]*)*),")
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or unknown API key"},
    403: {"model": ErrorBody, "description": "the key lacks the video scope"},
    413: {"model": ErrorBody, "description": "the clip is larger than the server's limit"},
    422: {"model": ErrorBody, "description": "a field is invalid (named in the error)"},
    503: {"model": ErrorBody, "description": "too many unfinished jobs; see Retry-After"},
}


class StoredVideoJob(VideoRequest):
    """A queued video job: the request, less the clip, plus where the clip was written."""

    folder: str


class VideoJobs:
    """Reads clips, queues jobs and runs them (see the module docstring)."""

    def __init__(self, service: SegmentService) -> None:
        self.service = service
        ctx = service.ctx
        self.max_bytes = int(ctx.config.video_file_bytes)
        policy = dataclasses.replace(service.fetcher.policy, max_bytes=self.max_bytes)
        self.fetcher = UrlFetcher(policy)

    # -- submitting ---------------------------------------------------------------------------

    def submit(self, manager: JobManager, body: VideoRequest, data: bytes | None,
               key: Any, name: str = "") -> JobState:
        """Queue ``body`` with the clip ``data`` (None: read ``body.video``) in ``manager``.
        ``name``: the upload's file name, whose suffix (.mov, .webm, ...) the clip keeps;
        otherwise it is stored as .mp4 (the decoder reads the container from the bytes)."""
        try:
            if data is None:
                data = self._clip_bytes(body.video)
            elif body.video is not None:
                raise RestError(422, "invalid_request", "Send the clip once: as the file part "
                                "or as video, not both.", "video")
            self._check_spec(body)
            ctx = self.service.ctx
            ctx.temp.reserve(len(data), "The uploaded clip")
            folder = ctx.temp.folder("api-video-jobs")
            suffix = Path(name).suffix.lower()
            (folder / f"clip{suffix if suffix in VIDEO_SUFFIXES else '.mp4'}").write_bytes(data)
        except Exception as exc:  # noqa: BLE001 - every refusal leaves as one error body
            raise self.service.error(exc) from None
        job = StoredVideoJob(**body.model_dump(exclude={"video"}), folder=str(folder))
        try:
            with translated():
                return manager.submit(job, key)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _clip_bytes(self, text: str | None) -> bytes:
        if not text:
            raise RestError(422, "invalid_request", "Send the clip: video as a data: URI, an "
                            "https:// URL, or POST /v1/video/upload with a file part.", "video")
        if not text.startswith("data:"):
            if not text.startswith(("https://", "http://")):
                raise RestError(422, "bad_video", "video must be a data: URI "
                                "(data:video/mp4;base64,...) or an https:// URL.", "video")
            timeout = self.service.ctx.config.request_timeout_s
            return self.fetcher.fetch(text, timeout_s=timeout)
        match = DATA_URI.match(text)
        if match is None or ";base64" not in match.group("params").lower():
            raise RestError(422, "bad_video", "video must be a base64 data: URI such as "
                            "data:video/mp4;base64,AAAA...", "video")
        if not match.group("type").lower().startswith("video/"):
            raise RestError(422, "bad_video", f"The data: URI holds {match.group('type')!r}, "
                            "not a video; send a video/* media type (MP4, MOV, WebM, MKV).",
                            "video")
        payload = text[match.end():]
        if len(payload) // 4 * 3 > self.max_bytes + 3:
            raise self._too_big()
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise RestError(422, "bad_video", "The data: URI's base64 is invalid (only A-Z, "
                            "a-z, 0-9, +, / and = padding).", "video") from None
        if len(data) > self.max_bytes:
            raise self._too_big()
        return data

    def read_upload(self, file: UploadFile) -> bytes:
        data = file.file.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            raise self._too_big("file")
        return data

    def _too_big(self, field: str = "video") -> RestError:
        return RestError(413, "payload_too_large", f"The clip is larger than this server's "
                         f"limit of {self.max_bytes:,} bytes; cut or compress it.", field)

    def _check_spec(self, body: VideoRequest) -> None:
        """Refuse at once what would fail later: the model, the phrases, the prompts."""
        self._spec(body)
        self.service.ctx.services.video.check_model(body.model)

    def _spec(self, body: VideoRequest) -> Any:
        from sam_backends.video.text_tracking import TextTrackParams
        from workbench.drawing import hex_colour
        from workbench.objects import PromptSet
        from workbench.video.state import Selection
        from workbench.video.track_job import ObjectPrompt, VideoJobSpec

        limits = self.service.ctx.limits
        text = None
        if body.prompt is not None:
            text = TextTrackParams(body.prompt, threshold=body.threshold,
                                   re_detect_every=body.re_detect_every)
        objects = []
        for entry in body.objects:
            if len(entry.points) > limits.max_points:
                raise RestError(422, "too_many_points", f"An object has {len(entry.points)} "
                                f"points; this server takes at most {limits.max_points}.",
                                "objects")
            labels = entry.labels if entry.labels is not None else [1] * len(entry.points)
            prompts = PromptSet(points=tuple((float(x), float(y)) for x, y in entry.points),
                                labels=tuple(int(v) for v in labels),
                                box=tuple(float(v) for v in entry.box) if entry.box else None)
            objects.append(ObjectPrompt(entry.id, entry.name or f"object {entry.id}",
                                        entry.frame, prompts))
        selection = Selection(body.frame_stride, float(body.start_time), body.end_time,
                              body.max_frames or None)
        return VideoJobSpec(
            body.model, selection, body.output_format, text, body.detector, tuple(objects),
            hex_colour(body.mask_color) if body.mask_color else None,
            body.mask_opacity if body.mask_opacity is not None else 0.5)

    # -- running ------------------------------------------------------------------------------

    def run(self, job: StoredVideoJob, key: Any, progress: Any, cancelled: Any) -> VideoResult:
        from workbench.video.track_job import JobStopped, run_video_job

        folder = Path(job.folder)
        try:
            spec = self._spec(job)
            clip = next(folder.glob("clip.*"))
            outcome = run_video_job(self.service.ctx, spec, clip, folder / "out", progress,
                                    cancelled)
            data = outcome.path.read_bytes()
            suffix = outcome.path.suffix
            token = self.service.outputs.add(key.key_id, data, suffix, outcome.media_type)
        except JobStopped:
            raise JobCanceled("stopped between frames") from None
        except Exception as exc:  # noqa: BLE001 - a job's failure is an error body
            raise self.service.error(exc) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        from server.rest.service import FILES_PATH

        height, width = outcome.size
        return VideoResult(
            model=self.service.ctx.services.video.check_model(job.model),
            output_format=outcome.output_format, file_url=FILES_PATH + token,
            media_type=outcome.media_type, file_bytes=len(data), num_frames=outcome.num_frames,
            fps=outcome.fps, width=width, height=height, found_nothing=outcome.found_nothing,
            capped_frames=list(outcome.capped_frames),
            objects=[VideoObjectRecord(
                id=o.object_id, name=o.name, first_frame=o.first_frame, ended_at=o.ended_at,
                frames=[VideoFrameRecord(frame=f.frame, time_s=f.time_s, box=list(f.box),
                                         area=f.area, score=f.score) for f in o.frames])
                for o in outcome.objects],
            timings=outcome.seconds)

    @staticmethod
    def release(job: StoredVideoJob) -> None:
        """A job dropped before it ran: its clip goes."""
        shutil.rmtree(job.folder, ignore_errors=True)


def video_router(jobs: VideoJobs, manager: JobManager, security: Any) -> APIRouter:
    router = APIRouter(tags=["video"], responses=ERRORS)
    requires_key = Depends(security.require(SCOPE))

    @router.post("/video", status_code=202, response_model=JobState)
    def submit_video(body: VideoRequest, key: Any = requires_key) -> JobState:
        """Track a clip: by words (``prompt``: detect, track, re-detect every
        ``re_detect_every`` frames) or by points/boxes (``objects``). Answers at once with the
        job (``starting``); poll ``GET /v1/jobs/{id}``; ``DELETE`` cancels (its files are
        removed). The result names the output file (``GET /v1/files/{token}``) and, per object,
        its box, area and score on every frame where it is seen."""
        return jobs.submit(manager, body, None, key)

    @router.post("/video/upload", status_code=202, response_model=JobState)
    def submit_video_upload(file: UploadFile = File(description="the clip"),
                            request: str = Form(default="{}", description=(
                                "VideoRequest as JSON text, without video")),
                            key: Any = requires_key) -> JobState:
        """``POST /v1/video`` with the clip as a multipart file part."""
        try:
            body = VideoRequest.model_validate_json(request)
        except ValidationError as exc:
            from server.rest.app import describe_errors

            field, message = describe_errors(exc.errors(), prefix=("request",))
            raise RestError(422, "invalid_request", message, field) from None
        return jobs.submit(manager, body, jobs.read_upload(file), key, file.filename or "")

    return router

