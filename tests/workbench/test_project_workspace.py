"""Between the canvas's workspace and the project store's rows (``workbench.projects``)."""

from __future__ import annotations

import numpy as np

from workbench.inference import refresh, stale_objects
from workbench.objects import MaskResult, PromptSet, SegObject, Step, Workspace
from workbench.projects.workspace_io import (
    changes,
    object_from_stored,
    prompts_from_json,
    stored_from_object,
    workspace_from_stored,
)


def disc(h=60, w=80, cx=30, cy=25, r=12) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def masked(object_id: int, mask: np.ndarray, **kw) -> SegObject:
    prompts = PromptSet(((30.0, 25.0),), (1,), (10.0, 5.0, 50.0, 45.0))
    step = Step(prompts, MaskResult.from_mask(mask, 0.93, None, "m"))
    return SegObject(object_id, (step,), 0, **kw)


def test_an_object_survives_the_round_trip_through_a_row():
    obj = masked(4, disc(), name="left one", class_id=7)
    row = stored_from_object(obj, image_id=3, default_class=1)
    assert (row.image_id, row.local_id, row.class_id, row.instance_name) == (3, 4, 7, "left one")
    assert row.source == "person" and row.model_id == "m" and abs(row.score - 0.93) < 1e-6
    back = object_from_stored(row)
    assert np.array_equal(back.result.mask(), disc())
    assert (back.object_id, back.name, back.class_id) == (4, "left one", 7)
    assert back.prompts == obj.prompts


def test_an_object_without_a_mask_is_not_stored_and_a_classless_one_gets_the_default():
    assert stored_from_object(SegObject(1), 1, 5) is None
    assert stored_from_object(masked(2, disc()), 1, 5).class_id == 5


def test_a_workspace_from_rows_adds_a_fresh_object_of_the_current_class():
    rows = [stored_from_object(masked(i, disc(cx=20 + 10 * i), class_id=2), 1, 1)
            for i in (3, 8)]
    ws = workspace_from_stored(rows, class_id=5, shape=(60, 80))
    assert [o.object_id for o in ws.objects] == [3, 8, 9]
    assert ws.active_id == 9 and ws.active.class_id == 5 and ws.active.is_empty
    assert ws.new_object() is ws  # the fresh one is reused, not stacked
    # a row of another size (the image changed on disk) is not shown on this image
    assert len(workspace_from_stored(rows, 5, (61, 80)).objects) == 1


def test_changes_are_found_by_identity_and_deletes_are_listed():
    a, b = masked(1, disc()), masked(2, disc(cx=50))
    ws = Workspace((a, b, SegObject(3)), 3, 4)
    saved = {1: a, 2: b}
    assert changes(saved, ws) == ([], [])
    renamed = b.renamed("x")
    changed, gone = changes(saved, ws.update(renamed).delete(1))
    assert changed == [renamed] and gone == [1]


def test_malformed_stored_prompts_read_as_none():
    assert prompts_from_json({"points": [[1, 2]], "labels": [1]}).points == ((1.0, 2.0),)
    for bad in (None, [], {"points": [[1]]}, {"points": [[1, 2]], "labels": []},
                {"box": [1, 2]}, {"points": "xx", "labels": "y"}):
        assert prompts_from_json(bad).is_empty


def test_an_imported_mask_without_prompts_is_kept_through_a_model_switch():
    imported = SegObject(1, (Step(PromptSet(), MaskResult.from_mask(disc(), 1.0, None,
                                                                    "stored")),))
    assert not imported.is_empty
    ws = Workspace((imported,), 1, 2)
    assert stale_objects(ws, "other-model") == 0
    refreshed, problems = refresh(_NoModel(), None, ws)
    assert refreshed.objects[0] is imported and problems == []
    assert ws.with_masks() == [imported]


def test_a_persons_edit_makes_a_model_object_theirs():
    proposal = masked(1, disc(), source="model")
    assert proposal.record(Step()).source == "person"
    assert proposal.renamed("car").source == "person"
    assert proposal.classed(3).source == "person" and proposal.classed(3).class_id == 3


def test_picking_a_class_applies_to_new_objects_and_an_empty_active_one():
    ws = Workspace().with_class(4)
    assert ws.active.class_id == 4
    ws = ws.update(masked(1, disc(), class_id=4)).new_object()
    assert ws.active.class_id == 4
    assert ws.with_class(6).objects[0].class_id == 4  # a finished object keeps its class


class _NoModel:
    model_id = "other-model"

    def predict(self, *a, **k):  # pragma: no cover - must not be called
        raise AssertionError("an object without prompts was re-run")


def test_a_model_proposal_says_so_in_the_object_list_until_a_person_changes_it():
    from workbench.segment.values import objects_value
    from workbench.session import Session

    session = Session("s", "m")
    session.set_image(np.zeros((60, 80, 3), np.uint8), "d", "x.png")
    proposal = masked(1, disc(), source="model")
    session.workspace = Workspace((proposal,), 1, 2)
    assert objects_value(session)["items"][0]["meta"].startswith("proposed · ")
    session.workspace = session.workspace.update(proposal.renamed("mine"))
    assert not objects_value(session)["items"][0]["meta"].startswith("proposed")
