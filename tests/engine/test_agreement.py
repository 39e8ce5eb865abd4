"""``automatic.agreement``: the bit-packed intersections equal the plain IoU of every pair."""

from __future__ import annotations

import numpy as np
import pytest

from sam_backends.automatic.agreement import best_ious, matched_share


def _blobs(rng: np.random.Generator, count: int, shape: tuple[int, int]) -> np.ndarray:
    """Rectangles with speckle inside (boxes that overlap, partly or not) and one empty mask."""
    masks = np.zeros((count, *shape), dtype=bool)
    height, width = shape
    for mask in masks[1:]:
        y0, x0 = rng.integers(0, height - 1), rng.integers(0, width - 1)
        y1, x1 = rng.integers(y0 + 1, height + 1), rng.integers(x0 + 1, width + 1)
        mask[y0:y1, x0:x1] = rng.random((y1 - y0, x1 - x0)) < 0.8
    return masks


def _plain(reference: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    inter = (reference[:, None] & candidates[None]).sum(axis=(2, 3))
    union = (reference[:, None] | candidates[None]).sum(axis=(2, 3))
    iou = np.divide(inter, union, out=np.zeros(inter.shape), where=union > 0)
    return iou.max(axis=1)


@pytest.mark.parametrize("shape", [(37, 131), (64, 64), (50, 200), (9, 7)])
@pytest.mark.parametrize("popcount", ["numpy", "table"])
def test_best_ious_equal_the_plain_iou(shape, popcount, monkeypatch):
    if popcount == "table":  # NumPy 1.26 has no bitwise_count: the byte table counts
        monkeypatch.delattr(np, "bitwise_count", raising=False)
    rng = np.random.default_rng(sum(shape))
    reference, candidates = _blobs(rng, 12, shape), _blobs(rng, 9, shape)
    candidates[3] = reference[5]  # one exact match
    expected = _plain(reference, candidates)
    np.testing.assert_allclose(best_ious(reference, candidates), expected, rtol=0, atol=1e-12)
    assert expected[5] == 1.0 and expected[0] == 0.0  # the match; the empty mask has none
    assert matched_share(reference, candidates) == float(np.mean(expected >= 0.9))
