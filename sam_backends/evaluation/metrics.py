"""Mask quality and agreement measures: IoU, boundary F-score, pairwise IoU, disagreement.

All masks are boolean H x W arrays in the same image frame (anything non-zero counts as object).
Pure NumPy/OpenCV, no model code, so the evaluation command and the compare view share them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

DEFAULT_BOUNDARY_TOLERANCE = 0.0075  # fraction of the image diagonal (DAVIS-style F-measure)


def _as_bool(mask: np.ndarray, what: str = "mask") -> np.ndarray:
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"{what} must be a 2-D H x W array, got shape {array.shape}.")
    return array.astype(bool, copy=False)


def _same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"Masks have different sizes ({a.shape[1]}x{a.shape[0]} and "
            f"{b.shape[1]}x{b.shape[0]}); both must cover the same image."
        )


def mask_iou(prediction: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union of two H x W masks.

    Two empty masks agree perfectly, so their IoU is 1.0 (the compare view relies on this when
    every model returns nothing); one empty and one non-empty mask give 0.0.
    """
    a, b = _as_bool(prediction, "prediction"), _as_bool(target, "target")
    _same_shape(a, b)
    union = np.count_nonzero(a | b)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(a & b) / union)


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """Inner boundary of a mask: object pixels with a 4-neighbour outside the object.

    The image border is *not* a boundary (the object simply continues out of frame), so a mask
    covering the whole image has no boundary pixels.
    """
    import cv2

    array = _as_bool(mask).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    eroded = cv2.erode(array, kernel, borderType=cv2.BORDER_REPLICATE)
    return (array > 0) & (eroded == 0)


def _distance_to(points: np.ndarray) -> np.ndarray:
    """Euclidean distance (float32, H x W) from every pixel to the nearest True pixel."""
    import cv2

    source = np.where(points, 0, 1).astype(np.uint8)
    return cv2.distanceTransform(source, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


@dataclass(frozen=True)
class BoundaryScore:
    """Boundary precision, recall and F-score of a prediction against a target.

    Attributes:
        precision: share of predicted boundary pixels within ``tolerance_px`` of the target's.
        recall: share of target boundary pixels within ``tolerance_px`` of the prediction's.
        fscore: harmonic mean of the two (0.0 when both are 0).
        tolerance_px: the matching distance that was used, in pixels.
    """

    precision: float
    recall: float
    fscore: float
    tolerance_px: float


def boundary_fscore(
    prediction: np.ndarray,
    target: np.ndarray,
    tolerance: float = DEFAULT_BOUNDARY_TOLERANCE,
    tolerance_px: float | None = None,
) -> BoundaryScore:
    """Boundary F-score (the contour accuracy measure of DAVIS, with exact distances).

    A boundary pixel of one mask is matched when a boundary pixel of the other lies within the
    tolerance (Euclidean distance). The tolerance is ``tolerance`` times the image diagonal,
    at least one pixel (so a one-pixel shift is forgiven on small images too), unless
    ``tolerance_px`` gives it directly.

    Edge cases: no boundary in either mask gives 1.0; a boundary in only one of them gives 0.0.
    """
    a, b = _as_bool(prediction, "prediction"), _as_bool(target, "target")
    _same_shape(a, b)
    if tolerance_px is None:
        height, width = a.shape
        tolerance_px = max(1.0, tolerance * math.hypot(height, width))
    pred_edge, true_edge = mask_boundary(a), mask_boundary(b)
    n_pred, n_true = np.count_nonzero(pred_edge), np.count_nonzero(true_edge)
    if n_pred == 0 and n_true == 0:
        return BoundaryScore(1.0, 1.0, 1.0, tolerance_px)
    if n_pred == 0 or n_true == 0:
        return BoundaryScore(float(n_pred == 0), float(n_true == 0), 0.0, tolerance_px)
    precision = np.count_nonzero(_distance_to(true_edge)[pred_edge] <= tolerance_px) / n_pred
    recall = np.count_nonzero(_distance_to(pred_edge)[true_edge] <= tolerance_px) / n_true
    total = precision + recall
    fscore = 0.0 if total == 0 else 2 * precision * recall / total
    return BoundaryScore(float(precision), float(recall), float(fscore), tolerance_px)


def pairwise_iou(masks: Sequence[np.ndarray]) -> np.ndarray:
    """N x N float64 matrix of IoU between every pair of masks (1.0 on the diagonal)."""
    arrays = [_as_bool(m) for m in masks]
    for array in arrays[1:]:
        _same_shape(arrays[0], array)
    flat = [array.reshape(-1) for array in arrays]
    count = len(flat)
    matrix = np.ones((count, count), dtype=np.float64)
    for i in range(count):
        for j in range(i + 1, count):
            union = np.count_nonzero(flat[i] | flat[j])
            value = 1.0 if union == 0 else np.count_nonzero(flat[i] & flat[j]) / union
            matrix[i, j] = matrix[j, i] = value
    return matrix


def vote_count(masks: Sequence[np.ndarray]) -> np.ndarray:
    """H x W int32: how many of the masks cover each pixel."""
    if not masks:
        raise ValueError("vote_count needs at least one mask.")
    first = _as_bool(masks[0])
    votes = np.zeros(first.shape, dtype=np.int32)
    for m in masks:
        array = _as_bool(m)
        _same_shape(first, array)
        votes += array
    return votes


def disagreement_mask(masks: Sequence[np.ndarray]) -> np.ndarray:
    """H x W bool: pixels some masks cover and others do not."""
    votes = vote_count(masks)
    return (votes > 0) & (votes < len(masks))
