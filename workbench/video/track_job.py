"""One video tracked from start to files, for programs: the use case behind ``POST /v1/video``.

Given a clip on disk and either words (``TextTrackParams``: detect, track, re-detect; see
``sam_backends.video.text_tracking``) or per-object point/box prompts on chosen frames, it
tracks through the selected part of the clip and writes one output:

* ``mp4``: the clip with every object drawn over it (H.264, yuv420p, faststart);
* ``frames``: a ZIP of those overlay frames as PNGs (``frame_<source index>.png``);
* ``masks``: a ZIP of one black/white PNG per object and frame;
* ``coco_rle``: standard COCO JSON (one image per processed frame, RLE annotations with the
  object id as ``track_id``; ``sam_backends.video.coco``).

Besides the file it reports, per object, every frame where its mask is not empty with the
mask's box and area, and the detector's score on the frames where the words found it.

It runs as the page's tracking does: one job at a time in the tracking lane (page and API
together; a few wait, more are refused with a retry hint), every frame admitted through the
encoder lane, so one clip does not starve other people's clicks. ``cancelled()`` is read at
every frame; a cancelled or failed run removes its folder, so no partial file is left.
"""

from __future__ import annotations

import io
import shutil
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam_backends.masks import mask_box
from workbench.context import AppContext
from workbench.drawing import RGB, SPEC
from workbench.errors import UserError
from workbench.lanes import Deadline
from workbench.objects import PromptSet
from workbench.video.state import Selection, to_prompts

OUTPUT_FORMATS = ("mp4", "frames", "masks", "coco_rle")
DETECTORS = ("auto", "sam3", "owlv2", "sam3-video")
# SAM 3's own video model finds and tracks the words itself (no separate tracking model).
OWN_VIDEO_DETECTORS = {"sam3-video": "sam3"}
SUFFIXES = {"mp4": ".mp4", "frames": ".zip", "masks": ".zip", "coco_rle": ".json"}
MEDIA_TYPES = {"mp4": "video/mp4", "frames": "application/zip", "masks": "application/zip",
               "coco_rle": "application/json"}


class JobStopped(Exception):
    """The caller cancelled; the run's folder is already removed."""


@dataclass(frozen=True)
class ObjectPrompt:
    """Clicks and/or a box for one object on one processed frame (pixels of the frame)."""

    object_id: int
    name: str
    frame: int
    prompts: PromptSet


@dataclass(frozen=True)
class VideoJobSpec:
    """What to track and what to write (validated by the REST schema before it gets here).

    Exactly one of ``text`` (a ``TextTrackParams``) and ``objects`` is given.
    ``mask_colour``: one colour for every object (None: each object its own, as the page);
    ``mask_opacity``: the fill's opacity in [0, 1].
    """

    model_id: str | None
    selection: Selection
    output_format: str = "mp4"
    text: Any = None
    detector: str = "auto"
    objects: tuple[ObjectPrompt, ...] = ()
    mask_colour: RGB | None = None
    mask_opacity: float = SPEC.fill_opacity

    def __post_init__(self) -> None:
        if self.output_format not in OUTPUT_FORMATS:
            raise UserError(f"output_format must be one of {', '.join(OUTPUT_FORMATS)}.",
                            "Unknown output")
        if (self.text is None) == (not self.objects):
            raise UserError("Give either a text prompt or objects with points/boxes, not both "
                            "and not neither.", "No prompt")
        if self.detector not in DETECTORS:
            raise UserError(f"detector must be one of {', '.join(DETECTORS)}.", "Unknown detector")
        own = OWN_VIDEO_DETECTORS.get(self.detector)
        if own is not None and self.text is None:
            raise UserError(f'detector "{self.detector}" tracks words; for points and boxes '
                            "choose a tracking model and leave the detector out.",
                            "Words only")
        if own is not None and (self.model_id or own) != own:
            raise UserError(f'detector "{self.detector}" tracks with its own video model; leave '
                            f'"model" out (or set it to "{own}").', "Model not used")


@dataclass(frozen=True)
class FrameRecord:
    """One object on one processed frame: where and how big, and the detector's score there
    (None on frames where it was tracked, not detected)."""

    frame: int
    time_s: float
    box: tuple[int, int, int, int]
    area: int
    score: float | None = None


@dataclass(frozen=True)
class TrackedObjectRecord:
    object_id: int
    name: str
    frames: tuple[FrameRecord, ...]
    first_frame: int | None = None
    ended_at: int | None = None


