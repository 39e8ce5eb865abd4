"""The grid of single-point prompts, as upstream's ``build_point_grid`` lays it out."""

from __future__ import annotations

import numpy as np


def point_grid(points_per_side: int) -> np.ndarray:
    """n*n x 2 float64 (x, y) in [0, 1]: cell centres, rows top to bottom, x fastest.

    Identical to ``segment_anything.utils.amg.build_point_grid`` (and SAM 2's copy).
    """
    offset = 1 / (2 * points_per_side)
    side = np.linspace(offset, 1 - offset, points_per_side)
    xs = np.tile(side[None, :], (points_per_side, 1))
    ys = np.tile(side[:, None], (1, points_per_side))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def grid_points(points_per_side: int, image_size: tuple[int, int]) -> np.ndarray:
    """The grid in original-image pixels, n*n x 2 float64 (x, y), for an (H, W) image."""
    height, width = image_size
    return point_grid(points_per_side) * np.array([[width, height]], dtype=np.float64)
