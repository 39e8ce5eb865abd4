"""``create_tracker``: a video model, loaded once, serving any number of sessions.

The model comes from the family's ``load_video()`` (``families/sam2/video.py``: the upstream
``SAM2VideoPredictor`` built from the catalogue's hydra config, loaded through the project's
safe, strict checkpoint loading; ``families/edgetam/video.py``: transformers'
``EdgeTamVideoModel`` from a Hugging Face folder); a family says it can track with
``Family.video``, and its ``start_video(tracker, video)`` opens a session (SAM 2.1:
``VideoSession``; EdgeTAM: ``EdgeTamVideoSession``, with the same public API). A tracker holds
no per-video state: each ``tracker.start(video)`` returns an independent session. Calls into
the model are serialised by one lock per tracker (one CPU cannot run two propagations faster
than one).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ..device import EXACT_PRECISION, FAST_FP32_PRECISION, resolve_device, resolve_precision
from ..families import family_module, get_family
from ..registry import ModelSpec, catalogue, get_spec
from ..weights import checkpoints
from .errors import VideoTrackingError
from .source import Video

DEFAULT_FEATURE_CACHE_FRAMES = 2
VIDEO_PRECISIONS = (EXACT_PRECISION, "bf16")  # "bf16": encoder and memory attention in bf16


def can_track(spec: ModelSpec) -> bool:
    """True when the model's family has a video loader and its catalogue entry offers video."""
    return get_family(spec.family).video and spec.capabilities.video


def can_track_words(spec: ModelSpec) -> bool:
    """True when the model's family finds and tracks words in video by itself (SAM 3)."""
    return get_family(spec.family).text_video


def video_model_ids() -> list[str]:
    """Catalogue ids of the models that can track video."""
    return [spec.model_id for spec in catalogue() if can_track(spec)]


def create_tracker(
    model_id: str | ModelSpec,
    checkpoint: str | Path | None = None,
    device: str | None = None,
    precision: str | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    download: bool = False,
    feature_cache_frames: int = DEFAULT_FEATURE_CACHE_FRAMES,
) -> VideoTracker:
    """Build a tracker for a model that tracks video (arguments as ``create_backend``).

    Args:
        checkpoint: SAM 2.1: a checkpoint file; a Hugging Face model (EdgeTAM): its folder.
        precision: "fp32": masks equal upstream ``SAM2VideoPredictor``'s (EdgeTAM:
            transformers' documented video loop's) pixel for pixel; "bf16": bf16 image encoder
            and memory attention (EdgeTAM: bf16 autocast); "auto"/None: bf16 where it is
            native, else fp32; "fp32-fast" (the clicks' fp32 fast path) tracks in exact fp32.
        feature_cache_frames: image features kept per session (about 16 MiB a frame).

    Raises:
        VideoTrackingError: the model cannot track video (SAM 1, GrabCut) or the precision is
            not available.
        UnknownModelError, BackendUnavailableError, CheckpointMissingError,
        CheckpointHashMismatchError, CheckpointCorruptError: as ``create_backend``.
    """
    spec = model_id if isinstance(model_id, ModelSpec) else get_spec(model_id)
    if not can_track(spec):
        raise VideoTrackingError(
            f"{spec.display_name} cannot track video; choose a model that can "
            f"({', '.join(video_model_ids())})."
        )
    resolved_device = resolve_device(device)
    # "auto" picks bf16 only for a family whose fast path is measured (``Family.precisions``).
    offered = tuple(p for p in VIDEO_PRECISIONS if p in get_family(spec.family).precisions)
    resolved_precision = resolve_precision(precision, resolved_device, offered)
    if resolved_precision == FAST_FP32_PRECISION:
        # The clicks' fp32 fast path (decoder layouts, OpenCV upscaling) has no video
        # counterpart: a tracked frame's time is the encoder and the memory attention.
        resolved_precision = EXACT_PRECISION
    if resolved_precision not in VIDEO_PRECISIONS:
        raise VideoTrackingError(
            f"Precision {resolved_precision!r} is not available for video; use fp32 or bf16."
        )
    path = _model_path(spec, checkpoint, checkpoint_dir, download)
    model = family_module(spec.family).load_video(spec, path, resolved_device,
                                                  resolved_precision)
    return VideoTracker(spec, model, resolved_device, resolved_precision, feature_cache_frames)


