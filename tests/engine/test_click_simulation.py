"""Where the click protocol places its clicks, checked exactly on hand-made masks."""

import numpy as np
import pytest

from sam_backends.evaluation.click_simulation import (
    Click,
    ClickTrace,
    first_click,
    interior_point,
    largest_error_region,
    next_click,
    tight_box,
)


def rect(shape, x0, y0, x1, y1):
    """Bool mask with columns x0..x1-1 and rows y0..y1-1 set."""
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_first_click_on_a_rectangle_is_its_centre():
    target = rect((64, 64), 10, 20, 31, 31)  # 21 x 11: columns 10..30, rows 20..30
    assert first_click(target) == Click(20, 25, True)
    assert first_click(target).label == 1


def test_first_click_on_a_square_is_its_centre():
    assert first_click(rect((40, 50), 5, 7, 14, 16)) == Click(9, 11, True)


def test_image_border_counts_as_boundary():
    # touches the left and top image edges: the click stays away from them
    target = rect((60, 60), 0, 0, 11, 41)  # columns 0..10, rows 0..40
    assert first_click(target) == Click(5, 20, True)


def test_interior_point_of_a_disc_is_its_centre():
    yy, xx = np.mgrid[0:80, 0:100]
    disc = (xx - 61) ** 2 + (yy - 33) ** 2 <= 15**2
    assert interior_point(disc) == (61, 33)


def test_interior_point_of_a_ring_stays_inside_the_ring():
    yy, xx = np.mgrid[0:81, 0:81]
    radius = np.hypot(xx - 40, yy - 40)
    ring = (radius >= 20) & (radius <= 30)
    x, y = interior_point(ring)
    assert ring[y, x]
    assert 23 <= np.hypot(x - 40, y - 40) <= 27  # on the middle of the band, not its edge


def test_empty_region_is_refused():
    with pytest.raises(ValueError, match="empty"):
        interior_point(np.zeros((5, 5), bool))
    with pytest.raises(ValueError, match="empty"):
        tight_box(np.zeros((5, 5), bool))


def test_missed_region_gives_positive_click_at_its_centre():
    target = rect((100, 100), 10, 10, 90, 90)
    prediction = target.copy()
    prediction[40:47, 60:67] = False  # a 7x7 hole the model missed: columns 60..66, rows 40..46
    prediction[2:5, 2:5] = True  # a smaller 3x3 false positive
    assert next_click(prediction, target) == Click(63, 43, True)
    assert next_click(prediction, target).positive


def test_false_positive_region_gives_negative_click_at_its_centre():
    target = rect((100, 100), 10, 10, 50, 50)
    prediction = target.copy()
    prediction[60:69, 70:79] = True  # 9x9 spill outside the object: columns 70..78, rows 60..68
    prediction[20:25, 20:25] = False  # smaller 5x5 miss
    click = next_click(prediction, target)
    assert click == Click(74, 64, False)
    assert click.label == 0


def test_largest_region_is_chosen_by_area_not_thickness():
    target = np.zeros((100, 100), bool)
    target[10:13, 10:41] = True  # thin strip, 3 x 31 = 93 px: columns 10..40, rows 10..12
    target[50:59, 50:59] = True  # thick square, 81 px
    prediction = np.zeros_like(target)
    assert next_click(prediction, target) == Click(25, 11, True)
    # while the first click of the protocol goes to the thickest point (the square's centre)
    assert first_click(target) == Click(54, 54, True)


def test_tie_in_area_goes_to_the_missed_region():
    target = rect((60, 60), 0, 0, 30, 60)
    prediction = target.copy()
    prediction[10:15, 10:15] = False  # 5x5 missed
    prediction[40:45, 40:45] = True  # 5x5 false positive
    region, positive = largest_error_region(prediction, target)
    assert positive and np.count_nonzero(region) == 25 and region[12, 12]
    assert next_click(prediction, target) == Click(12, 12, True)


def test_diagonal_neighbours_form_one_region():
    target = np.zeros((30, 30), bool)
    prediction = np.zeros_like(target)
    prediction[5:8, 5:8] = True  # two 3x3 squares touching at a corner: one 18-px region
    prediction[8:11, 8:11] = True
    prediction[20:24, 20:24] = True  # a 16-px square elsewhere
    region, positive = largest_error_region(prediction, target)
    assert not positive and np.count_nonzero(region) == 18


def test_no_click_when_prediction_is_exact():
    target = rect((20, 20), 3, 3, 9, 9)
    assert next_click(target.copy(), target) is None
    with pytest.raises(ValueError, match="no error"):
        largest_error_region(target, target)


def test_tight_box_uses_far_pixel_edges():
    target = rect((50, 80), 12, 7, 30, 21)  # columns 12..29, rows 7..20
    assert tight_box(target) == (12, 7, 30, 21)


def test_noc_and_iou_after():
    trace = ClickTrace(clicks=(), ious=(0.5, 0.86, 0.88, 0.91, 0.95), decode_seconds=())
    assert trace.noc(0.85) == 2
    assert trace.noc(0.90) == 4
    assert trace.noc(0.99) == 5  # never reached: capped at the budget
    assert trace.iou_after(1) == 0.5 and trace.iou_after(3) == 0.88
