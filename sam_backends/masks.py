"""Masks as data: the one RLE codec and the one box convention of the whole project.

* RLE: COCO run-length encoding through ``pycocotools`` (what COCO tools read), as a JSON-ready
  ``{"size": [H, W], "counts": str}``. ``decode_rle`` also takes counts as bytes.
* Boxes: XYXY in original-image pixels with an **exclusive** max: ``(x0, y0, x1, y1)`` where
  ``x1`` is the last column + 1 and ``y1`` the last row + 1, so ``x1 - x0`` is the width in
  pixels and ``mask[y0:y1, x0:x1]`` is the tight crop. This is also how a dragged box prompt
  reads (its corners are pixel edges). COCO's ``[x, y, w, h]`` is derived from it where a file
  format asks for it.

The engine owns these because it stores and returns masks (``video.MaskTrack``, automatic and
text instances); the application layer (``workbench``) imports them from here.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

Box = tuple[int, int, int, int]


def encode_rle(mask: np.ndarray) -> dict:
    """A bool H x W mask as COCO RLE ``{"size": [H, W], "counts": str}``."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: Mapping) -> np.ndarray:
    """COCO RLE (counts as str or bytes) -> bool H x W."""
    from pycocotools import mask as mask_utils

    counts = rle["counts"]
    payload = {"size": list(rle["size"]),
               "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    with warnings.catch_warnings():  # pycocotools 2.0 + numpy 2: a harmless copy= warning
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(payload).astype(bool)


def rle_area(rle: Mapping) -> int:
    """Pixels set in a COCO RLE mask (counts as str or bytes), read from its runs without
    decoding the mask (a few microseconds, for "is this object on this frame")."""
    from pycocotools import mask as mask_utils

    counts = rle["counts"]
    payload = {"size": list(rle["size"]),
               "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return int(mask_utils.area(payload))


def mask_box(mask: np.ndarray) -> Box | None:
    """The tight XYXY box (exclusive max, see the module docstring); None for an empty mask."""
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """``mask_box`` of each bool N x H x W mask as float32 N x 4; an empty mask gives zeros."""
    masks = np.asarray(masks, dtype=bool)
    boxes = np.zeros((masks.shape[0], 4), np.float32)
    for i, mask in enumerate(masks):
        box = mask_box(mask)
        if box is not None:
            boxes[i] = box
    return boxes


def coco_bbox(box: Box | None) -> list[float]:
    """COCO's ``[x, y, w, h]`` of a ``mask_box`` (zeros for an empty mask, as pycocotools)."""
    if box is None:
        return [0.0, 0.0, 0.0, 0.0]
    x0, y0, x1, y1 = box
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
