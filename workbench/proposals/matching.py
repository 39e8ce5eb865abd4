"""Matching the instances two models found on one image: mask IoU and a one-to-one assignment.

Pure NumPy (+ SciPy's Hungarian solver when installed, else a greedy assignment). Used by the
compare view to say which instance of model B is model A's "dog #2", and how well they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.render import fit_size, resize_nearest

MATCH_IOU = 0.5  # pairs below this IoU are not counted as the same object
IOU_SIDE = 512  # masks are compared at most this large (IoU changes by well under 1 %)


@dataclass(frozen=True)
class Match:
    """Instance ``a`` of the first model and ``b`` of the second, with their mask IoU."""

    a: int
    b: int
    iou: float


def iou_matrix(masks_a: np.ndarray, masks_b: np.ndarray, side: int = IOU_SIDE) -> np.ndarray:
    """IoU of every pair: float64 (Na x Nb) for bool masks Na x H x W and Nb x H x W."""
    masks_a = np.asarray(masks_a, bool)
    masks_b = np.asarray(masks_b, bool)
    if masks_a.shape[1:] != masks_b.shape[1:]:
        raise ValueError(f"mask sizes differ: {masks_a.shape[1:]} vs {masks_b.shape[1:]}")
    if len(masks_a) == 0 or len(masks_b) == 0:
        return np.zeros((len(masks_a), len(masks_b)))
    size = fit_size(*masks_a.shape[1:], side)
    flat_a = np.stack([resize_nearest(m, size) for m in masks_a]).reshape(len(masks_a), -1)
    flat_b = np.stack([resize_nearest(m, size) for m in masks_b]).reshape(len(masks_b), -1)
    fa, fb = flat_a.astype(np.float32), flat_b.astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0).astype(np.float64)


def match(ious: np.ndarray, min_iou: float = MATCH_IOU) -> list[Match]:
    """One-to-one pairs maximising total IoU (Hungarian; greedy without SciPy), keeping pairs
    with IoU >= ``min_iou``, sorted by ``a``."""
    if ious.size == 0:
        return []
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:  # pragma: no cover - SciPy comes with the app's requirements
        pairs = _greedy(ious)
    else:
        rows, cols = linear_sum_assignment(-ious)
        pairs = list(zip(rows.tolist(), cols.tolist()))
    return sorted((Match(int(a), int(b), float(ious[a, b])) for a, b in pairs
                   if ious[a, b] >= min_iou), key=lambda m: m.a)


def _greedy(ious: np.ndarray) -> list[tuple[int, int]]:
    order = np.dstack(np.unravel_index(np.argsort(-ious, axis=None), ious.shape))[0]
    used_a, used_b, pairs = set(), set(), []
    for a, b in order:
        if a not in used_a and b not in used_b:
            used_a.add(int(a))
            used_b.add(int(b))
            pairs.append((int(a), int(b)))
    return pairs
