"""Proposals as values: threshold, toggling, keeping them as objects, matching across models.

Hand-made ``Instances`` are the inputs here (the engines are tested in their own files).
"""

from __future__ import annotations

import numpy as np
import pytest

from sam_backends import Instances
from sam_backends.masks import mask_boxes
from workbench.errors import UserError
from workbench.objects import SegObject, Workspace
from workbench.proposals import logic
from workbench.proposals.matching import iou_matrix, match
from workbench.proposals.review import overlay, review_image

H, W = 60, 80


def rect(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def instances(labels=("dog", "dog", "cat"), scores=(0.9, 0.4, 0.7), model_id="sam3"):
    masks = np.stack([rect(5, 5, 40, 40), rect(10, 10, 20, 20), rect(50, 10, 75, 50)])
    return Instances(masks, np.array(scores), mask_boxes(masks), labels, model_id,
                     {"encode": 1.0, "decode": 0.5})


def proposals(threshold=0.5, **kwargs):
    return logic.from_instances(instances(**kwargs), digest="d", generation=1, query="dog, cat",
                                session_model="sam2.1-tiny", threshold=threshold)


def test_sorted_by_score_and_filtered_by_threshold():
    ps = proposals()
    assert [p.score for p in ps.proposals] == pytest.approx([0.9, 0.7, 0.4])
    assert [p.label for p in ps.visible] == ["dog", "cat"]
    assert len(logic.with_threshold(ps, 0.0).visible) == 3
    assert logic.with_threshold(ps, 1.0).visible == ()


@pytest.mark.parametrize("bad", [-0.01, 1.5, float("nan"), "high", None])
def test_threshold_outside_unit_interval_is_refused(bad):
    with pytest.raises(UserError, match="between 0 and 1"):
        logic.with_threshold(proposals(), bad)


def test_toggle_and_click_picks_the_smallest_mask_under_the_pixel():
    ps = logic.with_threshold(proposals(), 0.0)
    ps, hit = logic.toggle_at(ps, 15, 15)  # inside both dogs: the small one wins
    assert hit is not None and hit.result.area == 100 and ps.selected == {hit.index}
    ps, again = logic.toggle_at(ps, 15, 15)
    assert again.index == hit.index and ps.selected == frozenset()
    ps, miss = logic.toggle_at(ps, 45, 55)  # background
    assert miss is None and ps.selected == frozenset()
    assert logic.toggle_at(ps, -3, 900)[1] is None


def test_hidden_proposals_cannot_be_selected_or_kept():
    ps = proposals()  # threshold 0.5 hides the small dog (0.4)
    small = next(p for p in ps.proposals if p.score < 0.5)
    assert logic.toggle(ps, small.index).selected == frozenset()
    everything = logic.select_all(logic.with_threshold(ps, 0.0))
    raised = logic.with_threshold(everything, 0.5)
    assert small.index not in {p.index for p in raised.chosen}
    assert logic.select_none(everything).chosen == ()


def test_keep_makes_named_refinable_objects():
    ps = proposals()
    workspace, names = logic.keep(Workspace(), ps, ps.visible)
    assert len(workspace.objects) == 2  # the empty first object was reused
    assert sorted(names.values()) == ["cat", "dog"]
    for obj in workspace.objects:
        assert obj.prompts.box is not None and not obj.prompts.points
        assert obj.result is not None and obj.result.mask().any()
        assert obj.can_undo  # one ordinary undoable step
        refined = obj.prompts.with_point(20, 20, 1)  # a click adds to the box prompt
        assert refined.box == obj.prompts.box and refined.points == ((20.0, 20.0),)
    dog = next(o for o in workspace.objects if names[o.object_id] == "dog")
    np.testing.assert_array_equal(dog.result.mask(), rect(5, 5, 40, 40))
    assert dog.prompts.box == (5.0, 5.0, 40.0, 40.0)
    assert workspace.active_id == workspace.objects[-1].object_id


def test_keep_appends_after_existing_objects():
    start = Workspace()
    first, _ = logic.keep(start, proposals(), proposals().visible[:1])
    second, names = logic.keep(first, proposals(), proposals().visible)
    assert [o.object_id for o in second.objects] == [1, 2, 3]
    assert set(names) == {2, 3}


def test_everything_proposals_are_named_object_and_keep_the_session_model():
    ps = logic.from_instances(instances(labels=("", "", ""), model_id="sam2.1-tiny"),
                              digest="d", generation=1, query="everything",
                              session_model="sam2.1-tiny", threshold=0.0)
    workspace, names = logic.keep(Workspace(), ps, ps.visible)
    assert set(names.values()) == {"object"}
    assert {o.result.model_id for o in workspace.objects} == {"sam2.1-tiny"}


@pytest.mark.parametrize(("pipeline", "expected"), [
    ("owlv2+sam2.1-tiny", "sam2.1-tiny"), ("sam2.1-tiny", "sam2.1-tiny"), ("sam3", "sam3"),
    ("owlv2+sam-vit-b", "owlv2+sam-vit-b")])
def test_refine_model(pipeline, expected):
    assert logic.refine_model_for(pipeline, "sam2.1-tiny") == expected


def test_logits_from_the_engine_are_kept_for_refinement():
    base = instances()
    with_logits = Instances(base.masks, base.scores, base.boxes, base.labels, "sam2.1-tiny")
    object.__setattr__(with_logits, "low_res_logits", np.ones((3, 256, 256), np.float32))
    ps = logic.from_instances(with_logits, digest="d", generation=1, query="x",
                              session_model="sam2.1-tiny")
    assert ps.proposals[0].result.logits.shape == (1, 256, 256)


def test_stale_proposals_are_refused():
    ps = proposals()
    logic.check_same_image(ps, "d", 1)
    with pytest.raises(UserError, match="previous image"):
        logic.check_same_image(ps, "d", 2)


def test_empty_masks_are_dropped_and_summary_names_counts():
    base = instances()
    masks = base.masks.copy()
    masks[2] = False
    ps = logic.from_instances(Instances(masks, base.scores, base.boxes, base.labels, "sam3"),
                              digest="d", generation=1, query="dog", session_model="x",
                              run_threshold=0.3, threshold=0.2)
    assert len(ps) == 2
    text = logic.summary(ps)
    assert "**2** proposals" in text and "run again" in text


def test_review_image_and_overlay_draw_outlines():
    ps = logic.toggle(proposals(), 0)
    image = np.full((H, W, 3), 128, np.uint8)
    picture = review_image(image, ps)
    assert picture.shape == (H, W, 3) and picture.dtype == np.uint8
    assert (picture != 128).any(axis=2).sum() > 50
    full = overlay(image, instances())
    assert full.shape == (H, W, 3) and (full[20, 20] != 128).any()


def test_matching_pairs_equal_masks_and_leaves_others():
    a = instances().masks
    b = np.stack([a[2], a[0], rect(0, 50, 10, 60)])
    ious = iou_matrix(a, b)
    assert ious.shape == (3, 3)
    pairs = match(ious)
    assert [(m.a, m.b) for m in pairs] == [(0, 1), (2, 0)]
    assert all(m.iou == pytest.approx(1.0) for m in pairs)
    assert match(iou_matrix(a[:0], b)) == []


def test_segobject_has_no_hidden_requirement():
    assert SegObject(1).is_empty


@pytest.mark.parametrize("operator", [False, True])
def test_the_text_model_picker_defaults_to_a_model_that_is_here(tmp_path, operator):
    """SAM 3 offered but absent: OWLv2 is the default and SAM 3 is marked; the note tells a
    visitor it is not here (how to fetch it is for the operator). Present: SAM 3 first."""
    from workbench.config import AppConfig
    from workbench.context import AppContext
    from workbench.proposals.engines import DETECTOR, text_model_choices, text_model_note

    ctx = AppContext(AppConfig(models=("grabcut", "sam3"), default_model="grabcut",
                               checkpoint_dir=tmp_path, device="cpu",
                               operator_details=operator))
    choices = text_model_choices(ctx)
    assert choices[0][1] == DETECTOR and choices[1] == (
        "SAM 3 (reads the text itself; SAM License) · not downloaded", "sam3")
    note = text_model_note(ctx)
    assert ("HF_TOKEN" in note) == operator and ("not on this server" in note) != operator
    (tmp_path / "sam3").mkdir()
    (tmp_path / "sam3" / "config.json").write_text("{}")  # present: its folder's config
    assert [value for _, value in text_model_choices(ctx)] == ["sam3", DETECTOR]
    assert "SAM 3" not in text_model_note(ctx)
