"""The REST API's pictures: an overlay of every object, and cut-outs full or cropped.

Drawn with the one drawing spec (``workbench.drawing.SPEC`` through ``workbench.render``), so an
object looks the same here as on the page and in a video export: object ``index`` (from 0) has
``SPEC.colour_for(index + 1)`` unless the request names one colour for every mask. Images are
RGB uint8 H x W x 3, masks bool H x W, boxes XYXY with an exclusive max
(``sam_backends.masks``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from workbench.drawing import RGB, SPEC
from workbench.exports import crop_box, cutout_rgba
from workbench.render import Layer, compose


def overlay(image: np.ndarray, masks: Sequence[np.ndarray], color: RGB | None = None,
            opacity: float | None = None) -> np.ndarray:
    """``image`` with each mask filled and outlined as the page draws it (``compose``).

    Args:
        color: one colour for every mask; None gives each object its spec colour.
        opacity: the fill's opacity; None is the spec's ``fill_opacity``.
    """
    layers = [Layer(np.asarray(mask, dtype=bool),
                    color if color is not None else SPEC.colour_for(index + 1))
              for index, mask in enumerate(masks)]
    alpha = SPEC.fill_opacity if opacity is None else opacity
    return compose(np.asarray(image, dtype=np.uint8), layers, alpha=alpha)


def cutout(image: np.ndarray, mask: np.ndarray, cropped: bool) -> np.ndarray:
    """RGBA cut-out (see ``workbench.exports.cutout_rgba``): full size, or cropped to
    ``workbench.exports.crop_box`` (the one crop rule). An empty mask cropped is 1 x 1
    transparent."""
    rgba = cutout_rgba(image, mask)
    if not cropped:
        return rgba
    if not np.any(mask):
        return np.zeros((1, 1, 4), np.uint8)
    x0, y0, x1, y1 = crop_box(mask)
    return np.ascontiguousarray(rgba[y0:y1, x0:x1])
