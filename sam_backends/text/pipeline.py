"""Text prompts for any SAM 1 / SAM 2.1 model: a detector finds boxes, SAM turns each into a mask.

    detector = load_owlv2(folder, "cpu", "fp32")
    pipeline = DetectThenSegment(detector, create_backend("sam2.1-tiny"))
    embedding = pipeline.backend.encode(image)            # or from the app's EmbeddingCache
    instances = pipeline.segment_text(image, "dog, red car", threshold=0.1, embedding=embedding)

Each detected box, clipped to the image, is decoded by ``backend.predict(embedding,
Prompts(box=...))`` (one mask per box, single-mask output); the mask is exactly what a user
drawing that box would get. The detector's image features are cached by the detector, the SAM
embedding by the caller (or encoded here when not given), so a second phrase on the same image
costs the text tower, the class head and one decode per box.

Optional non-maximum suppression (``nms_iou``) drops a box overlapping a higher-scoring one
by more than that IoU, across phrases (OWLv2 already gives each box one phrase; NMS removes
near-duplicate boxes of neighbouring patches). Off (None) by default, matching the detector's
own post-processing.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Sequence

import numpy as np

from ..base import Backend
from ..errors import PromptError, UnsupportedPromptError
from ..instances import Instances
from ..masks import mask_boxes
from ..speed.torch_common import to_rgb
from ..types import Embedding, Prompts
from .detectors import DEFAULT_THRESHOLD, Detections

MAX_INSTANCES = 100  # boxes decoded per call at most (the highest-scoring ones)


class DetectThenSegment:
    """An open-vocabulary detector feeding a SAM backend; ``model_id`` e.g. "owlv2+sam2.1-tiny".

    Args:
        detector: an ``Owlv2Detector`` (anything with ``short_id`` and ``detect``).
        backend: a SAM 1 / SAM 2.1 (or SAM 3) backend taking box prompts.
        nms_iou: IoU above which a lower-scoring box is dropped; None: no suppression.
        max_instances: at most this many boxes are decoded (highest scores first).
    """

    def __init__(self, detector: Any, backend: Backend, *, nms_iou: float | None = None,
                 max_instances: int = MAX_INSTANCES) -> None:
        if not backend.spec.capabilities.box:
            raise UnsupportedPromptError(
                f"{backend.spec.display_name} does not take box prompts, so it cannot turn "
                "detected boxes into masks; pick a SAM 1 or SAM 2.1 model."
            )
        if nms_iou is not None and not 0.0 < float(nms_iou) <= 1.0:
            raise PromptError(f"nms_iou must be in (0, 1] or None, got {nms_iou!r}.")
        self.detector = detector
        self.backend = backend
        self.nms_iou = nms_iou
        self.max_instances = int(max_instances)

    @property
    def model_id(self) -> str:
        return f"{self.detector.short_id}+{self.backend.model_id}"

    def segment_text(
        self,
        image: Any,
        phrases: str | Sequence[str],
        threshold: float = DEFAULT_THRESHOLD,
        *,
        embedding: Embedding | None = None,
    ) -> Instances:
        """Instances of the phrases in ``image``.

        Args:
            image: RGB uint8 H x W x 3 (or PIL); the detector needs the pixels.
            phrases: "red car, bicycle" or a sequence of phrases.
            threshold: the least detection score kept, in [0, 1].
            embedding: ``backend.encode(image)`` if the caller has it cached.

        Returns:
            ``Instances`` (highest score first; labels = phrases; scores = detection scores);
            ``seconds`` = {"encode": SAM encode here (0 if given), "detect": detector,
            "decode": all box decodes}.

        Raises:
            PromptError: bad phrases or threshold; an embedding of another image size.
        """
        rgb = to_rgb(image)
        seconds = {"encode": 0.0}
        detections = self.detector.detect(rgb, phrases, threshold)
        seconds["detect"] = detections.seconds
        if embedding is None:
            embedding = self.backend.encode(rgb)
            seconds["encode"] = embedding.encode_seconds
        elif tuple(embedding.original_size) != tuple(rgb.shape[:2]):
            raise PromptError(
                f"The embedding is of a {embedding.original_size[1]}x{embedding.original_size[0]}"
                f" image but the image is {rgb.shape[1]}x{rgb.shape[0]}; encode this image."
            )
        keep = select_boxes(detections, self.nms_iou, self.max_instances)
        start = time.perf_counter()
        height, width = embedding.original_size
        masks, scores, boxes, labels = [], [], [], []
        for i in keep:
            box = clip_box(detections.boxes[i], height, width)
            if box is None:
                continue
            prediction = self.backend.predict(embedding, Prompts(box=box))
            masks.append(prediction.mask(prediction.best_index))
            scores.append(detections.scores[i])
            boxes.append(box)
            labels.append(detections.labels[i])
        seconds["decode"] = time.perf_counter() - start
        if not masks:
            return dataclasses.replace(Instances.empty((height, width), self.model_id),
                                       seconds=seconds)
        mask_array = np.stack(masks)
        tight = mask_boxes(mask_array)
        empty = ~mask_array.reshape(len(masks), -1).any(axis=1)
        tight[empty] = np.asarray(boxes, np.float32)[empty]
        return Instances(mask_array, np.asarray(scores, np.float32), tight, tuple(labels),
                         self.model_id, seconds)


def clip_box(box: Sequence[float], height: int, width: int) -> tuple[float, ...] | None:
    """``box`` (XYXY) clipped to a W x H image; None if under one pixel wide or high there."""
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = min(max(x0, 0.0), width), min(max(x1, 0.0), width)
    y0, y1 = min(max(y0, 0.0), height), min(max(y1, 0.0), height)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return (x0, y0, x1, y1)


def select_boxes(detections: Detections, nms_iou: float | None, limit: int) -> list[int]:
    """Indices to decode: by score (highest first), after optional NMS, at most ``limit``."""
    order = [int(i) for i in np.argsort(-detections.scores, kind="stable")]
    if nms_iou is None:
        return order[:limit]
    kept: list[int] = []
    for i in order:
        if all(box_iou(detections.boxes[i], detections.boxes[j]) <= nms_iou for j in kept):
            kept.append(i)
            if len(kept) == limit:
                break
    return kept


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two XYXY boxes (0 when both are empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
