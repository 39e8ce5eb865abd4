"""Brush, eraser and polygon edits (``workbench.segment.edits``) and how a ``Step`` keeps them.

Every rasterisation is checked pixel by pixel against a mask computed here another way: a
per-pixel distance in plain Python for strokes, half-plane tests for polygons, hand-counted
discs for the tie rule (a centre exactly ``r`` away is covered).
"""

from __future__ import annotations

import io
import math
import random

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from workbench.objects import MaskEdits, MaskResult, PromptSet, SegObject, Step
from workbench.segment import edits
from workbench.segment.edits import EditError, Stroke

SHAPE = (40, 56)  # H, W


def brute_stroke(shape, points, radius):
    """Distance from each pixel centre to the polyline, by the perpendicular foot when it lies
    on the segment and the nearer end otherwise (a formula unlike the module's clamped t)."""
    height, width = shape
    out = np.zeros(shape, bool)
    segments = list(zip(points, points[1:])) or [(points[0], points[0])]
    for i in range(height):
        for j in range(width):
            cx, cy = j + 0.5, i + 0.5
            best = math.inf
            for (x0, y0), (x1, y1) in segments:
                ends = min(math.hypot(cx - x0, cy - y0), math.hypot(cx - x1, cy - y1))
                length = math.hypot(x1 - x0, y1 - y0)
                if length > 0:
                    along = ((cx - x0) * (x1 - x0) + (cy - y0) * (y1 - y0)) / length
                    if 0 <= along <= length:
                        ends = min(ends, abs((cx - x0) * (y1 - y0) - (cy - y0) * (x1 - x0))
                                   / length)
                best = min(best, ends)
            out[i, j] = best <= radius
    return out


def test_a_dot_is_the_disc_of_centres_within_r_ties_included():
    # centre on a pixel centre: offsets with dx^2 + dy^2 <= r^2 -> 5 pixels for r 1, 13 for r 2
    for radius, count in ((1, 5), (2, 13), (3, 29)):
        mask = edits.stroke_mask(SHAPE, [(10.5, 20.5)], radius)
        assert mask.sum() == count
        ii, jj = np.nonzero(mask)
        assert np.all((ii - 20) ** 2 + (jj - 10) ** 2 <= radius ** 2)
    # between four centres, radius 0.5: no centre is within reach; radius sqrt(0.5): all four
    assert edits.stroke_mask(SHAPE, [(10.0, 10.0)], 0.5).sum() == 0
    assert edits.stroke_mask(SHAPE, [(10.0, 10.0)], math.sqrt(0.5)).sum() == 4


@pytest.mark.parametrize("seed", range(6))
def test_strokes_match_the_per_pixel_distance(seed):
    rng = random.Random(seed)
    points = [(rng.uniform(-5, 61), rng.uniform(-5, 45)) for _ in range(rng.randint(1, 6))]
    radius = rng.choice([0.7, 1.0, 2.5, 4.0, 7.3])
    np.testing.assert_array_equal(edits.stroke_mask(SHAPE, points, radius),
                                  brute_stroke(SHAPE, points, radius))


def test_a_horizontal_stroke_is_a_capsule():
    mask = edits.stroke_mask(SHAPE, [(10.5, 20.5), (30.5, 20.5)], 2)
    expected = np.zeros(SHAPE, bool)
    expected[18:23, 10:31] = True  # the straight part, ends included: rows 18..22 (|dy| <= 2)
    expected[[19, 20, 21], 9] = expected[[19, 20, 21], 31] = True  # the round caps
    expected[20, 8] = expected[20, 32] = True
    np.testing.assert_array_equal(mask, expected)


def model_step(mask: np.ndarray) -> Step:
    logits = np.full((1, 256, 256), 3.0, np.float32)
    return Step(PromptSet(points=((5.0, 5.0),), labels=(1,)),
                MaskResult.from_mask(mask, 0.9, logits, "sam-x"))


