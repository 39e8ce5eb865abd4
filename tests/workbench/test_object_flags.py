"""Hide, lock and select-many on the workspace: pure transitions (``workbench.objects``)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.objects import MaskResult, ObjectLocked, SegObject, Step, Workspace
from workbench.session import Session


def masked(object_id: int, **kw) -> SegObject:
    mask = np.zeros((6, 8), bool)
    mask[1:3, object_id % 8] = True
    return SegObject(object_id, (Step(result=MaskResult.from_mask(mask, 0.9, None, "m")),),
                     **kw)


def workspace(n: int = 5) -> Workspace:
    return Workspace(tuple(masked(i) for i in range(1, n + 1)), 1, n + 1)


def test_flags_change_only_the_named_objects_and_are_not_an_edit():
    ws = workspace()
    proposal = masked(6, source="model")
    ws = Workspace(ws.objects + (proposal,), 1, 7)
    flagged = ws.flag([2, 6, 99], hidden=True).flag([3], locked=True)
    assert [o.hidden for o in flagged.objects] == [False, True, False, False, False, True]
    assert [o.locked for o in flagged.objects] == [False, False, True, False, False, False]
    assert flagged.get(6).source == "model"  # hiding a proposal does not make it a person's
    assert flagged.flag([2], hidden=False).get(2).hidden is False
    assert flagged.get(2).result is ws.get(2).result
    assert flagged.flag([1, 2], hidden=True).get(2) is flagged.get(2)  # unchanged: not saved


def test_solo_hides_every_other_object_and_shows_the_one():
    ws = workspace().flag([3], hidden=True)
    solo = ws.solo([3])
    assert [o.object_id for o in solo.objects if not o.hidden] == [3]
    assert [o.object_id for o in ws.solo([2, 4]).objects if not o.hidden] == [2, 4]
    assert ws.solo([99]) is ws


def test_a_locked_object_refuses_edits_with_a_message_that_says_how():
    obj = masked(4, name="door", locked=True)
    with pytest.raises(ObjectLocked, match="door is locked: unlock it .* to refine it"):
        obj.check_unlocked("refine")
    assert masked(4).check_unlocked() is not None


def test_bulk_delete_keeps_locked_objects_and_undoes_as_one_step():
    ws = workspace().flag([4], locked=True)
    after, removed = ws.delete_many([2, 4, 5])
    assert [o.object_id for o in after.objects] == [1, 3, 4]
    assert removed.kept_locked == 1 and [o.object_id for o, _ in removed.entries] == [2, 5]
    back = after.restore_removed(removed)
    assert [o.object_id for o in back.objects] == [1, 2, 3, 4, 5]
    assert back.active_id == 2 and back.get(5) is ws.get(5)


def test_deleting_everything_and_undoing_brings_all_back_without_the_fresh_object():
    ws = workspace(3)
    after, removed = ws.delete_many([1, 2, 3])
    assert len(after.objects) == 1 and after.active.is_empty
    back = after.restore_removed(removed)
    assert [o.object_id for o in back.objects] == [1, 2, 3]


def test_bulk_class_change_skips_locked_objects_and_marks_the_rest_a_persons():
    ws = Workspace(tuple(masked(i, class_id=1, source="model") for i in (1, 2, 3)), 1, 4)
    ws = ws.flag([2], locked=True)
    changed, locked = ws.classify([1, 2], 7)
    assert [o.class_id for o in changed.objects] == [7, 1, 1] and locked == 1
    assert changed.get(1).source == "person" and changed.get(3).source == "model"


def test_a_session_counts_the_bytes_of_a_bulk_delete_kept_for_undo():
    session = Session("s", "m")
    ws = workspace()
    _, removed = ws.delete_many([1, 2])
    session.deleted = [removed]
    assert session.nbytes() > 0


def test_a_model_switch_leaves_a_locked_objects_mask_as_it_is():
    from types import SimpleNamespace

    from workbench.inference import refresh, stale_objects
    from workbench.objects import PromptSet

    obj = masked(1, locked=True)
    obj = obj.replace_current(Step(PromptSet(((3.0, 2.0),), (1,)), obj.result))
    ws = Workspace((obj,), 1, 2)
    assert stale_objects(ws, "other") == 0
    backend = SimpleNamespace(model_id="other")  # never asked: nothing to re-run
    again, problems = refresh(backend, None, ws)
    assert again is ws and problems == []
