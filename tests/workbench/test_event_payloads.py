"""Crafted canvas events get a specific message (UserError), never "Something went wrong" and a
server traceback; the per-object point cap holds in both views, before any model work."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

from workbench.config import AppConfig
from workbench.context import AppContext
from workbench.errors import UserError, describe
from workbench.event_payloads import (
    PointClick,
    box_from_event,
    check_point_cap,
    frame_from_event,
    index_from_event,
    object_id_from_event,
    point_from_event,
)
from workbench.objects import PromptSet, Step


def test_well_formed_payloads():
    assert point_from_event({"x": 12.5, "y": 40, "button": 0, "shift": False}) == PointClick(
        12.5, 40.0, False)
    assert point_from_event({"x": 1, "y": 2, "button": 2}).background
    assert point_from_event({"x": 1, "y": 2, "shift": True}).background
    assert point_from_event({"x": 1, "y": 2}) == PointClick(1.0, 2.0, False)
    assert box_from_event({"box": [5, 6, 1, 2.5]}) == (5.0, 6.0, 1.0, 2.5)
    assert index_from_event({"index": 2}, 3) == 2
    assert index_from_event({"index": 1.0}, 3) == 1  # JS numbers may arrive as floats
    assert object_id_from_event({"id": 3}, [1, 3]) == 3


@pytest.mark.parametrize("data, message", [
    ({"x": "abc", "y": 1}, r"x position is 'abc', not a number"),
    ({"x": None, "y": 1}, "x position is missing"),
    ({"y": 1}, "x position is missing"),
    ({"x": 1}, "y position is missing"),
    ({"x": True, "y": 1}, "x position is true, not a number"),
    ({"x": float("nan"), "y": 1}, "not a number"),
    ({"x": 10**400, "y": 1}, "a number too large, not a number"),
    ({"x": [1], "y": 1}, "a list of 1, not a number"),
    ({"x": 1, "y": 2, "button": "2"}, "mouse button is '2'"),
    ({"x": 1, "y": 2, "shift": "yes"}, "shift key is 'yes'"),
    (None, "could not be read"),
    ("x=1", "could not be read"),
])
def test_bad_points(data, message):
    with pytest.raises(UserError, match=message):
        point_from_event(data)


@pytest.mark.parametrize("data", [{}, {"box": None}, {"box": [1, 2, 3]}, {"box": "1,2,3,4"},
                                  None])
def test_bad_box_shapes(data):
    with pytest.raises(UserError, match="Drag from one corner|could not be read"):
        box_from_event(data)


@pytest.mark.parametrize("value", ["a", None, True, float("inf"), 10**400])
def test_bad_box_values(value):
    with pytest.raises(UserError, match="Corner value 2 of the box"):
        box_from_event({"box": [1, 2, value, 4]})


@pytest.mark.parametrize("data, message", [
    ({"index": 3}, "That candidate is gone"),
    ({"index": -1}, "That candidate is gone"),
    ({"index": 1.5}, "1.5, not a candidate number"),
    ({"index": "1"}, "'1', not a candidate number"),
    ({"index": True}, "true, not a candidate number"),
    ({}, "missing, not a candidate number"),
])
def test_bad_candidate_index(data, message):
    with pytest.raises(UserError, match=message):
        index_from_event(data, 3)


@pytest.mark.parametrize("data, message", [
    ({"id": "abc"}, "'abc', not an object number"),
    ({"id": None}, "missing, not an object number"),
    ({"id": 7}, "Object 7 does not exist any more"),
    ({"id": 2.5}, "2.5, not an object number"),
])
def test_bad_object_ids(data, message):
    with pytest.raises(UserError, match=message):
        object_id_from_event(data, [1, 2])


def test_timeline_frames_are_whole_numbers_kept_in_the_clip():
    assert frame_from_event({"frame": 4}, 10) == 4
    assert frame_from_event({"frame": 4.0}, 10) == 4
    assert frame_from_event({"frame": 25}, 10) == 9 and frame_from_event({"frame": -3}, 10) == 0
    for data, message in [({"frame": "4"}, "'4', not a frame number"), ({}, "missing"),
                          ({"frame": 1.5}, "1.5, not a frame number"), (None, "no event")]:
        with pytest.raises(UserError, match=message):
            frame_from_event(data, 10)


def test_point_cap_message():
    check_point_cap(63, 64)
    with pytest.raises(UserError, match="At most 64 points per object; start a new object or "
                                        "undo."):
        check_point_cap(64, 64)
    assert describe(UserError("x", "Too many points"))[2]  # an expected error: not logged


# --- through the handlers -------------------------------------------------------------------


def scene():
    image = np.full((72, 96, 3), 90, np.uint8)
    image[20:50, 25:60] = (230, 60, 40)
    return image


@pytest.fixture
def ctx(tmp_path):
    return AppContext(AppConfig(models=("grabcut", "sam-vit-h"), default_model="grabcut",
                                checkpoint_dir=tmp_path, examples_dir=None, max_points=3))


def event(data):
    return SimpleNamespace(_data=data)


def full(workspace, count):
    prompts = PromptSet(points=tuple((10.0 + i, 10.0) for i in range(count)),
                        labels=(1,) * count)
    return workspace.update_active(lambda o: o.record(Step(prompts)))


CRAFTED = [{"x": "abc", "y": 1}, {"x": None, "y": 1}, {}, None, {"x": 1, "y": 2, "button": []}]


def assert_specific(toasts, caplog):
    """Every toast is a specific message, and nothing was logged as an unexpected error."""
    messages = [str(w.message) for w in toasts]
    assert messages and not [m for m in messages if "Something went wrong" in m]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def no_model_work(ctx):
    def refuse(*args, **kwargs):
        raise AssertionError("model work started")

    ctx.encode = refuse
    ctx.backend = refuse


def test_segment_handlers(ctx, caplog):
    from ui.segment.handlers import FOREGROUND, SegmentHandlers
    from workbench.session import Session

    handlers = SegmentHandlers(ctx, [])
    session = Session("s", "grabcut")
    session.set_image(scene(), "scene-digest", "scene.png")
    outputs = handlers._point(session, FOREGROUND, event({"x": 40, "y": 30}), None)
    assert outputs[0].workspace.active.prompts.points == ((40.0, 30.0),)
    no_model_work(ctx)
    for data in CRAFTED:
        with pytest.raises(UserError):
            list(handlers._point(session, FOREGROUND, event(data), None))
    for data in ({"box": ["a", 1, 2, 3]}, {"box": [1, 2]}):
        with pytest.raises(UserError):
            handlers._box(session, event(data), None)
    for data in ({"index": 5}, {"index": "x"}, {"index": 0.5}):
        with pytest.raises(UserError):
            handlers._choose(session, event(data), None)
    for data in ({"id": "abc"}, {"id": 99}, {}):
        with pytest.raises(UserError):
            handlers._pick_object(session, event(data), None)
        with pytest.raises(UserError):
            handlers._remove_object(session, event(data), None)
    session.workspace = full(session.workspace, 3)
    with pytest.raises(UserError, match="At most 3 points per object"):
        list(handlers._point(session, FOREGROUND, event({"x": 40, "y": 30}), None))

    before = session.workspace
    with caplog.at_level(logging.ERROR, logger="samwb.ui"), pytest.warns(UserWarning) as toasts:
        outputs = handlers.point(session, FOREGROUND, event({"x": "abc", "y": 1}), None)
        handlers.pick_object(session, event({"id": "abc"}), None)
        handlers.choose(session, event({"index": 9}), None)
        handlers.point(session, FOREGROUND, event({"x": 40, "y": 30}), None)
    assert outputs[0] is session and session.workspace is before
    assert_specific(toasts, caplog)


def test_compare_handlers(ctx, caplog):
    from ui.compare.handlers import FOREGROUND, CompareHandlers
    from workbench.compare.state import CompareSession

    handlers = CompareHandlers(ctx, [])
    session = CompareSession("c", ("grabcut", "sam-vit-h"))
    session.set_image(scene(), "scene-digest", "scene.png")
    no_model_work(ctx)
    for data in CRAFTED:
        with pytest.raises(UserError):
            list(handlers._point(session, FOREGROUND, event(data), None))
    with pytest.raises(UserError):
        list(handlers._box(session, event({"box": [1, 2, None, 4]}), None))
    for data in ({"id": "abc"}, {"id": 42}):
        with pytest.raises(UserError):
            handlers._pick_object(session, event(data), None)
        with pytest.raises(UserError):
            handlers._remove_object(session, event(data), None)
    session.apply(lambda ws: full(ws, 3))
    with pytest.raises(UserError, match="At most 3 points per object; start a new object or "
                                        "undo"):
        list(handlers._point(session, FOREGROUND, event({"x": 40, "y": 30}), None))
    with caplog.at_level(logging.ERROR, logger="samwb.ui"), pytest.warns(UserWarning) as toasts:
        list(handlers.point(session, FOREGROUND, event({"x": None, "y": 1}), None))
        handlers.remove_object(session, event({"id": "abc"}), None)
    assert_specific(toasts, caplog)
    assert len(session.workspace.active.prompts.points) == 3
