"""The REST API's pictures: an overlay of every object, and cut-outs full or cropped.

Pure numpy (and OpenCV for the contour), so they are tested without a server. Images are RGB
uint8 H x W x 3, masks bool H x W, boxes XYXY pixel edges (x1 = last column + 1).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from workbench.exports import cutout_rgba

CONTOUR_PX = 2
CROP_MARGIN_PX = 2


def hex_rgb(color: str) -> tuple[int, int, int]:
    """``"#1e90ff"`` -> (30, 144, 255)."""
    text = color.lstrip("#")
    if len(text) != 6:
        raise ValueError(f"expected a colour as #rrggbb, got {color!r}")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """XYXY pixel edges of the mask's True pixels; None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def contour(mask: np.ndarray, width: int = CONTOUR_PX) -> np.ndarray:
    """The ``width`` pixels inside the mask's border (bool H x W): mask minus its erosion."""
    import cv2

    mask8 = np.asarray(mask, dtype=np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    eroded = cv2.erode(mask8, kernel, iterations=width, borderType=cv2.BORDER_CONSTANT,
                       borderValue=0)
    return (mask8 > 0) & (eroded == 0)


def overlay(image: np.ndarray, masks: Sequence[np.ndarray], color: tuple[int, int, int],
            opacity: float) -> np.ndarray:
    """``image`` with every mask's union blended in ``color`` at ``opacity`` and each mask's
    contour drawn opaque (so touching objects stay apart). RGB uint8 H x W x 3."""
    out = np.array(image, dtype=np.uint8, copy=True)
    if not masks:
        return out
    union = np.logical_or.reduce([np.asarray(m, dtype=bool) for m in masks])
    tint = np.asarray(color, dtype=np.float32)
    blended = out[union].astype(np.float32) * (1.0 - opacity) + tint * opacity
    out[union] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    for mask in masks:
        out[contour(mask)] = color
    return out


def cutout(image: np.ndarray, mask: np.ndarray, cropped: bool,
           margin: int = CROP_MARGIN_PX) -> np.ndarray:
    """RGBA cut-out (see ``workbench.exports.cutout_rgba``): full size, or cropped to the mask's box
    plus ``margin`` pixels (clipped to the image). An empty mask cropped is 1 x 1 transparent."""
    rgba = cutout_rgba(image, mask)
    if not cropped:
        return rgba
    box = mask_box(mask)
    if box is None:
        return np.zeros((1, 1, 4), np.uint8)
    height, width = mask.shape
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(rgba[max(0, y0 - margin):min(height, y1 + margin),
                                     max(0, x0 - margin):min(width, x1 + margin)])
