"""The standard interactive-segmentation click protocol, replayed on any backend.

Protocol (as in the RITM / SAM evaluations):

1. The first click is positive, at the interior point of the ground-truth object: the pixel
   farthest from the object's boundary.
2. Every next click goes into the largest error region (a connected component, 8-connectivity,
   of the missed-object pixels or of the false-positive pixels; the largest by area, a missed
   region winning a tie). It is positive for a missed-object region and negative for a
   false-positive region, placed at that region's interior point.
3. Up to ``max_clicks`` clicks (20 by default). Each click carries all previous clicks and, when
   the model supports mask refinement, the previous prediction's low-res logits. The first click
   asks for three candidates (where the model can) and keeps the highest-scoring one, because a
   single point is ambiguous; later clicks ask for one mask.

Decisions that affect where clicks land:

- **Image border counts as boundary.** The region is padded with one background pixel before
  the distance transform, so a region touching the edge of the image gets its click away from
  the edge (as RITM does).
- **Ties.** Where several pixels are equally far from the boundary (a rectangle's ridge), the
  one nearest the centroid of those pixels is chosen, so a rectangle's interior point is its
  centre; remaining ties go to the first pixel in row-major order. Deterministic.
- **Coordinates.** Clicks are pixel indices, ``x`` = column and ``y`` = row, in the original
  image frame, as in ``Prompts``.
- If a prediction matches the ground truth exactly, no error is left to click on: the protocol
  stops and the last IoU stands for the remaining clicks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..base import Backend
from ..errors import PromptError
from ..types import Embedding, Prompts
from .metrics import mask_iou


@dataclass(frozen=True)
class Click:
    """One simulated click: pixel ``(x, y)`` and whether it marks the object (positive)."""

    x: int
    y: int
    positive: bool

    @property
    def label(self) -> int:
        """The ``Prompts`` label: 1 = foreground, 0 = background."""
        return 1 if self.positive else 0


def _as_mask(mask: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"{what} must be a 2-D H x W mask, got shape {array.shape}.")
    return array.astype(bool, copy=False)


def interior_point(region: np.ndarray) -> tuple[int, int]:
    """``(x, y)`` of the pixel of ``region`` farthest from its boundary (image border included).

    Raises:
        ValueError: the region is empty.
    """
    import cv2

    mask = _as_mask(region, "region")
    if not mask.any():
        raise ValueError("Cannot place a click in an empty region.")
    padded = np.pad(mask, 1, constant_values=False).astype(np.uint8)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    rows, cols = np.nonzero(distance == distance.max())
    centre_row, centre_col = rows.mean(), cols.mean()
    best = int(np.argmin((rows - centre_row) ** 2 + (cols - centre_col) ** 2))
    return int(cols[best]), int(rows[best])


def first_click(target: np.ndarray) -> Click:
    """The protocol's first click: positive, at the object's interior point."""
    x, y = interior_point(_as_mask(target, "ground truth"))
    return Click(x, y, True)


def largest_error_region(prediction: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, bool]:
    """The largest connected error region and whether it is a missed-object region.

    Returns:
        ``(region, positive)``: bool H x W mask of the region; ``positive`` is True for missed
        object (false negative), False for false positive.

    Raises:
        ValueError: prediction and target are equal (no error left).
    """
    import cv2

    pred, true = _as_mask(prediction, "prediction"), _as_mask(target, "ground truth")
    if pred.shape != true.shape:
        raise ValueError(f"Prediction {pred.shape} and ground truth {true.shape} differ in size.")
    best: tuple[int, bool, np.ndarray, int] | None = None
    for positive, errors in ((True, true & ~pred), (False, pred & ~true)):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            errors.astype(np.uint8), connectivity=8
        )
        for index in range(1, count):
            area = int(stats[index, cv2.CC_STAT_AREA])
            # strictly larger wins, so a missed region (scanned first) wins a tie
            if best is None or area > best[0]:
                best = (area, positive, labels, index)
    if best is None:
        raise ValueError("The prediction equals the ground truth; there is no error to click on.")
    _, positive, labels, index = best
    return labels == index, positive


def next_click(prediction: np.ndarray, target: np.ndarray) -> Click | None:
    """The protocol's next click, or None when the prediction equals the ground truth."""
    pred, true = _as_mask(prediction, "prediction"), _as_mask(target, "ground truth")
    if np.array_equal(pred, true):
        return None
    region, positive = largest_error_region(pred, true)
    x, y = interior_point(region)
    return Click(x, y, positive)