def test_brush_then_eraser_edit_the_model_mask_exactly():
    model = np.zeros(SHAPE, bool)
    model[5:15, 5:15] = True
    step = model_step(model)
    brush = Stroke(((20.5, 30.5), (40.5, 30.5)), 3.0, "add")
    painted = edits.painted(step, brush, SHAPE)
    added = edits.stroke_mask(SHAPE, brush.points, 3.0)
    np.testing.assert_array_equal(painted.result.mask(), model | added)
    eraser = Stroke(((10.5, 0.0), (10.5, 40.0)), 1.5, "erase")
    erased = edits.painted(painted, eraser, SHAPE)
    removed = edits.stroke_mask(SHAPE, eraser.points, 1.5)
    np.testing.assert_array_equal(erased.result.mask(), (model | added) & ~removed)
    # the model's own mask and logits stay reachable (refinement feeds them back)
    assert erased.model_result is step.result
    assert erased.result.logits is step.result.logits and erased.result.model_id == "sam-x"
    # painting over an erased pixel brings it back: the last stroke wins
    again = edits.painted(erased, Stroke(((10.5, 10.5),), 1.0, "add"), SHAPE)
    assert again.result.mask()[10, 10]


def test_painting_an_empty_object_makes_a_hand_mask():
    stroke = Stroke(((10.5, 10.5),), 2.0, "add")
    step = edits.painted(Step(), stroke, SHAPE)
    assert step.result.model_id == "hand" and step.result.area == 13
    assert step.model_result is None
    erased = edits.painted(step, Stroke(((10.5, 10.5),), 3.0, "erase"), SHAPE)
    assert erased.result is None  # nothing left of a mask the model never made


def expected_polygon(shape, vertices):
    """Centres inside or on a convex polygon (counter-clockwise in y-down pixels is not
    assumed: both orientations are tried), by half-plane tests."""
    height, width = shape
    cy, cx = np.mgrid[:height, :width] + 0.5
    signs = []
    for (x0, y0), (x1, y1) in zip(vertices, vertices[1:] + vertices[:1]):
        signs.append((x1 - x0) * (cy - y0) - (y1 - y0) * (cx - x0))
    signs = np.stack(signs)
    return np.all(signs >= -1e-9, axis=0) | np.all(signs <= 1e-9, axis=0)


def test_polygon_fill_rectangle_triangle_and_hole():
    rect = edits.polygon_mask(SHAPE, [[(10, 5), (30, 5), (30, 20), (10, 20)]])
    expected = np.zeros(SHAPE, bool)
    expected[5:20, 10:30] = True
    np.testing.assert_array_equal(rect, expected)
    triangle = [(3.2, 4.7), (50.1, 12.3), (20.6, 37.9)]
    np.testing.assert_array_equal(edits.polygon_mask(SHAPE, [triangle]),
                                  expected_polygon(SHAPE, triangle))
    # a ring inside another is a hole (even-odd); the hole's own edge pixels stay filled
    ring = edits.polygon_mask(SHAPE, [[(5, 5), (45, 5), (45, 35), (5, 35)],
                                      [(15.5, 15.5), (25.5, 15.5), (25.5, 25.5), (15.5, 25.5)]])
    hole = np.zeros(SHAPE, bool)
    hole[5:35, 5:45] = True
    hole[16:25, 16:25] = False
    np.testing.assert_array_equal(ring, hole)


