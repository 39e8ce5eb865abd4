"""Small-hole filling for video masks without sam2's CUDA extension.

Upstream's ``fill_holes_in_mask_scores`` finds the 8-connected components of the background
(logits <= 0) of each low-resolution mask with its CUDA kernel and sets those of at most
``max_area`` pixels to 0.1 (foreground). Without the kernel (any CPU) it warns and does nothing.
This is the same rule with OpenCV's connected components, used by the fast path; the exact
path leaves masks as upstream's CPU run does, so that they stay equal pixel for pixel.
"""

from __future__ import annotations

import numpy as np

FILLED_SCORE = 0.1  # what upstream writes into a filled hole


def small_holes(background: np.ndarray, max_area: int) -> np.ndarray:
    """Bool H x W: pixels of 8-connected components of ``background`` with area <= max_area."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        background.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(background.shape, bool)
    small = stats[:, cv2.CC_STAT_AREA] <= max_area
    small[0] = False  # label 0: OpenCV's "not background" pixels
    return small[labels]


def fill_small_holes(logits, max_area: int):
    """``logits`` (N x 1 x H x W tensor) with holes of at most ``max_area`` pixels filled."""
    import torch

    if max_area <= 0:
        return logits
    scores = logits.detach().float().cpu().numpy()
    holes = np.stack([small_holes(mask[0] <= 0, max_area)[None] for mask in scores])
    if not holes.any():
        return logits
    fill = torch.from_numpy(holes).to(logits.device)
    return torch.where(fill, torch.tensor(FILLED_SCORE, dtype=logits.dtype,
                                          device=logits.device), logits)
