"""What the video view and the ``/track`` API share: loaded trackers, the tracking lane, limits.

One ``VideoServices`` per app (``ctx.services.video``, ``workbench.services``), holding nothing
per user:

* ``tracker(model_id)``: video models (SAM 2.1, EdgeTAM) from ``sam_backends.video.create_tracker``,
  loaded the way ``AppContext`` loads image backends (the catalogue file in the checkpoints
  folder or the operator's own file, the app's device and precision), at most
  ``MAX_TRACKERS`` at once. A tracker holds no per-video state (sessions are values), so one
  loaded model serves every user.
* ``words_model()``: SAM 3's own video model (``create_text_video_model``), which finds and
  tracks words by itself; it shares the ``MAX_TRACKERS`` bound (one pool of video models), so
  the memory plan's count of loaded video models stays true.
* ``lane``: tracking jobs (page and API together) run one at a time with a few waiting; more
  are refused at once with "busy, retry in N s" (``workbench.lanes``).
* ``frame_step()``: every frame a job computes is admitted through ``ctx.encoder_lane``, the
  lane of the image encoders, so one user's tracking interleaves with other users' image
  encodes (each waits at most one frame) instead of starving them for a minute; on the CPU a
  frame gives way to clicks as an encode does (``sam_backends.speed.give_way``).
* ``open(path, selection)``: ``open_video`` with the app's ``VideoLimits`` (checked on the
  header, before any frame is decoded) and an automatic stride.
"""

from __future__ import annotations

import contextlib
import math
import shutil
from pathlib import Path
from typing import Any, Iterator

from sam_backends.video import Video, VideoLimitError, VideoLimits, open_video
from workbench.context import AppContext, BackendPool
from workbench.errors import UserError
from workbench.estimates import PaceHistory
from workbench.exports import safe_stem
from workbench.lanes import WorkLane
from workbench.video.state import Selection

MAX_TRACKERS = 2  # the compare view tracks with two models
WORDS_MODEL_PREFIX = "words:"  # pool key of a words-tracking video model (SAM 3)
TARGET_FPS = 5.0  # automatic stride: about this many processed frames per second of video
DEFAULT_MAX_FRAMES = 50  # the page's default; a 10 s clip at 5 fps
TRACK_WAITING = 4  # tracking jobs waiting behind the running one (page and API together)
TYPICAL_TRACK_S = 60.0  # for the retry hint until measured
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".webm", ".mkv")

def auto_stride(source_fps: float, target_fps: float = TARGET_FPS) -> int:
    """The stride that brings ``source_fps`` down to about ``target_fps`` (at least 1)."""
    if not math.isfinite(source_fps) or source_fps <= 0:
        return 1
    return max(1, round(source_fps / target_fps))


