"""The many-objects result: shapes checked at construction, selection keeps rows together."""

import numpy as np
import pytest

from sam_backends import Instances
from sam_backends.masks import mask_boxes


def _two() -> Instances:
    masks = np.zeros((2, 6, 8), bool)
    masks[0, 1:3, 2:5] = True
    masks[1, 4:6, 0:8] = True
    return Instances(masks, [0.9, 0.4], mask_boxes(masks), ("dog", "car"), "m")


def test_boxes_are_tight_and_exclusive_at_the_far_edge():
    inst = _two()
    assert inst.boxes.tolist() == [[2, 1, 5, 3], [0, 4, 8, 6]]
    assert inst.areas.tolist() == [6, 16]
    assert mask_boxes(np.zeros((1, 3, 3), bool)).tolist() == [[0, 0, 0, 0]]


def test_select_and_threshold_keep_masks_scores_boxes_and_labels_aligned():
    inst = _two()
    kept = inst.above(0.5)
    assert len(kept) == 1 and kept.labels == ("dog",)
    assert np.array_equal(kept.masks[0], inst.masks[0])
    picked = inst.select([1])
    assert picked.labels == ("car",) and picked.scores.tolist() == pytest.approx([0.4])
    assert np.array_equal(inst.select([False, True]).boxes, inst.boxes[1:])


def test_mismatched_lengths_are_refused_with_the_counts():
    masks = np.zeros((2, 4, 4), bool)
    with pytest.raises(ValueError, match="2 masks need 2 scores"):
        Instances(masks, [0.5], np.zeros((2, 4)), ("a", "b"))
    with pytest.raises(ValueError, match="N x H x W"):
        Instances(np.zeros((4, 4), bool), [], np.zeros((0, 4)), ())


def test_empty_has_the_image_size():
    empty = Instances.empty((30, 40))
    assert len(empty) == 0 and empty.image_size == (30, 40)
