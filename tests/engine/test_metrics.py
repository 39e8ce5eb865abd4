"""IoU, boundary F-score, pairwise IoU and disagreement on hand-made masks."""

import math

import numpy as np
import pytest

from sam_backends.evaluation.metrics import (
    boundary_fscore,
    disagreement_mask,
    mask_boundary,
    mask_iou,
    pairwise_iou,
    vote_count,
)


def rect(shape, x0, y0, x1, y1):
    """Bool mask with columns x0..x1-1 and rows y0..y1-1 set."""
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_iou_of_overlapping_rectangles():
    a = rect((50, 60), 0, 0, 20, 10)  # 200 px
    b = rect((50, 60), 10, 0, 30, 10)  # 200 px, 100 shared
    assert mask_iou(a, b) == pytest.approx(100 / 300)
    assert mask_iou(a, a) == 1.0
    assert mask_iou(a, rect((50, 60), 40, 30, 50, 40)) == 0.0


def test_iou_empty_masks():
    empty = np.zeros((8, 8), bool)
    assert mask_iou(empty, empty) == 1.0
    assert mask_iou(empty, rect((8, 8), 1, 1, 3, 3)) == 0.0


def test_iou_accepts_non_zero_as_object():
    a = np.zeros((4, 4), np.uint8)
    a[0, :2] = 255
    assert mask_iou(a, a > 0) == 1.0


def test_iou_refuses_different_sizes():
    with pytest.raises(ValueError, match="different sizes"):
        mask_iou(np.zeros((4, 5), bool), np.zeros((5, 4), bool))


def test_boundary_is_inner_ring_and_ignores_image_border():
    mask = rect((20, 20), 5, 5, 10, 10)
    edge = mask_boundary(mask)
    assert np.count_nonzero(edge) == 16  # 5x5 square minus its 3x3 interior
    assert not edge[7, 7]
    full = np.ones((6, 6), bool)
    assert not mask_boundary(full).any()
    half = rect((10, 10), 0, 0, 10, 5)  # touches three image edges: only the bottom row counts
    assert np.array_equal(np.nonzero(mask_boundary(half))[0], np.full(10, 4))


def test_boundary_fscore_identical_and_disjoint():
    a = rect((100, 100), 10, 10, 40, 40)
    score = boundary_fscore(a, a)
    assert (score.precision, score.recall, score.fscore) == (1.0, 1.0, 1.0)
    far = rect((100, 100), 60, 60, 90, 90)
    assert boundary_fscore(far, a).fscore == 0.0


def test_boundary_fscore_tolerance_is_share_of_diagonal():
    score = boundary_fscore(np.zeros((300, 400), bool), np.zeros((300, 400), bool))
    assert score.tolerance_px == pytest.approx(0.0075 * 500)
    assert score.fscore == 1.0
    assert boundary_fscore(np.zeros((10, 10), bool), np.zeros((10, 10), bool)).tolerance_px == 1.0


def test_boundary_fscore_shift_within_and_beyond_tolerance():
    target = rect((300, 400), 100, 100, 200, 200)  # tolerance 3.75 px
    near = rect((300, 400), 103, 100, 203, 200)  # 3 px shift: every edge pixel within 3.75
    assert boundary_fscore(near, target).fscore == 1.0
    far = rect((300, 400), 110, 100, 210, 200)  # 10 px shift: vertical edges miss
    score = boundary_fscore(far, target)
    expected_p = brute_force_matched(far, target, 3.75)
    expected_r = brute_force_matched(target, far, 3.75)
    assert 0.3 < expected_p < 0.7  # a real partial match, not a degenerate case
    assert score.precision == pytest.approx(expected_p)
    assert score.recall == pytest.approx(expected_r)
    assert score.fscore == pytest.approx(2 * expected_p * expected_r / (expected_p + expected_r))


def brute_force_matched(source, other, tolerance):
    """Share of source's boundary pixels within tolerance of other's, by all-pairs distances."""
    a = np.argwhere(mask_boundary(source)).astype(float)
    b = np.argwhere(mask_boundary(other)).astype(float)
    distances = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    return float((distances.min(axis=1) <= tolerance).mean())


def test_boundary_fscore_one_empty():
    target = rect((50, 50), 10, 10, 20, 20)
    score = boundary_fscore(np.zeros_like(target), target)
    assert score.fscore == 0.0 and score.recall == 0.0
    score = boundary_fscore(np.zeros_like(target), target, tolerance_px=5)
    assert score.tolerance_px == 5


def test_pairwise_iou_matrix():
    a = rect((10, 10), 0, 0, 4, 4)
    b = rect((10, 10), 2, 0, 6, 4)
    c = np.zeros((10, 10), bool)
    matrix = pairwise_iou([a, b, c])
    assert matrix.shape == (3, 3)
    assert np.allclose(np.diag(matrix), 1.0)
    assert matrix[0, 1] == matrix[1, 0] == pytest.approx(8 / 24)
    assert matrix[0, 2] == 0.0 and matrix[2, 1] == 0.0


def test_disagreement_marks_pixels_where_models_differ():
    a = rect((10, 10), 0, 0, 4, 4)
    b = rect((10, 10), 2, 0, 6, 4)
    votes = vote_count([a, b, a])
    assert votes[0, 0] == 2 and votes[0, 3] == 3 and votes[0, 5] == 1 and votes[9, 9] == 0
    differ = disagreement_mask([a, b, a])
    assert np.array_equal(differ, a ^ b)
    assert not disagreement_mask([a, a]).any()


def test_shapes_are_checked():
    with pytest.raises(ValueError):
        pairwise_iou([np.zeros((4, 4), bool), np.zeros((4, 5), bool)])
    with pytest.raises(ValueError):
        vote_count([])
    with pytest.raises(ValueError, match="2-D"):
        mask_iou(np.zeros((1, 4, 4), bool), np.zeros((1, 4, 4), bool))


def test_tolerance_scales_with_image():
    # same relative shift on a larger image is still within tolerance
    target = rect((600, 800), 200, 200, 400, 400)  # tolerance 7.5 px
    shifted = rect((600, 800), 207, 200, 407, 400)
    assert boundary_fscore(shifted, target).fscore == 1.0
    assert math.isclose(boundary_fscore(shifted, target).tolerance_px, 7.5)