class VideoServices:
    """See the module docstring."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.trackers = BackendPool(MAX_TRACKERS, self._load)
        self.lane = WorkLane("video tracking", 1, TRACK_WAITING, lambda: self.typical_s)
        self.typical_s = TYPICAL_TRACK_S
        self.pace = PaceHistory()  # seconds per tracked frame per model, measured here

    # --- models ------------------------------------------------------------------------------

    def model_ids(self) -> list[str]:
        """The offered models that can track video (SAM 2.1, EdgeTAM), in the app's order."""
        from sam_backends.video.tracker import can_track

        return [m for m in self.ctx.model_ids if can_track(self.ctx.spec(m))]

    def proposal(self) -> tuple[str, str] | None:
        """(model id, why in one line) of the model the Video view proposes, or None.

        On a CPU without native bf16 (``accel.cpu_has_native_bf16``), where SAM 2.1 tracks at
        seconds a frame, the first offered and present model whose family has a
        ``video_proposal`` (EdgeTAM) is proposed; elsewhere none is. The device is resolved
        (which imports torch) only once such a model is found, so building the page without
        one imports no torch.
        """
        from sam_backends.families import get_family
        from sam_backends.speed import accel

        if accel.cpu_has_native_bf16():
            return None
        for model_id in self.model_ids():
            why = get_family(self.ctx.spec(model_id).family).video_proposal
            if why and self.ctx.status(model_id).present:
                from sam_backends.device import resolve_device

                if resolve_device(self.ctx.config.device) != "cpu":
                    return None
                return model_id, why
        return None

    def default_model(self) -> str | None:
        """The proposed model (``proposal``), else the app's default when it tracks video and
        is present, else the first present."""
        ids = self.model_ids()
        if not ids:
            return None
        proposed = self.proposal()
        if proposed is not None:
            return proposed[0]
        preferred = self.ctx.default_model()
        if preferred in ids and self.ctx.status(preferred).present:
            return preferred
        return next((m for m in ids if self.ctx.status(m).present), ids[0])

    def check_model(self, model_id: str | None) -> str:
        """``model_id`` if it is offered and can track; a ``UserError`` otherwise."""
        ids = self.model_ids()
        if not ids:
            raise UserError("This server offers no model that tracks video (SAM 2.1, EdgeTAM).",
                            "No video model")
        model_id = (model_id or "").strip() or self.default_model()
        if model_id not in ids:
            self.ctx.entry(model_id)  # an unknown id: the usual "Available: ..." message
            raise UserError(f"{self.ctx.spec(model_id).display_name} cannot track video; "
                            f"choose one of: {', '.join(ids)}.", "Cannot track")
        return model_id

    def tracker(self, model_id: str) -> Any:
        """The loaded tracker for ``model_id`` (loads it on first use).

        Raises:
            CheckpointMissingError, CheckpointCorruptError, VideoTrackingError, ...
        """
        return self.trackers.get(self.check_model(model_id))

    def words_model(self, model_id: str) -> Any:
        """The loaded words-tracking video model of ``model_id`` (SAM 3), loaded on first use.

        Raises:
            UserError: the model is not offered here or has no such video model.
            CheckpointMissingError, CheckpointCorruptError, ...: as for trackers.
        """
        from sam_backends.video.tracker import can_track_words

        if model_id not in self.ctx.model_ids:
            raise UserError(f"This server does not offer {model_id}; use another detector.",
                            "Not offered")
        if not can_track_words(self.ctx.spec(model_id)):
            raise UserError(f"{self.ctx.spec(model_id).display_name} has no video model that "
                            "tracks words by itself.", "Cannot track words")
        return self.trackers.get(WORDS_MODEL_PREFIX + model_id)

    def _load(self, key: str) -> Any:
        from sam_backends.video.tracker import create_text_video_model, create_tracker

        words = key.startswith(WORDS_MODEL_PREFIX)
        model_id = key[len(WORDS_MODEL_PREFIX):] if words else key
        entry = self.ctx.entry(model_id)
        config = self.ctx.config
        precision = config.precision if config.precision not in ("fp16",) else None
        create = create_text_video_model if words else create_tracker
        return create(entry.spec, checkpoint=entry.checkpoint, device=config.device,
                      precision=precision, checkpoint_dir=config.checkpoint_dir)

    @contextlib.contextmanager
    def frame_step(self) -> Iterator[None]:
        """Admit one frame of tracking work through the shared encoder lane; on the CPU it gives
        way to clicks as encodes do (``AppContext.giving_way``)."""
        from sam_backends.device import resolve_device

        device = resolve_device(self.ctx.config.device)
        with self.ctx.encoder_lane.admit(), self.ctx.giving_way(device):
            yield

    def record_run(self, seconds: float, model_id: str | None = None, frames: int = 0) -> None:
        """Remember how long a job took (the retry hint of the lane) and, given the model and
        its frame count, its pace per frame (the next run's estimate before its first frame)."""
        if seconds > 0:
            self.typical_s = 0.7 * self.typical_s + 0.3 * seconds
        if model_id is not None:
            self.pace.record(model_id, seconds, frames)

    # --- clips -------------------------------------------------------------------------------

    @property
    def limits(self) -> VideoLimits:
        config = self.ctx.config
        return VideoLimits(max_duration_s=float(config.video_max_duration_s),
                           max_frames=int(config.video_max_frames),
                           max_pixels=int(config.video_max_pixels),
                           max_file_bytes=int(config.video_file_bytes))

    def keep_copy(self, path: Path, folder: Path, name: str) -> Path:
        """Copy an upload into the session's own folder (checked for size first).

        Gradio sweeps its upload cache every few minutes; the lazy decoder reads the file
        for as long as the clip is open, so the session keeps its own copy.
        """
        if not path.is_file():
            raise UserError("The uploaded file is gone; upload it again.", "No video")
        size = path.stat().st_size
        limit = self.limits.max_file_bytes
        if size > limit:
            raise VideoLimitError(f"{name} is {size / 2**20:.1f} MiB, more than the limit of "
                                  f"{limit / 2**20:.0f} MiB. Cut or compress it first.")
        suffix = Path(name).suffix.lower()
        target = folder / f"{safe_stem(name)}{suffix if suffix in VIDEO_SUFFIXES else ''}"
        for old in folder.iterdir():
            if old.is_file() and old != target:
                old.unlink(missing_ok=True)
        shutil.copyfile(path, target)
        return target

    def open(self, path: Path, selection: Selection) -> tuple[Video, Selection]:
        """Open ``path`` with ``selection``; stride 0 means automatic (about ``TARGET_FPS``).

        The automatic stride needs the source rate, so the header is read once with a very
        large stride (one frame, all limits still checked), then the clip is opened for real.

        Raises:
            VideoError (VideoFormatError, VideoLimitError, VideoDecodeError), UserError.
        """
        limits = self.limits
        max_frames = selection.max_frames
        if max_frames is not None and max_frames > limits.max_frames:
            raise UserError(f"At most {limits.max_frames} frames can be processed on this "
                            f"server (max frames is {max_frames}).", "Too many frames")
        stride = selection.stride
        if stride == 0:
            first = open_video(path, stride=10**6, start_s=selection.start_s,
                               end_s=selection.end_s, max_frames=1, limits=limits)
            stride = auto_stride(first.source_fps)
        chosen = Selection(stride, selection.start_s, selection.end_s, max_frames)
        video = open_video(path, limits=limits, **chosen.as_kwargs())
        return video, chosen