def _model_path(spec: ModelSpec, checkpoint: str | Path | None,
                checkpoint_dir: str | Path | None, download: bool) -> Path:
    """The checkpoint file, or for a Hugging Face model its folder, as ``create_backend``
    finds them."""
    if spec.hf_repo is not None:
        from ..text import hub

        folder = checkpoint if checkpoint is not None else checkpoints.custom_checkpoint(spec)
        return hub.resolve_folder(hub.for_spec(spec), folder, checkpoint_dir, download=download)
    return checkpoints.resolve_checkpoint(spec, checkpoint, checkpoint_dir, download=download)


class VideoTracker:
    """A loaded video model; ``start(video)`` opens a session on a ``Video``."""

    def __init__(self, spec: ModelSpec, model: Any, device: str, precision: str,
                 feature_cache_frames: int = DEFAULT_FEATURE_CACHE_FRAMES) -> None:
        self.spec, self.model, self.device, self.precision = spec, model, device, precision
        self.feature_cache_frames = feature_cache_frames
        self.lock = threading.RLock()

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    def start(self, video: Video) -> Any:
        """A new session on ``video`` (nothing is decoded or encoded yet), opened by the
        family's ``start_video``: ``VideoSession`` or one with its public API."""
        if not isinstance(video, Video):
            raise VideoTrackingError("start() needs a Video from sam_backends.video.open_video.")
        return family_module(self.spec.family).start_video(self, video)

    def __repr__(self) -> str:
        return f"VideoTracker({self.model_id!r}, device={self.device!r}, " \
               f"precision={self.precision!r})"


def create_text_video_model(
    model_id: str | ModelSpec,
    checkpoint: str | Path | None = None,
    device: str | None = None,
    precision: str | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    download: bool = False,
) -> TextVideoModel:
    """Load a video model that tracks words by itself (SAM 3's ``Sam3VideoModel``).

    ``model.start(video, TextTrackParams(...))`` opens a run whose ``run()`` yields
    ``(frame, {object id: mask})`` and fills a ``TextTrackResult``, as ``TextTracker`` does.
    Arguments as ``create_tracker``; "fp32" equals transformers' documented loop.

    Raises:
        VideoTrackingError: the model's family has no such video model.
        UnknownModelError, BackendUnavailableError, CheckpointMissingError,
        CheckpointCorruptError: as ``create_backend``.
    """
    spec = model_id if isinstance(model_id, ModelSpec) else get_spec(model_id)
    family = get_family(spec.family)
    if not family.text_video:
        raise VideoTrackingError(f"{spec.display_name} has no video model of its own that "
                                 "tracks words; use a tracker with a detector instead.")
    resolved_device = resolve_device(device)
    resolved_precision = resolve_precision(precision, resolved_device, family.precisions)
    if resolved_precision == FAST_FP32_PRECISION and resolved_precision not in family.precisions:
        resolved_precision = EXACT_PRECISION  # the clicks' fast path: nothing to speed up here
    path = _model_path(spec, checkpoint, checkpoint_dir, download)
    model = family_module(spec.family).load_text_video(spec, path, resolved_device,
                                                       resolved_precision)
    return TextVideoModel(spec, model, resolved_device, resolved_precision)


class TextVideoModel:
    """A loaded words-tracking video model; ``start(video, params)`` opens one run."""

    def __init__(self, spec: ModelSpec, model: Any, device: str, precision: str) -> None:
        self.spec, self.model, self.device, self.precision = spec, model, device, precision
        self.lock = threading.RLock()

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    def start(self, video: Video, params: Any, first_object_id: int = 1) -> Any:
        """A new run on ``video`` for ``params`` (a ``TextTrackParams``), numbering the objects
        it finds from ``first_object_id``; nothing runs yet."""
        if not isinstance(video, Video):
            raise VideoTrackingError("start() needs a Video from sam_backends.video.open_video.")
        return family_module(self.spec.family).start_text_video(self, video, params,
                                                                first_object_id)

    def __repr__(self) -> str:
        return f"TextVideoModel({self.model_id!r}, device={self.device!r}, " \
               f"precision={self.precision!r})"
