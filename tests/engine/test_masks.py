"""The one RLE codec and the one box convention (``sam_backends.masks``), against pycocotools."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from sam_backends.masks import coco_bbox, decode_rle, encode_rle, mask_box, mask_boxes


def masks():
    rng = np.random.default_rng(7)
    ring = np.zeros((33, 47), bool)
    yy, xx = np.mgrid[:33, :47]
    ring[(20 < (yy - 16) ** 2 + (xx - 23) ** 2) & ((yy - 16) ** 2 + (xx - 23) ** 2 < 120)] = True
    corner = np.zeros((33, 47), bool)
    corner[-3:, -5:] = True  # touching the bottom-right edge
    return [ring, corner, rng.random((33, 47)) > 0.6, np.zeros((33, 47), bool),
            np.ones((1, 1), bool)]


@pytest.mark.parametrize("index", range(5))
def test_rle_is_pycocotools_rle(index):
    mask = masks()[index]
    rle = encode_rle(mask)
    json.dumps(rle)  # JSON-ready: counts as text
    theirs = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert rle["size"] == list(mask.shape) and rle["counts"] == theirs["counts"].decode("ascii")
    np.testing.assert_array_equal(decode_rle(rle), mask)
    np.testing.assert_array_equal(decode_rle({**rle, "counts": rle["counts"].encode()}), mask)
    np.testing.assert_array_equal(mask_utils.decode(theirs).astype(bool), decode_rle(rle))


@pytest.mark.parametrize("index", range(5))
def test_box_is_xyxy_with_an_exclusive_max(index):
    mask = masks()[index]
    box = mask_box(mask)
    if not mask.any():
        assert box is None and coco_bbox(box) == [0.0, 0.0, 0.0, 0.0]
        return
    x0, y0, x1, y1 = box
    assert mask[y0:y1, x0:x1].sum() == mask.sum()  # the slice is the tight crop
    assert mask[y0, :].any() and mask[y1 - 1, :].any() and mask[:, x0].any()
    assert mask[:, x1 - 1].any()
    coded = encode_rle(mask)
    coded = {"size": coded["size"], "counts": coded["counts"].encode("ascii")}
    assert coco_bbox(box) == [float(v) for v in mask_utils.toBbox(coded)]  # COCO's w, h agree


def test_mask_boxes_is_mask_box_per_mask():
    stack = np.stack(masks()[:4])
    boxes = mask_boxes(stack)
    assert boxes.dtype == np.float32 and boxes.shape == (4, 4)
    for mask, row in zip(stack, boxes):
        assert tuple(row) == (mask_box(mask) or (0, 0, 0, 0))
    assert mask_box(masks()[1]) == (42, 30, 47, 33)  # ends at the image's size, not size - 1
