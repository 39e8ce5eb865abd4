"""Many objects in one image: the result of "segment everything" and of text prompts.

Distinct from ``Prediction`` (one object's candidate masks): ``Instances`` holds N different
objects, each with one mask, a score, a box and an optional label, in original-image pixels.
A person reviews them as proposals and keeps some; the API returns them as COCO RLE.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Instances:
    """N instance masks for one image.

    Attributes:
        masks: bool, N x H x W at the original resolution (H, W = the image's size).
        scores: float32, N; the model's confidence (predicted IoU for SAM grids, detection or
            presence score for text prompts), in [0, 1] for every model here.
        boxes: float32, N x 4, XYXY pixels; the tight box of each mask (or the detector's box
            when the mask is empty).
        labels: N strings; the text phrase that found each instance, "" for "everything".
        model_id: the model (or pipeline, e.g. "owlv2+sam2.1-tiny") that made them.
        seconds: wall time per stage, e.g. {"encode": 0.0, "detect": 5.1, "decode": 0.4}.
    """

    masks: np.ndarray = field(repr=False)
    scores: np.ndarray
    boxes: np.ndarray
    labels: tuple[str, ...]
    model_id: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        masks = np.asarray(self.masks, dtype=bool)
        if masks.ndim != 3:
            raise ValueError(f"masks must be N x H x W, got shape {masks.shape}")
        n = masks.shape[0]
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        labels = tuple(str(label) for label in self.labels)
        if len(scores) != n or len(boxes) != n or len(labels) != n:
            raise ValueError(
                f"{n} masks need {n} scores, boxes and labels; got {len(scores)}, "
                f"{len(boxes)} and {len(labels)}"
            )
        object.__setattr__(self, "masks", masks)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", labels)

    @classmethod
    def empty(cls, image_size: tuple[int, int], model_id: str = "") -> Instances:
        """No instances, for an image of (H, W) pixels."""
        h, w = image_size
        return cls(np.zeros((0, h, w), bool), np.zeros(0, np.float32),
                   np.zeros((0, 4), np.float32), (), model_id)

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.masks.shape[1]), int(self.masks.shape[2])

    @property
    def areas(self) -> np.ndarray:
        """Pixels per mask, int64, N."""
        return self.masks.reshape(len(self), -1).sum(axis=1)

    def select(self, keep: np.ndarray | list[int] | list[bool]) -> Instances:
        """The instances at the given indices (or where a bool mask of length N is true)."""
        index = np.asarray(keep)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64).reshape(-1)
        return Instances(self.masks[index], self.scores[index], self.boxes[index],
                         tuple(self.labels[i] for i in index), self.model_id, dict(self.seconds))

    def above(self, threshold: float) -> Instances:
        """The instances scoring at least ``threshold``."""
        return self.select(self.scores >= threshold)