@dataclass(frozen=True)
class VideoJobOutcome:
    """The file written and what it shows. ``found_nothing``: words that matched nothing (a
    successful, empty result)."""

    path: Path
    output_format: str
    media_type: str
    objects: tuple[TrackedObjectRecord, ...]
    num_frames: int
    fps: float
    size: tuple[int, int]
    found_nothing: bool = False
    capped_frames: tuple[int, ...] = ()
    seconds: dict[str, float] = field(default_factory=dict)


def run_video_job(ctx: AppContext, spec: VideoJobSpec, source: Path, folder: Path,
                  progress: Callable[[float], None], cancelled: Callable[[], bool]
                  ) -> VideoJobOutcome:
    """Track ``source`` as ``spec`` says and write the output into ``folder`` (created; removed
    again if the run fails or is cancelled).

    Raises:
        JobStopped: ``cancelled()`` turned true. UserError, VideoError, PromptError,
        LaneFullError, checkpoint errors: as the page's tracking.
    """
    services = ctx.services.video
    own = OWN_VIDEO_DETECTORS.get(spec.detector) if spec.text is not None else None
    model_id = own if own is not None else services.check_model(spec.model_id)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        deadline = Deadline(ctx.config.video_timeout_s, "The video job")
        with services.lane.admit(deadline, cancelled, patient=True):
            return _run(ctx, spec, model_id, source, folder, progress, cancelled)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _run(ctx: AppContext, spec: VideoJobSpec, model_id: str, source: Path, folder: Path,
         progress: Callable[[float], None], cancelled: Callable[[], bool]) -> VideoJobOutcome:
    services = ctx.services.video
    started = time.perf_counter()
    video, _ = services.open(source, spec.selection)
    if spec.detector in OWN_VIDEO_DETECTORS and spec.text is not None:
        track: Any = _OwnWordsRun(services.words_model(model_id).start(video, spec.text))
    elif spec.text is not None:
        track = _TextRun(ctx, spec, services.tracker(model_id).start(video))
    else:
        track = _PromptRun(spec, services.tracker(model_id).start(video))
    done, total = 0, video.num_frames
    steps = track.steps()
    while True:
        if cancelled():
            raise JobStopped("cancelled")
        with services.frame_step():
            step = next(steps, None)
        if step is None:
            break
        done += 1
        progress(min(0.95, 0.95 * done / max(total, 1)))
    track_s = time.perf_counter() - started
    services.record_run(track_s)
    masks = track.masks()
    path = folder / f"result{SUFFIXES[spec.output_format]}"
    _write(spec, video, masks, track.names(), path)
    progress(1.0)
    records = _records(video, masks, track.names(), track.scores(), track.lifetimes())
    return VideoJobOutcome(
        path, spec.output_format, MEDIA_TYPES[spec.output_format], records, video.num_frames,
        float(video.fps), tuple(int(v) for v in video.size),
        found_nothing=spec.text is not None and not records,
        capped_frames=track.capped_frames(),
        seconds={"track_s": round(track_s, 3),
                 "total_s": round(time.perf_counter() - started, 3), **track.detect_seconds()})


class _PromptRun:
    """Clicks/boxes per object, then tracking both ways from the first prompted frame."""

    def __init__(self, spec: VideoJobSpec, engine: Any) -> None:
        self.spec, self.engine = spec, engine
        video = engine.video
        for entry in spec.objects:
            if not 0 <= entry.frame < video.num_frames:
                raise UserError(f"Frame {entry.frame} is not among the {video.num_frames} "
                                f"processed frames (0 to {video.num_frames - 1}); check "
                                "frame_stride, start_time, end_time and max_frames.",
                                "No such frame")
            to_prompts(entry.prompts).validate_for_image(video.size)

    def steps(self):
        for entry in self.spec.objects:
            self.engine.add_prompts(entry.frame, entry.object_id, to_prompts(entry.prompts))
            yield entry
        first = min(entry.frame for entry in self.spec.objects)
        yield from self.engine.propagate_both(start_frame=first)

    def masks(self) -> Any:
        return self.engine.masks

    def names(self) -> dict[int, str]:
        return {entry.object_id: entry.name for entry in self.spec.objects}

    def scores(self) -> dict[tuple[int, int], float]:
        return {}

    def lifetimes(self) -> dict[int, tuple[int | None, int | None]]:
        return {}

    def capped_frames(self) -> tuple[int, ...]:
        return ()

    def detect_seconds(self) -> dict[str, float]:
        return {}


