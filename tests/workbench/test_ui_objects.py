"""Pure session-state transitions: prompts, history (undo/redo/clear), objects, candidates."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.inference import pick_candidate, stale_objects
from workbench.objects import (
    MAX_HISTORY,
    MaskResult,
    PromptSet,
    SegObject,
    Step,
    Workspace,
    mask_bbox,
)


def result(value: int, model: str = "m", shape=(6, 8)) -> MaskResult:
    mask = np.zeros(shape, bool)
    mask[1:1 + value, 2:4] = True
    return MaskResult.from_mask(mask, score=value / 10, logits=None, model_id=model)


def test_prompt_set_accumulates_and_normalises_box():
    prompts = PromptSet().with_point(1, 2, 1).with_point(3.5, 4, 0).with_box((9, 8, 1, 2))
    assert prompts.points == ((1.0, 2.0), (3.5, 4.0))
    assert prompts.labels == (1, 0)
    assert prompts.box == (1.0, 2.0, 9.0, 8.0)
    assert prompts.describe() == "1 foreground point + 1 background point + box"
    assert prompts.to_json() == {"points": [[1.0, 2.0], [3.5, 4.0]], "labels": [1, 0],
                                 "box": [1.0, 2.0, 9.0, 8.0]}
    assert PromptSet().is_empty and not prompts.is_empty
    assert prompts.with_box((0, 0, 5, 5)).box == (0, 0, 5, 5)  # one box per object: replaced


def test_mask_result_round_trips_packed_bits_and_measures_bbox():
    rng = np.random.default_rng(0)
    mask = rng.random((37, 53)) > 0.7
    res = MaskResult.from_mask(mask, 0.5, np.ones((1, 256, 256)), "m")
    np.testing.assert_array_equal(res.mask(), mask)
    assert res.area == int(mask.sum())
    assert res.bits.nbytes == (37 * 53 + 7) // 8
    assert res.logits.shape == (1, 256, 256) and res.logits.dtype == np.float32
    box = np.zeros((10, 12), bool)
    box[2:5, 3:9] = True
    assert mask_bbox(box) == (3, 2, 9, 5)  # XYXY, exclusive max
    assert mask_bbox(np.zeros((4, 4), bool)) == (0, 0, 0, 0)


def test_a_later_mask_result_is_made_once_on_first_read_and_pickles_made():
    """``MaskResult.later``: nothing runs until the mask, area, box or bits are read; then the
    source runs once (also when threads read together) and is dropped; a pickle carries the
    made bits, never the source; the byte count needs nothing made."""
    import pickle
    import threading

    rng = np.random.default_rng(1)
    mask = rng.random((37, 53)) > 0.6
    calls = []
    gate = threading.Event()

    def source():
        calls.append(1)
        gate.wait(5)
        return mask

    res = MaskResult.later(source, (37, 53), 0.4, np.zeros((256, 256)), "m", 0.01)
    assert not res.packed.made and calls == []
    assert res.bits_nbytes == (37 * 53 + 7) // 8 and res.shape == (37, 53) and calls == []
    readers = [threading.Thread(target=lambda: res.area) for _ in range(4)]
    for reader in readers:
        reader.start()
    gate.set()
    for reader in readers:
        reader.join(5)
    assert calls == [1] and res.packed.made and res.packed._source is None
    np.testing.assert_array_equal(res.mask(), mask)
    assert res.area == int(mask.sum()) and res.bbox == mask_bbox(mask)
    assert res.bits.nbytes == res.bits_nbytes
    lazy = MaskResult.later(lambda: mask, (37, 53), 0.4, None, "m")
    back = pickle.loads(pickle.dumps(lazy))
    assert back.packed.made and back.packed._source is None
    np.testing.assert_array_equal(back.mask(), mask)


def test_undo_redo_clear_walk_the_history():
    obj = SegObject(1)
    assert obj.is_empty and not obj.can_undo and not obj.can_redo
    a = Step(PromptSet().with_point(1, 1, 1), result(1))
    b = Step(a.prompts.with_point(2, 2, 0), result(2))
    obj = obj.record(a).record(b)
    assert obj.prompts == b.prompts and obj.can_undo and not obj.can_redo
    obj = obj.undo()
    assert obj.prompts == a.prompts and obj.result is a.result and obj.can_redo
    obj = obj.redo()
    assert obj.current is b
    obj = obj.undo().record(Step(a.prompts.with_box((0, 0, 3, 3)), result(3)))
    assert not obj.can_redo and obj.prompts.box == (0, 0, 3, 3)  # a new step drops the redo
    cleared = obj.clear()
    assert cleared.is_empty and cleared.result is None and cleared.can_undo
    assert cleared.undo().prompts.box == (0, 0, 3, 3)  # clearing is undoable
    assert cleared.clear() is cleared  # already empty: no extra step
    assert SegObject(1).undo().cursor == 0 and SegObject(1).redo().cursor == 0


def test_history_is_bounded():
    obj = SegObject(1)
    prompts = PromptSet()
    for i in range(MAX_HISTORY + 10):
        prompts = prompts.with_point(i, i, 1)
        obj = obj.record(Step(prompts))
    assert len(obj.history) == MAX_HISTORY
    assert obj.cursor == MAX_HISTORY - 1 and len(obj.prompts.points) == MAX_HISTORY + 10


def test_new_select_delete_objects():
    ws = Workspace()
    assert [o.object_id for o in ws.objects] == [1] and ws.active_id == 1
    assert ws.new_object() is ws  # the active object is still empty: reused
    ws = ws.update_active(lambda o: o.record(Step(PromptSet().with_point(1, 1, 1), result(1))))
    ws = ws.new_object()
    assert [o.object_id for o in ws.objects] == [1, 2] and ws.active_id == 2
    ws = ws.update_active(lambda o: o.record(Step(PromptSet().with_point(2, 2, 1), result(2))))
    assert [o.object_id for o in ws.with_masks()] == [1, 2]
    assert ws.select(1).active_id == 1
    assert ws.select(99) is ws
    after = ws.delete(2)
    assert [o.object_id for o in after.objects] == [1] and after.active_id == 1
    assert ws.select(1).delete(2).active_id == 1
    assert ws.delete(99) is ws
    emptied = after.delete(1)
    assert len(emptied.objects) == 1 and emptied.active.is_empty
    assert emptied.active_id == 3  # ids are never reused, so colours stay distinct


def test_pick_candidate_replaces_in_place_without_new_undo_step():
    candidates = (result(1), result(2), result(3))
    step = Step(PromptSet().with_point(3, 2, 1), candidates[2], candidates, 2)
    ws = Workspace().update_active(lambda o: o.record(step))
    picked = pick_candidate(ws, 0)
    assert picked.active.result is candidates[0] and picked.active.current.chosen == 0
    assert len(picked.active.history) == len(ws.active.history)
    assert picked.active.undo().is_empty
    with pytest.raises(IndexError):
        pick_candidate(ws, 3)


def test_stale_objects_counts_masks_from_other_models():
    ws = Workspace().update_active(lambda o: o.record(Step(PromptSet().with_point(1, 1, 1),
                                                           result(1, "a"))))
    ws = ws.new_object().update_active(lambda o: o.record(Step(PromptSet().with_point(2, 2, 1),
                                                               result(2, "b"))))
    assert stale_objects(ws, "a") == 1
    assert stale_objects(ws, "b") == 1
    assert stale_objects(ws, "c") == 2