@pytest.mark.parametrize("seed", range(4))
def test_random_polygons_match_a_per_pixel_even_odd_count(seed):
    rng = random.Random(seed)
    rings = [[(rng.uniform(-3, 59), rng.uniform(-3, 43)) for _ in range(rng.randint(3, 9))]
             for _ in range(rng.randint(1, 3))]
    expected = np.zeros(SHAPE, bool)
    for i in range(SHAPE[0]):
        for j in range(SHAPE[1]):
            cx, cy = j + 0.5, i + 0.5
            crossings = 0
            for ring in rings:
                for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1]):
                    if (y0 > cy) != (y1 > cy) and cx < x0 + (cy - y0) * (x1 - x0) / (y1 - y0):
                        crossings += 1
            expected[i, j] = crossings % 2 == 1
    np.testing.assert_array_equal(edits.polygon_mask(SHAPE, rings), expected)


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_outline_round_trip():
    rect = np.zeros(SHAPE, bool)
    rect[7:31, 12:44] = True
    rings = edits.outline(rect)
    assert len(rings) == 1 and len(rings[0]["points"]) == 4 and not rings[0]["hole"]
    np.testing.assert_array_equal(edits.polygon_mask(SHAPE, [r["points"] for r in rings]), rect)
    yy, xx = np.mgrid[:120, :160]
    shape = (120, 160)
    disc = (xx - 80) ** 2 + (yy - 60) ** 2 <= 45 ** 2
    donut = disc & ((xx - 80) ** 2 + (yy - 60) ** 2 > 15 ** 2)
    for mask in (disc, donut):
        rings = edits.outline(mask)
        assert iou(edits.polygon_mask(shape, [r["points"] for r in rings]), mask) >= 0.98
    rings = edits.outline(disc, edits.EDIT_EPSILON)  # the canvas's coarser outline
    assert iou(edits.polygon_mask(shape, [r["points"] for r in rings]), disc) >= 0.98
    assert sorted(r["hole"] for r in edits.outline(donut)) == [False, True]
    assert edits.outline(np.zeros(SHAPE, bool)) == []


def test_a_polygon_is_kept_as_edits_of_the_model_mask():
    model = np.zeros(SHAPE, bool)
    model[5:15, 5:15] = True
    step = edits.reshaped(model_step(model), [[(5, 5), (25, 5), (25, 10), (5, 10)]], SHAPE)
    expected = np.zeros(SHAPE, bool)
    expected[5:10, 5:25] = True
    np.testing.assert_array_equal(step.result.mask(), expected)
    add, remove = step.edits.masks()
    np.testing.assert_array_equal(add, expected & ~model)
    np.testing.assert_array_equal(remove, model & ~expected)


def test_edits_survive_a_new_model_mask_and_a_candidate_pick():
    model = np.zeros(SHAPE, bool)
    model[5:15, 5:15] = True
    step = edits.painted(model_step(model), Stroke(((40.5, 30.5),), 3.0, "add"), SHAPE)
    step = edits.painted(step, Stroke(((6.5, 6.5),), 1.0, "erase"), SHAPE)
    add, remove = step.edits.masks()
    new_model = np.zeros(SHAPE, bool)
    new_model[0:20, 0:20] = True
    candidates = tuple(MaskResult.from_mask(m, s, None, "sam-x")
                       for m, s in ((new_model, 0.8), (~new_model, 0.7)))
    fresh = Step(PromptSet(), candidates[0], candidates, 0).with_edits(step.edits)
    np.testing.assert_array_equal(fresh.result.mask(), (new_model | add) & ~remove)
    picked = fresh.pick(1)
    np.testing.assert_array_equal(picked.result.mask(), (~new_model | add) & ~remove)
    assert picked.model_result is candidates[1]


def test_undo_and_redo_step_through_edits_and_clear_drops_them():
    model = np.zeros(SHAPE, bool)
    model[5:15, 5:15] = True
    obj = SegObject(1).record(model_step(model))
    obj = obj.record(edits.painted(obj.current, Stroke(((40.5, 30.5),), 3.0, "add"), SHAPE))
    obj = obj.record(edits.painted(obj.current, Stroke(((8.5, 8.5),), 2.0, "erase"), SHAPE))
    shown = obj.result.mask()
    assert shown[30, 40] and not shown[8, 8]
    obj = obj.undo()
    assert obj.result.mask()[8, 8] and obj.result.mask()[30, 40]
    obj = obj.undo()
    np.testing.assert_array_equal(obj.result.mask(), model)
    obj = obj.redo().redo()
    np.testing.assert_array_equal(obj.result.mask(), shown)
    cleared = obj.clear()
    assert cleared.is_empty and cleared.current.edits is None
    np.testing.assert_array_equal(cleared.undo().result.mask(), shown)


