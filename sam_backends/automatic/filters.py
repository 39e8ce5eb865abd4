"""The generators' filters, on low-res logits (candidates) and on full-resolution masks (kept).

Low resolution (``stability_scores``, ``low_res_boxes``, ``nms``): upstream computes the
stability score and the boxes for non-max suppression on every candidate upscaled to the
original image (up to 192 masks of H x W per batch). Both are ratios of areas, which a further
bilinear upscaling nearly preserves, so here they are taken on the decoder's logits upscaled
2x (the part covering the image; ``generator.STABILITY_SCALE``) and only the survivors are
upscaled to the image. Box IoU does not change when x and y are scaled, so NMS in those pixels
equals NMS in original pixels up to the box rounding.

Full resolution (``remove_small_regions``): upstream's hole and island removal, unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def stability_scores(logits: Any, mask_threshold: float, offset: float) -> Any:
    """IoU of ``logits > t + offset`` and ``logits > t - offset`` per mask (K x h x w -> K).

    As ``segment_anything.utils.amg.calculate_stability_score``, except that a mask with no
    pixel above ``t - offset`` scores 0 (upstream: NaN, which never passes a threshold).
    """
    import torch

    inner = (logits > mask_threshold + offset).flatten(1).sum(1, dtype=torch.int32)
    outer = (logits > mask_threshold - offset).flatten(1).sum(1, dtype=torch.int32)
    return torch.where(outer > 0, inner / outer.clamp(min=1), torch.zeros_like(inner,
                                                                             dtype=torch.float))


def low_res_boxes(logits: Any, threshold: float) -> Any:
    """Tight XYXY boxes (float32, K x 4, exclusive x1/y1) of the masks ``logits > threshold``
    (K x h x w); an empty mask -> 0.

    A row holds a mask pixel exactly when its largest logit is above the threshold, so the
    rows and columns come from two max-reductions of the logits: on one core about 8x faster
    than ``any`` over the thresholded masks (16 x 512 x 512: 2 ms against 17 ms here).
    """
    import torch

    k, h, w = logits.shape
    rows = logits.amax(dim=2) > threshold  # K x h
    cols = logits.amax(dim=1) > threshold  # K x w
    ys = torch.arange(h, device=logits.device)
    xs = torch.arange(w, device=logits.device)
    y0 = torch.where(rows, ys, h).amin(1)
    y1 = torch.where(rows, ys + 1, 0).amax(1)
    x0 = torch.where(cols, xs, w).amin(1)
    x1 = torch.where(cols, xs + 1, 0).amax(1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float()
    return torch.where(rows.any(1, keepdim=True), boxes, torch.zeros_like(boxes))


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy box NMS, highest score first (``torchvision.ops.nms``)."""
    import torch
    from torchvision.ops import nms as box_nms

    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    keep = box_nms(torch.as_tensor(boxes, dtype=torch.float32),
                   torch.as_tensor(scores, dtype=torch.float32), float(iou_threshold))
    return keep.numpy().astype(np.int64)


def remove_small_regions(mask: np.ndarray, area_thresh: float, mode: str) -> tuple[np.ndarray,
                                                                                    bool]:
    """Fill holes (``mode="holes"``) or drop islands (``"islands"``) under ``area_thresh`` px.

    Upstream's ``segment_anything.utils.amg.remove_small_regions`` (8-connectivity): when every
    island is small the largest is kept. Returns (mask, whether it changed).
    """
    import cv2

    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', got {mode!r}")
    holes = mode == "holes"
    working = (holes ^ mask).astype(np.uint8)
    n_labels, regions, stats, _ = cv2.connectedComponentsWithStats(working, connectivity=8)
    sizes = stats[1:, cv2.CC_STAT_AREA]  # label 0 is the background
    small = [i + 1 for i, size in enumerate(sizes) if size < area_thresh]
    if not small:
        return mask, False
    fill = [0, *small]
    if not holes:
        fill = [i for i in range(n_labels) if i not in fill] or [int(np.argmax(sizes)) + 1]
    return np.isin(regions, fill), True
