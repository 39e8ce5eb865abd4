"""SAM 3's own video model (transformers' ``Sam3VideoModel``): words in, every instance tracked.

``video.text_tracking.TextTracker`` pairs any tracker with a detector run every N frames and
matches them by overlap. SAM 3's video model does both itself, on every frame: its detector
finds the phrases, its SAM 2-style tracker carries each object's memory, and a fusion step
matches detections to tracks, starts new objects, lets unmatched ones fade (keep-alive
counters), removes duplicates and short-lived tracks during a "hotstart" of
``hotstart_delay`` frames, and re-conditions tracks on confident detections. This module runs
that model over a ``Video`` and reports what ``TextTracker`` reports (``TextTrackResult``),
so the REST video job and the Video view take either engine.

Exactness (fp32): masks, object ids, scores and boxes equal transformers' documented loop::

    session = processor.init_video_session(video=frames, inference_device=device)
    processor.add_text_prompt(session, phrases)
    for out in model.propagate_in_video_iterator(session, start_frame_idx=start,
                                                 max_frame_num_to_track=n - 1):
        processor.postprocess_outputs(session, out)

What differs from that loop:

1. Frames are ``LazyFrames`` (processed when the model asks, never all held: 12 MiB a frame).
2. Our ``threshold`` is the model's ``score_threshold_detection`` for this run; a new object
   needs the model's margin above it (``new_det_thresh - score_threshold_detection`` of the
   checkpoint's config, 0.2 for facebook/sam3), so the checkpoint's own threshold gives
   exactly its defaults. The run uses a shallow copy of the model: every weight and submodule
   is shared, only the run's thresholds and caps are its own, so runs never change each
   other's settings.
3. Caps: at most ``max_detections`` detections a frame and phrase (the best scores; frames
   where the cap cut are reported) and ``max_objects`` objects a clip (the model's
   ``max_num_objects``).
4. Object ids: SAM 3 numbers objects from 0; here they are ``first_object_id`` (1) and up,
   as every other track in this project.

Output appears ``hotstart_delay`` frames after the model processed a frame (15 for
facebook/sam3): the model holds frames back until it knows which young tracks to drop; the
last frame releases the rest.
"""

from __future__ import annotations

import copy
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...registry import ModelSpec
from ...text import hf_common
from ...text.phrases import check_phrases_for_tokenizer
from ...video.errors import VideoTrackingError
from ...video.lazy_frames import LazyFrames
from ...video.masks import MaskTrack
from ...video.source import Video
from ...video.text_tracking import TextTrackParams, TextTrackResult, TrackedObject
from .backend import MODEL_NAME

TEXT_TOKENS = 32  # Sam3VideoProcessor.add_text_prompt pads and cuts every phrase to 32 tokens


@dataclass(frozen=True)
class Sam3Video:
    """What a tracker holds for SAM 3 video: the model and the folder's video processor."""

    model: Any
    processor: Any
    precision: str


def load_text_video(spec: ModelSpec, folder: Path, device: str, precision: str) -> Sam3Video:
    """``Sam3VideoModel`` and ``Sam3VideoProcessor`` from a transformers folder, strictly.

    Raises:
        BackendUnavailableError: transformers missing. CheckpointCorruptError: see
            ``hf_common.read_model_folder``.
    """
    hf_common.check_precision(precision, spec.model_id)
    hf_common.import_transformers(MODEL_NAME)
    from transformers import Sam3VideoModel, Sam3VideoProcessor

    from ...speed.accel import configure_threads

    configure_threads()
    model, processor = hf_common.read_model_folder(
        Sam3VideoModel, Sam3VideoProcessor, folder, MODEL_NAME, f"{MODEL_NAME} video model")
    return Sam3Video(model.to(device), processor, precision)