def test_requests_are_validated_and_clipped():
    stroke = Stroke.from_json({"points": [[-5, 3], [70, 50.5]], "radius": 2, "mode": "erase"},
                              SHAPE)
    assert stroke.points == ((0.0, 3.0), (56.0, 40.0)) and stroke.mode == "erase"
    bad = [{"points": [], "radius": 2}, {"points": [[1, 2]], "radius": 0},
           {"points": [[1, 2]], "radius": 999}, {"points": [[1, 2]], "radius": 2, "mode": "x"},
           {"points": [[1, "a"]], "radius": 2}, {"points": [[1, 2]], "radius": True},
           {"points": [[1, 2]] * (edits.MAX_STROKE_POINTS + 1), "radius": 2}]
    for body in bad:
        with pytest.raises(EditError) as info:
            Stroke.from_json(body, SHAPE)
        assert info.value.status == 422 and info.value.code == "bad_edit"
    huge = {"points": [[float(i % 50), float(i % 7)] for i in range(1500)], "radius": 256}
    with pytest.raises(EditError, match="shorter strokes or with a smaller brush"):
        Stroke.from_json(huge, (4000, 4000))  # about 400 M pixel tests: refused before work
    with pytest.raises(EditError):
        edits.polygon_from_json({"rings": []}, SHAPE)
    with pytest.raises(EditError):
        edits.polygon_from_json({"rings": [[[1, 2]]] * (edits.MAX_RINGS + 1)}, SHAPE)
    zigzag = [[0, i % 2 * 3999] for i in range(edits.MAX_VERTICES)]
    with pytest.raises(EditError, match="edges are"):
        edits.polygon_from_json({"rings": [zigzag]}, (4000, 4000))
    assert edits.polygon_from_json({"rings": [[[1, 2], [99, -1], [3, 4]]]}, SHAPE) == (
        ((1.0, 2.0), (56.0, 0.0), (3.0, 4.0)),)
    with pytest.raises(ValueError):
        MaskEdits.of(np.zeros((2, 3)), np.zeros((3, 2)))


def test_exports_carry_the_edited_mask():
    from workbench.exports import ExportObject, coco_document, mask_png

    model = np.zeros(SHAPE, bool)
    model[5:15, 5:15] = True
    step = edits.painted(model_step(model), Stroke(((40.5, 30.5),), 3.0, "add"), SHAPE)
    obj = SegObject(1).record(step)
    shown = obj.result.mask()
    assert shown.sum() == model.sum() + 29
    exported = ExportObject(1, obj.result.mask(), obj.result.score, obj.result.model_id,
                            obj.prompts.to_json(), obj.name)
    document = coco_document([exported], "x.png", SHAPE)
    rle = document["annotations"][0]["segmentation"]
    rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), shown)
    png = np.asarray(Image.open(io.BytesIO(mask_png(shown)))) > 0
    np.testing.assert_array_equal(png, shown)


def test_a_project_row_keeps_the_edited_mask_and_marks_it_edited():
    from workbench.projects.workspace_io import object_from_stored, stored_from_object

    model = np.zeros(SHAPE, bool)
    model[5:15, 5:15] = True
    plain = SegObject(1).record(model_step(model))
    assert not stored_from_object(plain, 1, 1).edited
    assert stored_from_object(plain, 1, 1).edits is None
    obj = plain.record(edits.painted(plain.current, Stroke(((40.5, 30.5),), 3.0, "add"), SHAPE))
    row = stored_from_object(obj, 1, 1)
    assert row.edited  # a batch run never replaces it
    np.testing.assert_array_equal(object_from_stored(row).result.mask(), obj.result.mask())


