"""``sam_backends.video.holes``: upstream's small-hole rule (8-connected background components
of at most ``max_area`` pixels become 0.1), checked against scipy's labelling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sam_backends.video.holes import FILLED_SCORE, fill_small_holes, small_holes


def reference_holes(background: np.ndarray, max_area: int) -> np.ndarray:
    from scipy import ndimage

    labels, count = ndimage.label(background, structure=np.ones((3, 3), int))
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    small = areas <= max_area
    small[0] = False
    return small[labels]


@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 24), st.integers(1, 24))), st.integers(1, 12))
def test_same_components_as_scipy(background, max_area):
    np.testing.assert_array_equal(small_holes(background, max_area),
                                  reference_holes(background, max_area))


def test_fill_small_holes_on_logits():
    logits = torch.full((2, 1, 16, 16), 5.0)
    logits[0, 0, 2:4, 2:4] = -3.0  # a 4-pixel hole: filled
    logits[0, 0, 8:11, 8:11] = -3.0  # 9 pixels: kept
    logits[0, 0, 5, 5] = -1.0
    logits[0, 0, 6, 6] = -1.0  # two pixels touching at a corner: one 2-pixel hole
    logits[1, 0, :, 8:] = -2.0  # half the second mask is background: kept
    filled = fill_small_holes(logits, 8)
    assert filled.dtype == logits.dtype and filled.shape == logits.shape
    assert (filled[0, 0, 2:4, 2:4] == FILLED_SCORE).all()
    assert filled[0, 0, 5, 5] == FILLED_SCORE and filled[0, 0, 6, 6] == FILLED_SCORE
    assert (filled[0, 0, 8:11, 8:11] == -3.0).all()
    assert torch.equal(filled[1], logits[1])
    unchanged = logits > 0
    assert torch.equal(filled[unchanged], logits[unchanged])


@pytest.mark.parametrize("max_area", [0, -1])
def test_no_area_no_change(max_area):
    logits = torch.randn(1, 1, 8, 8)
    assert fill_small_holes(logits, max_area) is logits
