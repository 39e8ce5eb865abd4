"""Track by words: detect what a phrase names, track each instance, re-detect every N frames.

``TextTracker`` drives an ordinary ``VideoSession`` (any tracking model) through its public
calls only (``add_prompts``, ``propagate``, ``remove_object``), so clicks and boxes can still
correct any object afterwards, on the same session, as for a clicked track.

The loop, over the processed frames in order:

1. Frames after the first: every living object is tracked one frame on (``propagate`` with
   ``max_frames=1``).
2. On the first frame and every ``re_detect_every`` frames after it, a ``FrameDetector`` finds
   the phrases (SAM 3 with masks, or OWLv2 with boxes), highest score first, at most
   ``max_detections`` (``MAX_DETECTIONS_PER_FRAME``; the frames where the cap cut detections
   are reported). A detection *matches* a living object when they overlap by at least
   ``match_iou`` (``MATCH_IOU`` = 0.5): mask IoU where the detector gives a mask, else the IoU
   of the detection's box with the tight box of the object's tracked mask. Each object matches
   at most one detection (the best-scoring first). A matched object keeps its id; an unmatched
   detection becomes a new object, prompted on that frame with its box (the tracker's own
   decoder makes its mask), named after its phrase, while the clip has fewer than
   ``max_objects`` (``MAX_OBJECTS_PER_CLIP``).
3. An object missed by ``lost_after`` (``LOST_AFTER`` = 2) re-detections in a row ends there:
   it leaves the session (no more tracking cost) and has no mask on that frame; its masks
   before it stay in the result (``TrackedObject.ended_at`` is that frame).

``re_detect_every`` 0, or larger than the clip, detects on the first frame only. A phrase that
finds nothing is a successful, empty result (``TextTrackResult.found_nothing``), not an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import PromptError
from ..masks import mask_box
from ..text.phrases import DEFAULT_PHRASE_LIMITS, PhraseLimits, check_threshold, parse_phrases
from ..types import Prompts
from .errors import VideoTrackingError
from .masks import MaskTrack

MAX_DETECTIONS_PER_FRAME = 50
MAX_OBJECTS_PER_CLIP = 100
MATCH_IOU = 0.5
LOST_AFTER = 2
DEFAULT_RE_DETECT_EVERY = 30  # as the hosted video-segmentation API's default


@dataclass(frozen=True, eq=False)
class FrameDetection:
    """One instance a detector found on a frame: XYXY pixel box, score, phrase, optional mask
    (bool H x W at the frame's size)."""

    box: tuple[float, float, float, float]
    score: float
    phrase: str
    mask: np.ndarray | None = None


class FrameDetector(Protocol):
    """Finds phrases on one RGB frame (H x W x 3 uint8), best first."""

    name: str

    def detect(self, frame: np.ndarray, phrases: tuple[str, ...],
               threshold: float) -> list[FrameDetection]: ...


@dataclass(frozen=True)
class TextTrackParams:
    """What to find and how often (see the module docstring for each rule).

    Raises (on construction):
        PromptError: no phrase, too many or too long phrases, a threshold outside [0, 1], or a
            re-detection interval / cap that is not a whole number in range.
    """

    phrases: tuple[str, ...]
    threshold: float = 0.3
    re_detect_every: int = DEFAULT_RE_DETECT_EVERY
    match_iou: float = MATCH_IOU
    lost_after: int = LOST_AFTER
    max_detections: int = MAX_DETECTIONS_PER_FRAME
    max_objects: int = MAX_OBJECTS_PER_CLIP
    phrase_limits: PhraseLimits = DEFAULT_PHRASE_LIMITS

    def __post_init__(self) -> None:
        object.__setattr__(self, "phrases", tuple(parse_phrases(self.phrases, self.phrase_limits)))
        object.__setattr__(self, "threshold", check_threshold(self.threshold))
        _whole("re_detect_every", self.re_detect_every, 0, None)
        _whole("lost_after", self.lost_after, 1, None)
        _whole("max_detections", self.max_detections, 1, MAX_DETECTIONS_PER_FRAME)
        _whole("max_objects", self.max_objects, 1, MAX_OBJECTS_PER_CLIP)
        if not isinstance(self.match_iou, (int, float)) or not 0.0 < self.match_iou <= 1.0:
            raise PromptError(f"match_iou must be in (0, 1], got {self.match_iou!r}.")

    def detects_on(self, position: int) -> bool:
        """True for the ``position``-th processed frame of the run (0: the first)."""
        every = self.re_detect_every
        return position == 0 or (every > 0 and position % every == 0)


def _whole(name: str, value: Any, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
            high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise PromptError(f"{name} must be a whole number {bound}, got {value!r}.")


@dataclass
class TrackedObject:
    """An object the words found: its id, phrase, and where it was seen.

    ``box`` is the detection that started it (the box it was prompted with on ``first_frame``);
    ``frames_matched`` counts re-detections that found it again (its first detection
    excluded); ``ended_at`` is the frame where it left the session (None: tracked to the end).
    """

    object_id: int
    phrase: str
    first_frame: int
    score: float
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    frames_matched: int = 0
    misses: int = 0
    ended_at: int | None = None


@dataclass
class TextTrackResult:
    """What a run produced: masks (frame -> {object id: mask}), the objects, and counts."""

    masks: MaskTrack
    objects: list[TrackedObject] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    detection_frames: list[int] = field(default_factory=list)
    capped_frames: list[int] = field(default_factory=list)
    objects_refused: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: {"detect": 0.0, "track": 0.0})

    @property
    def found_nothing(self) -> bool:
        return not self.objects

    def names(self) -> dict[int, str]:
        """Object id -> a display name: the phrase, numbered when it found several."""
        counts: dict[str, int] = {}
        names = {}
        for obj in self.objects:
            counts[obj.phrase] = counts.get(obj.phrase, 0) + 1
            names[obj.object_id] = f"{obj.phrase} {counts[obj.phrase]}"
        return names


def overlap(detection: FrameDetection, tracked: np.ndarray) -> float:
    """How much a detection and a tracked mask agree: mask IoU when the detection has a mask,
    else the IoU of its box with the mask's tight box (0 for an empty tracked mask)."""
    tracked = np.asarray(tracked, dtype=bool)
    if detection.mask is not None:
        union = np.logical_or(detection.mask, tracked).sum()
        return float(np.logical_and(detection.mask, tracked).sum() / union) if union else 0.0
    box = mask_box(tracked)
    if box is None:
        return 0.0
    from ..text.pipeline import box_iou

    return box_iou(detection.box, box)


class TextTracker:
    """One text-prompted run over a session (see the module docstring)."""

    def __init__(self, session: Any, detector: FrameDetector, params: TextTrackParams,
                 first_object_id: int = 1) -> None:
        if first_object_id < 1:
            raise VideoTrackingError("Object ids start at 1.")
        self.session, self.detector, self.params = session, detector, params
        self.result = TextTrackResult(MaskTrack(session.video.size))
        self._next_id = max([first_object_id - 1, *session.object_ids]) + 1
        self._alive: dict[int, TrackedObject] = {}

    def run(self, start_frame: int = 0, max_frames: int | None = None,
            should_stop: Callable[[], bool] | None = None
            ) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """Process frames from ``start_frame`` on; yields ``(frame, {object id: mask})``.

        The iterator can be abandoned (or ``should_stop`` turn true) at any frame: what was
        yielded is in ``result``, and the session stays usable.
        """
        count = self.session.video.num_frames - start_frame
        if max_frames is not None:
            count = min(count, max_frames)
        for position, frame in enumerate(range(start_frame, start_frame + max(count, 0))):
            if should_stop is not None and should_stop():
                return
            masks = self._track(frame) if self._alive else {}
            if self.params.detects_on(position):
                masks.update(self._detect(frame, masks))
            for object_id, mask in masks.items():
                self.result.masks.set(frame, object_id, mask)
            self.result.frames.append(frame)
            yield frame, masks

    def _track(self, frame: int) -> dict[int, np.ndarray]:
        started = time.perf_counter()
        _, masks = next(iter(self.session.propagate(frame, max_frames=1)))
        self.result.seconds["track"] += time.perf_counter() - started
        return {obj: mask for obj, mask in masks.items() if obj in self._alive}

    def _detect(self, frame: int, tracked: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        params, result = self.params, self.result
        started = time.perf_counter()
        found = self.detector.detect(self.session.video.frame(frame), params.phrases,
                                     params.threshold)
        result.seconds["detect"] += time.perf_counter() - started
        result.detection_frames.append(frame)
        found = sorted(found, key=lambda d: -d.score)
        if len(found) > params.max_detections:
            result.capped_frames.append(frame)
            found = found[:params.max_detections]
        unmatched = dict(tracked)
        new_masks: dict[int, np.ndarray] = {}
        for detection in found:
            best = max(unmatched, key=lambda obj: overlap(detection, unmatched[obj]), default=None)
            if best is not None and overlap(detection, unmatched[best]) >= params.match_iou:
                obj = self._alive[best]
                obj.frames_matched, obj.misses = obj.frames_matched + 1, 0
                del unmatched[best]
            elif len(result.objects) < params.max_objects:
                object_id, mask = self._add(frame, detection)
                new_masks[object_id] = mask
            else:
                result.objects_refused += 1
        for object_id in unmatched:
            obj = self._alive[object_id]
            obj.misses += 1
            if obj.misses >= params.lost_after:
                self._end(obj, frame)
                del tracked[object_id]  # not found here: it ends before this frame
        return new_masks

    def _add(self, frame: int, detection: FrameDetection) -> tuple[int, np.ndarray]:
        started = time.perf_counter()
        object_id = self._next_id
        self._next_id += 1
        mask = self.session.add_prompts(frame, object_id, Prompts(box=detection.box))
        self.result.seconds["track"] += time.perf_counter() - started
        obj = TrackedObject(object_id, detection.phrase, frame, float(detection.score),
                            detection.box)
        self._alive[object_id] = obj
        self.result.objects.append(obj)
        return object_id, mask

    def _end(self, obj: TrackedObject, frame: int) -> None:
        obj.ended_at = frame
        del self._alive[obj.object_id]
        self.session.remove_object(obj.object_id)


def clip_detection_box(box: Sequence[float], height: int, width: int
                       ) -> tuple[float, float, float, float] | None:
    """A detector's box clipped to the frame (None when under a pixel there)."""
    from ..text.pipeline import clip_box

    clipped = clip_box(box, height, width)
    return None if clipped is None else tuple(float(v) for v in clipped)  # type: ignore[return-value]


class Owlv2FrameDetector:
    """OWLv2 boxes (``text.detectors.Owlv2Detector``) as a ``FrameDetector``; no masks: the
    tracker's decoder makes each new object's mask from its box."""

    name = "owlv2"

    def __init__(self, detector: Any) -> None:
        self.detector = detector

    def detect(self, frame: np.ndarray, phrases: tuple[str, ...],
               threshold: float) -> list[FrameDetection]:
        found = self.detector.detect(frame, list(phrases), threshold)
        height, width = frame.shape[:2]
        out = []
        for box, score, label in zip(found.boxes, found.scores, found.labels):
            clipped = clip_detection_box(box, height, width)
            if clipped is not None:
                out.append(FrameDetection(clipped, float(score), label))
        return out


class Sam3FrameDetector:
    """SAM 3's text head (``families.sam3``) as a ``FrameDetector``: masks, boxes and scores."""

    name = "sam3"

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def detect(self, frame: np.ndarray, phrases: tuple[str, ...],
               threshold: float) -> list[FrameDetection]:
        instances = self.backend.segment_text(self.backend.encode(frame), list(phrases),
                                              threshold)
        height, width = frame.shape[:2]
        out = []
        for mask, score, box, label in zip(instances.masks, instances.scores, instances.boxes,
                                           instances.labels):
            clipped = clip_detection_box(box, height, width)
            if clipped is not None and mask.any():
                out.append(FrameDetection(clipped, float(score), label, np.asarray(mask, bool)))
        return out
