"""The object list's actions through the segment handlers: bulk hide/lock/delete/class, the
payload checks, and what a locked object refuses (``ui.segment.handlers``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ui.segment.handlers import FOREGROUND, SegmentHandlers
from workbench.config import AppConfig
from workbench.context import AppContext
from workbench.errors import UserError
from workbench.event_payloads import bulk_from_event
from workbench.objects import MaskResult, ObjectLocked, PromptSet, SegObject, Step, Workspace
from workbench.session import Session


@pytest.fixture
def handlers(tmp_path):
    ctx = AppContext(AppConfig(models=("grabcut",), default_model="grabcut",
                               checkpoint_dir=tmp_path, examples_dir=None))
    return SegmentHandlers(ctx, [])


def event(data):
    return SimpleNamespace(_data=data)


def masked(object_id: int) -> SegObject:
    mask = np.zeros((72, 96), bool)
    mask[object_id: object_id + 5, 10:20] = True
    step = Step(PromptSet(((15.0, object_id + 2.0),), (1,)),
                MaskResult.from_mask(mask, 0.9, None, "grabcut"))
    return SegObject(object_id, (Step(), step), 1)


@pytest.fixture
def session():
    session = Session("s", "grabcut")
    session.set_image(np.full((72, 96, 3), 90, np.uint8), "digest", "a.png")
    session.workspace = Workspace(tuple(masked(i) for i in range(1, 7)), 1, 7)
    return session


def test_bulk_payloads_are_checked_and_gone_ids_dropped():
    known = [1, 2, 3]
    assert bulk_from_event({"action": "hide", "ids": [3, 9, 3, 1]}, known).ids == (3, 1)
    assert bulk_from_event({"action": "class", "ids": [1], "class_id": 4}, known).class_id == 4
    for data in ({"action": "explode", "ids": [1]}, {"action": "hide", "ids": "1"},
                 {"action": "hide", "ids": [9]}, {"action": "hide", "ids": ["x"]},
                 {"action": "class", "ids": [1]}, None):
        with pytest.raises(UserError):
            bulk_from_event(data, known)


def test_bulk_hide_lock_and_one_undo_for_a_bulk_delete(handlers, session, capsys):
    handlers._bulk_action(session, event({"action": "hide", "ids": [2, 3]}), None)
    handlers._bulk_action(session, event({"action": "lock", "ids": [3]}), None)
    ws = session.workspace
    assert [o.object_id for o in ws.objects if o.hidden] == [2, 3] and ws.get(3).locked
    handlers._bulk_action(session, event({"action": "delete", "ids": [2, 3, 4]}), None)
    assert "1 locked object was left" in capsys.readouterr().out  # gr.Info outside a page
    assert [o.object_id for o in session.workspace.objects] == [1, 3, 5, 6]
    handlers._undo(session, None)  # one undo brings both back, in their places
    assert [o.object_id for o in session.workspace.objects] == [1, 2, 3, 4, 5, 6]
    assert session.workspace.get(2).hidden  # as they were
    handlers._bulk_action(session, event({"action": "solo", "ids": [5]}), None)
    assert [o.object_id for o in session.workspace.objects if not o.hidden] == [5]


def test_picking_a_hidden_object_shows_it(handlers, session):
    session.workspace = session.workspace.flag([4], hidden=True)
    handlers._pick_object(session, event({"id": 4}), None)
    assert session.workspace.active_id == 4 and not session.workspace.get(4).hidden


def test_a_locked_object_refuses_prompts_undo_clear_delete_and_rename(handlers, session):
    session.workspace = session.workspace.flag([1], locked=True)
    before = session.workspace
    with pytest.raises(ObjectLocked, match="unlock it"):
        handlers._point(session, FOREGROUND, event({"x": 40, "y": 30}), None)
    with pytest.raises(ObjectLocked):
        handlers._box(session, event({"box": [1, 1, 20, 20]}), None)
    for change in (handlers._undo, handlers._clear, handlers._redo):
        with pytest.raises(ObjectLocked):
            change(session, None)
    with pytest.raises(ObjectLocked, match="to delete it"):
        handlers._remove_object(session, event({"id": 1}), None)
    with pytest.raises(ObjectLocked, match="to rename it"):
        handlers._rename_object(session, event({"id": 1, "name": "x"}), None)
    assert session.workspace is before
    handlers._bulk_action(session, event({"action": "unlock", "ids": [1]}), None)
    handlers._remove_object(session, event({"id": 1}), None)
    assert session.workspace.get(1) is None


def test_set_class_needs_a_project(handlers, session):
    with pytest.raises(UserError, match="Classes come from the project"):
        handlers._bulk_action(session, event({"action": "class", "ids": [1], "class_id": 1}),
                              None)


def test_set_class_in_a_project_moves_the_selection_and_is_saved(handlers, tmp_path):
    from PIL import Image

    from workbench.projects.service import ProjectsService

    folder = tmp_path / "proj"
    folder.mkdir()
    Image.new("RGB", (96, 72), (20, 90, 160)).save(folder / "a.png")
    service = ProjectsService(folder, None, tmp_path / "temp")
    try:
        store = service.shared
        car = store.add_class("car").class_id
        image_id = store.page(0, 1)[0].image_id
        session = Session("p", "grabcut")
        service.open_image(session, store, image_id, 10_000_000)
        session.workspace = Workspace(tuple(masked(i) for i in (1, 2, 3)), 1, 4)
        session.workspace = session.workspace.flag([3], locked=True)
        handlers._bulk_action(session, event({"action": "class", "ids": [1, 3],
                                              "class_id": car}), None)
        assert [o.class_id for o in session.workspace.objects][:1] == [car]
        assert session.workspace.get(3).class_id != car  # locked: kept
        stored = {r.local_id: (r.class_id, r.locked) for r in store.objects(image_id)}
        assert stored[1][0] == car and stored[3][1] is True
        with pytest.raises(UserError, match="does not exist any more"):
            handlers._bulk_action(session, event({"action": "class", "ids": [1],
                                                  "class_id": 999}), None)
    finally:
        service.close()