def tight_box(target: np.ndarray) -> tuple[int, int, int, int]:
    """XYXY box around the object; ``x1, y1`` are the far pixel edges (last index + 1)."""
    mask = _as_mask(target, "ground truth")
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("The ground-truth mask is empty; there is no object to box.")
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


@dataclass(frozen=True)
class ClickTrace:
    """What happened on one object under the click protocol.

    Attributes:
        clicks: the clicks actually made (fewer than ``max_clicks`` if the mask became exact).
        ious: IoU after click k (index k-1), always ``max_clicks`` long; after an early stop the
            last IoU is repeated.
        decode_seconds: wall time of each ``predict`` call, one per click made.
    """

    clicks: tuple[Click, ...]
    ious: tuple[float, ...]
    decode_seconds: tuple[float, ...]

    def noc(self, threshold: float) -> int:
        """Number of clicks to reach ``threshold`` IoU, ``len(ious)`` (the cap) if never."""
        for index, iou in enumerate(self.ious):
            if iou >= threshold:
                return index + 1
        return len(self.ious)

    def iou_after(self, clicks: int) -> float:
        """IoU after ``clicks`` clicks (1-based)."""
        return self.ious[min(clicks, len(self.ious)) - 1]


def run_click_protocol(
    backend: Backend, embedding: Embedding, target: np.ndarray, max_clicks: int = 20
) -> ClickTrace:
    """Replay the click protocol for one object on an already encoded image.

    Args:
        backend: any backend; mask refinement and multimask are used only where its
            capabilities say so.
        embedding: ``backend.encode(image)`` of the image ``target`` belongs to.
        target: H x W ground-truth mask (non-zero = object), in the image's frame.
        max_clicks: the click budget (at least 1).
    """
    true = _as_mask(target, "ground truth")
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be at least 1, got {max_clicks}.")
    if tuple(true.shape) != tuple(embedding.original_size):
        raise PromptError(
            f"The ground-truth mask is {true.shape[1]}x{true.shape[0]} but the image is "
            f"{embedding.original_size[1]}x{embedding.original_size[0]}; they must match."
        )
    caps = backend.spec.capabilities
    clicks: list[Click] = []
    ious: list[float] = []
    seconds: list[float] = []
    logits = None
    click: Click | None = first_click(true)
    while click is not None and len(clicks) < max_clicks:
        clicks.append(click)
        first = len(clicks) == 1
        multimask = first and caps.multimask
        prompts = Prompts(
            points=[(c.x, c.y) for c in clicks],
            labels=[c.label for c in clicks],
            mask_input=logits if caps.mask_refinement else None,
            multimask=multimask,
        )
        start = time.perf_counter()
        prediction = backend.predict(embedding, prompts)
        seconds.append(time.perf_counter() - start)
        index = prediction.best_index if multimask else 0
        mask = prediction.mask(index)
        logits = prediction.low_res_logits[index : index + 1]
        ious.append(mask_iou(mask, true))
        click = next_click(mask, true) if len(clicks) < max_clicks else None
    ious.extend([ious[-1]] * (max_clicks - len(ious)))
    return ClickTrace(tuple(clicks), tuple(ious), tuple(seconds))


def box_iou(backend: Backend, embedding: Embedding, target: np.ndarray) -> tuple[float, float]:
    """IoU of the mask from the ground truth's tight box alone, and the decode wall time."""
    true = _as_mask(target, "ground truth")
    start = time.perf_counter()
    prediction = backend.predict(embedding, Prompts(box=tight_box(true)))
    elapsed = time.perf_counter() - start
    return mask_iou(prediction.mask(0), true), elapsed