def edited_object() -> SegObject:
    model = np.zeros(SHAPE, bool)
    model[5:15, 5:15] = True
    step = edits.painted(model_step(model), Stroke(((40.5, 30.5),), 3.0, "add"), SHAPE)
    step = edits.painted(step, Stroke(((10.5, 0.0), (10.5, 40.0)), 1.5, "erase"), SHAPE)
    return SegObject(1).record(model_step(model)).record(step)


def test_a_reopened_object_gets_its_edit_layer_back_and_a_new_mask_keeps_it():
    from workbench.projects.workspace_io import object_from_stored, stored_from_object

    obj = edited_object()
    back = object_from_stored(stored_from_object(obj, 1, 1)).current
    np.testing.assert_array_equal(back.result.mask(), obj.result.mask())
    np.testing.assert_array_equal(back.model_result.mask(), obj.current.model_result.mask())
    for got, want in zip(back.edits.masks(), obj.current.edits.masks()):
        np.testing.assert_array_equal(got, want)
    assert back.result.model_id == "sam-x" and back.prompts == obj.prompts
    # what a later click does (live._decode): a new model mask, the same edits on top
    moved = np.zeros(SHAPE, bool)
    moved[20:35, 25:50] = True
    add, remove = obj.current.edits.masks()
    clicked = model_step(moved).with_edits(back.edits)
    np.testing.assert_array_equal(clicked.result.mask(), (moved | add) & ~remove)
    # and more painting edits the layer, not a baked mask
    more = edits.painted(back, Stroke(((50.5, 5.5),), 2.0, "erase"), SHAPE)
    np.testing.assert_array_equal(more.model_result.mask(), obj.current.model_result.mask())


def test_a_reopened_layer_is_counted_in_the_session_budget():
    from workbench.objects import Workspace
    from workbench.projects.workspace_io import object_from_stored, stored_from_object
    from workbench.session import workspace_nbytes

    back = object_from_stored(stored_from_object(edited_object(), 1, 1))
    step = back.current
    packed = step.result.bits.nbytes  # no logits after a reopen
    assert workspace_nbytes(Workspace((back,), 1, 2)) == (
        packed + step.base.bits.nbytes + step.edits.add.nbytes + step.edits.remove.nbytes)


def test_a_hand_painted_mask_comes_back_as_edits_without_a_model_mask():
    from workbench.projects.workspace_io import object_from_stored, stored_from_object

    painted = SegObject(1).record(edits.painted(Step(), Stroke(((10.5, 10.5),), 2.0, "add"),
                                                SHAPE))
    row = stored_from_object(painted, 1, 1)
    assert row.edits.model is None and row.model_id == "hand"
    back = object_from_stored(row).current
    assert back.model_result is None and back.result.model_id == "hand"
    np.testing.assert_array_equal(back.result.mask(), painted.result.mask())


def test_a_layer_that_does_not_give_the_stored_mask_back_is_ignored():
    import dataclasses

    from sam_backends.masks import encode_rle
    from workbench.projects.workspace_io import object_from_stored, stored_from_object

    row = stored_from_object(edited_object(), 1, 1)
    changed = np.zeros(SHAPE, bool)
    changed[0:3, 0:3] = True  # e.g. the database was edited by hand
    back = object_from_stored(dataclasses.replace(row, rle=encode_rle(changed))).current
    assert back.edits is None
    np.testing.assert_array_equal(back.result.mask(), changed)
    garbled = dataclasses.replace(row.edits, add={"size": [1, 1], "counts": "0"})
    back = object_from_stored(dataclasses.replace(row, edits=garbled)).current
    assert back.edits is None
    np.testing.assert_array_equal(back.result.mask(), row.mask())