class _TextRun:
    """Words: ``TextTracker`` with SAM 3 (when offered and present) or OWLv2 as the detector."""

    def __init__(self, ctx: AppContext, spec: VideoJobSpec, engine: Any) -> None:
        from sam_backends.video.text_tracking import TextTracker

        self.tracker = TextTracker(engine, frame_detector(ctx, spec.detector), spec.text)
        self.detections: dict[tuple[int, int], float] = {}

    def steps(self):
        return self.tracker.run()

    def masks(self) -> Any:
        return self.tracker.result.masks

    def names(self) -> dict[int, str]:
        return self.tracker.result.names()

    def scores(self) -> dict[tuple[int, int], float]:
        return {(obj.object_id, obj.first_frame): obj.score
                for obj in self.tracker.result.objects}

    def lifetimes(self) -> dict[int, tuple[int | None, int | None]]:
        return {obj.object_id: (obj.first_frame, obj.ended_at)
                for obj in self.tracker.result.objects}

    def capped_frames(self) -> tuple[int, ...]:
        return tuple(self.tracker.result.capped_frames)

    def detect_seconds(self) -> dict[str, float]:
        return {"detect_s": round(self.tracker.result.seconds["detect"], 3)}


class _OwnWordsRun(_TextRun):
    """Words found and tracked by a video model of its own (SAM 3): detected on every frame,
    so every frame where an object is seen carries its score."""

    def __init__(self, run: Any) -> None:
        self.tracker = run

    def scores(self) -> dict[tuple[int, int], float]:
        return dict(self.tracker.scores)

    def detect_seconds(self) -> dict[str, float]:
        return {}  # detection and tracking are one step of the model


def frame_detector(ctx: AppContext, choice: str) -> Any:
    """The ``FrameDetector`` for ``choice``: "sam3", "owlv2", or "auto" (SAM 3 when this app
    offers it and its weights are present, else OWLv2).

    Raises:
        UserError: SAM 3 asked for but not offered here.
    """
    from sam_backends.video.text_tracking import Owlv2FrameDetector, Sam3FrameDetector
    from workbench.proposals.engines import SAM3, detector

    if choice in OWN_VIDEO_DETECTORS:
        raise UserError(f'"{choice}" tracks by itself; it is not a frame detector.',
                        "Not a frame detector")

    sam3_ready = SAM3 in ctx.model_ids and ctx.status(SAM3).present
    if choice == "sam3" or (choice == "auto" and sam3_ready):
        if SAM3 not in ctx.model_ids:
            raise UserError("This server does not offer SAM 3; use detector \"owlv2\" (or "
                            "\"auto\").", "No SAM 3")
        return Sam3FrameDetector(ctx.backend(SAM3))
    return Owlv2FrameDetector(detector(ctx))


def _records(video: Any, masks: Any, names: dict[int, str],
             scores: dict[tuple[int, int], float],
             lifetimes: dict[int, tuple[int | None, int | None]]
             ) -> tuple[TrackedObjectRecord, ...]:
    per_object: dict[int, list[FrameRecord]] = {}
    for frame in sorted(masks):
        for object_id, mask in masks[frame].items():
            box = mask_box(mask)
            if box is None:
                continue
            per_object.setdefault(object_id, []).append(FrameRecord(
                int(frame), float(video.timestamps_s[frame]), box, int(np.count_nonzero(mask)),
                scores.get((object_id, int(frame)))))
    out = []
    for object_id in sorted(set(per_object) | set(lifetimes)):
        first, ended = lifetimes.get(object_id, (None, None))
        out.append(TrackedObjectRecord(object_id, names.get(object_id, f"object {object_id}"),
                                       tuple(per_object.get(object_id, ())), first, ended))
    return tuple(out)


def _write(spec: VideoJobSpec, video: Any, masks: Any, names: dict[int, str],
           path: Path) -> None:
    from sam_backends.video import exports
    from workbench.video.exports import overlay_frame, write_overlay_mp4

    style = dict(colour=spec.mask_colour, opacity=spec.mask_opacity)
    if spec.output_format == "mp4":
        write_overlay_mp4(video, masks, path, copy_audio=False, **style)
    elif spec.output_format == "masks":
        exports.write_mask_zip(masks, path)
    elif spec.output_format == "coco_rle":
        exports.write_rle_json(video, masks, path, object_names=names)
    else:
        from PIL import Image

        from sam_backends.video.coco import frame_file_name

        partial = path.with_name(f".{path.name}.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
            for index in range(video.num_frames):
                frame = video.frame(index)
                drawn = overlay_frame(frame, masks[index], **style) if index in masks else frame
                buffer = io.BytesIO()
                Image.fromarray(drawn).save(buffer, format="PNG")
                archive.writestr(frame_file_name(int(video.frame_indices[index])),
                                 buffer.getvalue())
        partial.replace(path)
