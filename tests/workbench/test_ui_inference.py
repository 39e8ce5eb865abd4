"""The interaction policy against real backends (GrabCut and small random-weight SAM models):
candidates for ambiguous clicks, refinement with the previous logits, model switches."""

from __future__ import annotations

import numpy as np
import pytest

from sam_backends import Prompts, create_backend
from sam_backends.testing.random_models import synthetic_image
from workbench.inference import UNSURE_SCORE, decode, refresh, rerun_object, step_of
from workbench.objects import PromptSet, SegObject, Step, Workspace


@pytest.fixture(scope="module")
def image():
    return synthetic_image(96, 128, seed=4)


@pytest.fixture(scope="module")
def sam2(sam2_small, image):
    backend = create_backend(sam2_small.spec, checkpoint=sam2_small.path, device="cpu",
                             precision="fp32")
    return backend, backend.encode(image)


@pytest.fixture(scope="module")
def sam1(sam1_small, image):
    backend = create_backend(sam1_small.spec, checkpoint=sam1_small.path, device="cpu",
                             precision="fp32")
    return backend, backend.encode(image)


@pytest.fixture(scope="module")
def grabcut(image):
    backend = create_backend("grabcut", device="cpu")
    return backend, backend.encode(image)


def test_single_point_offers_three_candidates_best_shown(sam2):
    backend, embedding = sam2
    prompts = PromptSet().with_point(60, 40, 1)
    step = decode(backend, embedding, prompts)
    direct = backend.predict(embedding, Prompts(points=[(60, 40)], labels=[1], multimask=True))
    assert len(step.candidates) == 3
    assert step.chosen == direct.best_index and step.result is step.candidates[step.chosen]
    assert all(c.packed.made for c in step.candidates)  # kept as they are: all made
    # The click route's answer makes only the shown one; the others when read (or settled).
    lazy = step_of(prompts, direct, backend.model_id, lazy=True)
    assert [c.packed.made for c in lazy.candidates] == [i == lazy.chosen for i in range(3)]
    for i, candidate in enumerate(lazy.candidates):
        np.testing.assert_array_equal(candidate.mask(), direct.masks[i])
    for i, candidate in enumerate(step.candidates):
        np.testing.assert_array_equal(candidate.mask(), direct.masks[i])
        assert candidate.score == pytest.approx(float(direct.scores[i]))
        assert candidate.model_id == backend.model_id


def test_next_click_refines_with_previous_logits(sam2):
    backend, embedding = sam2
    first = decode(backend, embedding, PromptSet().with_point(60, 40, 1))
    prompts = first.prompts.with_point(20, 80, 0)
    second = decode(backend, embedding, prompts, previous=first.result)
    refined = backend.predict(embedding, Prompts(points=prompts.points, labels=prompts.labels,
                                                 mask_input=first.result.logits))
    if float(refined.scores[0]) >= UNSURE_SCORE:
        assert second.candidates == ()
        np.testing.assert_array_equal(second.result.mask(), refined.masks[0])
    else:  # unsure: the three candidates were computed with the same logits
        again = backend.predict(embedding, Prompts(points=prompts.points, labels=prompts.labels,
                                                   mask_input=first.result.logits,
                                                   multimask=True))
        np.testing.assert_array_equal(second.result.mask(), again.masks[again.best_index])


def test_logits_from_another_model_are_not_fed_back(sam1, sam2):
    (b1, e1), (b2, e2) = sam1, sam2
    first = decode(b1, e1, PromptSet().with_point(60, 40, 1))
    prompts = first.prompts.with_box((10, 10, 100, 80))
    step = decode(b2, e2, prompts, previous=first.result)  # must not use SAM 1's logits
    plain = decode(b2, e2, prompts)
    np.testing.assert_array_equal(step.result.mask(), plain.result.mask())


def test_grabcut_gives_one_mask_and_no_logits_refinement(grabcut):
    backend, embedding = grabcut
    step = decode(backend, embedding, PromptSet().with_box((20, 20, 100, 80)))
    assert step.candidates == () and step.result.area > 0
    again = decode(backend, embedding, step.prompts.with_point(60, 50, 1), previous=step.result)
    assert again.result.model_id == "grabcut"  # mask_input was not passed (GrabCut refuses it)


def test_model_switch_reruns_every_object_and_keeps_history(sam1, sam2, grabcut):
    (b1, e1), (b2, e2), (bg, eg) = sam1, sam2, grabcut
    ws = Workspace()
    first = decode(b2, e2, PromptSet().with_box((10, 10, 60, 60)))
    ws = ws.update_active(lambda o: o.record(first))
    second = decode(b2, e2, first.prompts.with_point(30, 30, 1), previous=first.result)
    ws = ws.update_active(lambda o: o.record(second))
    ws = ws.new_object().update_active(
        lambda o: o.record(decode(b2, e2, PromptSet().with_point(100, 70, 1))))
    switched, problems = refresh(b1, e1, ws)
    assert problems == []
    for before, after in zip(ws.objects, switched.objects):
        assert after.prompts == before.prompts
        assert after.result.model_id == b1.model_id
        assert len(after.history) == len(before.history)
        expected = decode(b1, e1, before.prompts)
        np.testing.assert_array_equal(after.result.mask(), expected.result.mask())
    assert refresh(b1, e1, switched)[0] == switched  # nothing stale: unchanged
    # GrabCut cannot segment from background points only: the object keeps its prompts.
    lonely = Workspace().update_active(
        lambda o: o.record(Step(PromptSet().with_point(5, 5, 0))))
    kept, problems = refresh(bg, eg, lonely)
    assert kept.active.prompts == lonely.active.prompts and kept.active.result is None
    assert len(problems) == 1 and "Object 1" in problems[0]


def test_rerun_of_empty_object_clears_result(sam2):
    backend, embedding = sam2
    obj = SegObject(1)
    assert rerun_object(backend, embedding, obj) is obj