class Sam3TextVideoRun:
    """One text-prompted run of SAM 3's video model over ``video`` (module docstring).

    ``lock`` serialises calls into the shared model (the tracker's lock).
    """

    def __init__(self, loaded: Sam3Video, video: Video, params: TextTrackParams, *,
                 device: str = "cpu", lock: Any = None, first_object_id: int = 1) -> None:
        import contextlib

        import torch

        if first_object_id < 1:
            raise VideoTrackingError("Object ids start at 1.")
        # Words the text encoder cannot take (too long, an unknown script) are refused here,
        # before any frame is processed, as the image side refuses them.
        check_phrases_for_tokenizer(params.phrases, loaded.processor.tokenizer, TEXT_TOKENS,
                                    MODEL_NAME, params.phrase_limits)
        self.video, self.params, self.device = video, params, device
        self.loaded, self.offset = loaded, int(first_object_id)
        self.lock = lock if lock is not None else contextlib.nullcontext()
        self.result = TextTrackResult(MaskTrack(video.size))
        self.scores: dict[tuple[int, int], float] = {}
        self._objects: dict[int, TrackedObject] = {}
        self._model = self._run_model(loaded.model)
        height, width = video.size
        processor = loaded.processor
        self._session = processor.init_video_session(
            video=None, inference_device=device, dtype=torch.float32)
        self._session.processed_frames = LazyFrames(video, processor)
        self._session.video_height, self._session.video_width = height, width
        processor.add_text_prompt(self._session, list(params.phrases))

    def _run_model(self, model: Any) -> Any:
        """A shallow copy of ``model`` with this run's thresholds and caps (module doc, 2-3)."""
        config, params = model.config, self.params
        margin = max(0.0, config.new_det_thresh - config.score_threshold_detection)
        run = copy.copy(model)  # shares _modules/_parameters/_buffers: no weight is copied
        run.score_threshold_detection = float(params.threshold)
        run.new_det_thresh = min(1.0, float(params.threshold) + margin)
        run.max_num_objects = int(params.max_objects)
        detect, one_frame = model.run_detection, model._det_track_one_frame
        current = {"frame": -1}

        def det_track_one_frame(this: Any, *args: Any, **kwargs: Any) -> Any:
            current["frame"] = int(kwargs.get("frame_idx", args[1] if len(args) > 1 else -1))
            return one_frame.__func__(this, *args, **kwargs)

        def run_detection(this: Any, inference_session: Any, vision_embeds: Any) -> Any:
            found = detect.__func__(this, inference_session, vision_embeds)
            return {prompt: self._cap(out, current["frame"]) for prompt, out in found.items()}

        run._det_track_one_frame = types.MethodType(det_track_one_frame, run)
        run.run_detection = types.MethodType(run_detection, run)
        return run

    def _cap(self, detections: dict, frame: int) -> dict:
        """At most ``max_detections`` of one phrase's detections, the best scores, in the
        model's order."""
        import torch

        scores = detections["scores"]
        if scores.numel() <= self.params.max_detections:
            return detections
        if frame not in self.result.capped_frames:
            self.result.capped_frames.append(frame)
        keep = torch.topk(scores, self.params.max_detections).indices.sort().values
        return {key: value[keep] for key, value in detections.items()}

    def run(self, start_frame: int = 0, max_frames: int | None = None,
            should_stop: Callable[[], bool] | None = None
            ) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """Process frames from ``start_frame``; yields ``(frame, {object id: mask})`` as the
        model releases them (``hotstart_delay`` frames late; the last frame releases the rest).

        The iterator can be abandoned (or ``should_stop`` turn true) between frames: what was
        yielded is in ``result``.
        """
        count = self.video.num_frames - start_frame
        if max_frames is not None:
            count = min(count, max_frames)
        if count < 1:
            return
        outputs = self._model.propagate_in_video_iterator(
            inference_session=self._session, start_frame_idx=start_frame,
            max_frame_num_to_track=count - 1)
        processor = self.loaded.processor
        while True:
            if should_stop is not None and should_stop():
                return
            started = time.perf_counter()
            with self.lock, hf_common.autocast(self.device, self.loaded.precision):
                out = next(outputs, None)
                if out is None:
                    return
                frame = int(out.frame_idx)
                found = processor.postprocess_outputs(self._session, out)
            self.result.seconds["track"] += time.perf_counter() - started
            yield frame, self._record(frame, out, found)

    def _record(self, frame: int, out: Any, found: dict) -> dict[int, np.ndarray]:
        """Store one released frame in ``result`` (masks, objects, scores, ends)."""
        result = self.result
        result.frames.append(frame)
        result.detection_frames.append(frame)  # SAM 3 detects on every frame
        phrase_of = {obj: phrase for phrase, objs in found["prompt_to_obj_ids"].items()
                     for obj in objs}
        masks = {}
        for k, raw_id in enumerate(found["object_ids"].tolist()):
            object_id = int(raw_id) + self.offset
            mask = found["masks"][k].cpu().numpy().astype(bool)
            box = tuple(float(v) for v in found["boxes"][k].tolist())
            score = float(found["scores"][k])
            if object_id not in self._objects:
                obj = TrackedObject(object_id, phrase_of.get(int(raw_id), self.params.phrases[0]),
                                    frame, score, box)  # type: ignore[arg-type]
                self._objects[object_id] = obj
                result.objects.append(obj)
            self.scores[(object_id, frame)] = score
            masks[object_id] = mask
            result.masks.set(frame, object_id, mask)
        for raw_id in out.removed_obj_ids or ():
            obj = self._objects.get(int(raw_id) + self.offset)
            if obj is not None and obj.ended_at is None:
                obj.ended_at = frame
        return masks
