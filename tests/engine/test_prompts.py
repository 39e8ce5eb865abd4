"""Prompts that are not clean: every mistake is a PromptError with a message that says why."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sam_backends import PromptError, Prompts
from sam_backends.types import LOW_RES_SIZE

SIZE = (100, 200)  # H, W


def test_defaults_and_normalised_types():
    prompts = Prompts(points=np.array([[10, 20], [30.5, 40]]), labels=np.array([1, 0]))
    assert prompts.points == ((10.0, 20.0), (30.5, 40.0))
    assert prompts.labels == (1, 0)
    assert all(isinstance(v, float) for point in prompts.points for v in point)
    assert all(type(label) is int for label in prompts.labels)
    assert prompts.box is None and prompts.mask_input is None and prompts.multimask is False
    assert Prompts(box=(10, 20, 200, 300)).box == (10.0, 20.0, 200.0, 300.0)
    hash(Prompts(points=[(1, 2)], labels=[1], box=(0, 0, 5, 5)))  # frozen and hashable


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float32("nan")])
def test_non_finite_point(bad):
    with pytest.raises(PromptError, match="finite"):
        Prompts(points=[(bad, 5)], labels=[1])
    with pytest.raises(PromptError, match="Point 0 y"):
        Prompts(points=[(5, bad)], labels=[1])


def test_non_finite_box():
    with pytest.raises(PromptError, match="finite"):
        Prompts(box=(0, 0, math.inf, 10))


@pytest.mark.parametrize("bad", ["ten", None, object()])
def test_non_numeric_coordinates(bad):
    with pytest.raises(PromptError, match="must be a number"):
        Prompts(points=[(bad, 1)], labels=[1])


@pytest.mark.parametrize(
    ("point", "message"),
    [((1,), r"\(x, y\) pair"), ((1, 2, 3), r"\(x, y\) pair"), (5, r"\(x, y\) pair"),
     ("xy", "must be a number")],
)
def test_malformed_point(point, message):
    with pytest.raises(PromptError, match=message):
        Prompts(points=[point], labels=[1])


@pytest.mark.parametrize(("points", "labels"), [([(1, 2)], []), ([(1, 2)], [1, 0]), ([], [1])])
def test_mismatched_labels(points, labels):
    with pytest.raises(PromptError, match=r"point\(s\) but .* label\(s\)"):
        Prompts(points=points, labels=labels)


@pytest.mark.parametrize("label", [2, -1, 0.5, True, "1", None])
def test_bad_label_values(label):
    with pytest.raises(PromptError, match="1 for foreground or 0 for background"):
        Prompts(points=[(1, 2)], labels=[label])


def test_inverted_box_is_normalised():
    assert Prompts(box=(50, 60, 10, 20)).box == (10.0, 20.0, 50.0, 60.0)
    assert Prompts(box=np.array([50, 20, 10, 60])).box == (10.0, 20.0, 50.0, 60.0)


@pytest.mark.parametrize("box", [(1, 2, 3), (1, 2, 3, 4, 5), "abcd-ish", 7])
def test_malformed_box(box):
    with pytest.raises(PromptError, match=r"\(x0, y0, x1, y1\)"):
        Prompts(box=box)


def test_empty_prompts():
    prompts = Prompts()
    assert prompts.is_empty
    with pytest.raises(PromptError, match="No prompt"):
        prompts.validate_for_image(SIZE)
    assert not Prompts(box=(0, 0, 5, 5)).is_empty


@pytest.mark.parametrize("point", [(-1, 5), (200, 5), (5, 100), (5, -0.5), (1e9, 1e9)])
def test_points_outside_the_image(point):
    with pytest.raises(PromptError, match="outside the 200x100 image"):
        Prompts(points=[point], labels=[1]).validate_for_image(SIZE)


def test_points_on_the_last_pixel_are_inside():
    Prompts(points=[(0, 0), (199.9, 99.9)], labels=[1, 0]).validate_for_image(SIZE)


@pytest.mark.parametrize("box", [(-1, 0, 10, 10), (0, 0, 201, 10), (0, 0, 10, 101)])
def test_box_outside_the_image(box):
    with pytest.raises(PromptError, match="outside the 200x100 image"):
        Prompts(box=box).validate_for_image(SIZE)


def test_box_touching_the_far_edges_is_inside():
    Prompts(box=(0, 0, 200, 100)).validate_for_image(SIZE)


@pytest.mark.parametrize("box", [(10, 10, 10, 50), (10, 10, 50, 10.5)])
def test_empty_box(box):
    with pytest.raises(PromptError, match="empty"):
        Prompts(box=box).validate_for_image(SIZE)


def test_mask_input_shapes():
    logits = np.zeros((1, LOW_RES_SIZE, LOW_RES_SIZE), np.float32)
    kept = Prompts(box=(0, 0, 5, 5), mask_input=logits).mask_input
    assert kept.shape == (1, 256, 256) and kept.dtype == np.float32
    assert not kept.flags.writeable
    squeezed = Prompts(box=(0, 0, 5, 5), mask_input=np.zeros((256, 256))).mask_input
    assert squeezed.shape == (1, 256, 256) and squeezed.dtype == np.float32


@pytest.mark.parametrize("shape", [(3, 256, 256), (1, 64, 64), (256,), (1, 1, 256, 256)])
def test_bad_mask_input_shape(shape):
    with pytest.raises(PromptError, match=r"1x256x256.*got shape"):
        Prompts(box=(0, 0, 5, 5), mask_input=np.zeros(shape, np.float32))


def test_non_finite_mask_input():
    logits = np.zeros((1, 256, 256), np.float32)
    logits[0, 3, 4] = np.nan
    with pytest.raises(PromptError, match="NaN"):
        Prompts(box=(0, 0, 5, 5), mask_input=logits)


def test_errors_are_value_errors_for_generic_callers():
    with pytest.raises(ValueError):
        Prompts(points=[(math.nan, 0)], labels=[1])
