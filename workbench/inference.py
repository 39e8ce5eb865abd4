"""Turning an object's prompts into masks with a backend, for the page's objects and steps.

The interaction policy itself (three candidates for a lone point, refinement, a second ask when
unsure) is ``workbench.segment.policy.Policy.INTERACTIVE``, shared with the click route's use
case; this module turns its ``Prediction`` into the page's ``Step``.

Pure functions of (backend, embedding, prompts): no Gradio, no session.
"""

from __future__ import annotations

import functools

import numpy as np

from sam_backends import Backend, Embedding, Prediction, PromptError, Prompts
from workbench.objects import MaskResult, PromptSet, SegObject, Step, Workspace
from workbench.segment import policy

UNSURE_SCORE = policy.UNSURE_SCORE  # below this predicted IoU, offer three candidates


def to_prompts(prompts: PromptSet, mask_input: np.ndarray | None = None,
               multimask: bool = False) -> Prompts:
    """The engine's ``Prompts`` (validated on construction) for a ``PromptSet``."""
    return Prompts(points=prompts.points, labels=prompts.labels, box=prompts.box,
                   mask_input=mask_input, multimask=multimask)


def _results(prediction: Prediction, model_id: str, lazy: bool = False) -> list[MaskResult]:
    """One result per candidate. With ``lazy``, a candidate whose mask is not made yet (every
    one but the best, on the SAM backends) is made when something reads it
    (``MaskResult.later``): about 2 ms each at 1800 x 1200, off the click's answer. Its source
    is the backend's mask source (the low-res logits and the image's sizes, never the
    ``Prediction``, which holds the best mask at full size), which refers to the backend: a
    caller that keeps such results settles them soon (``settle``), so that no undo history
    holds a model the pool let go."""
    share = prediction.decode_seconds / max(1, len(prediction.scores))
    shape = tuple(prediction.mask(prediction.best_index).shape)
    results = []
    for i in range(len(prediction.scores)):
        score, logits = float(prediction.scores[i]), prediction.low_res_logits[i]
        if not lazy or i in prediction.ready or prediction.mask_source is None:
            results.append(MaskResult.from_mask(prediction.mask(i), score, logits, model_id,
                                                share))
        else:
            results.append(MaskResult.later(functools.partial(prediction.mask_source, i), shape,
                                            score, logits, model_id, share))
    return results


def settle(step: Step) -> None:
    """Make every candidate of ``step`` that ``lazy`` left for later (``_results``)."""
    for candidate in step.candidates:
        candidate.packed.get()


def decode(backend: Backend, embedding: Embedding, prompts: PromptSet,
           previous: MaskResult | None = None) -> Step:
    """Run the decoder for one object's prompts and return the new ``Step``.

    Args:
        previous: the mask shown before this interaction; its logits refine the new mask when
            it came from the same model and the model supports refinement.

    Raises:
        PromptError: empty prompts, outside the image, or unsupported by the model.
    """
    prediction = policy.predict(backend, embedding, to_prompts(prompts),
                                policy.Policy.INTERACTIVE, previous)
    return step_of(prompts, prediction, backend.model_id)


def step_of(prompts: PromptSet, prediction: Prediction, model_id: str, lazy: bool = False
            ) -> Step:
    """The page's ``Step`` for a prediction: one mask, or the candidates with the best shown
    (``lazy``: the others made when read, see ``_results``)."""
    results = _results(prediction, model_id, lazy)
    best = prediction.best_index
    if len(results) == 1:
        return Step(prompts, results[0])
    return Step(prompts, results[best], tuple(results), best)


def rerun_object(backend: Backend, embedding: Embedding, obj: SegObject) -> SegObject:
    """Re-run an object's current prompts on ``backend`` (after a model switch or an undo to a
    step computed by another model). The step is replaced in place, so undo history stays."""
    step = obj.current
    if step.prompts.is_empty:  # nothing to re-run: an imported or drawn mask stays as it is
        return obj
    return obj.replace_current(decode(backend, embedding, step.prompts).with_edits(step.edits))


def refresh(backend: Backend, embedding: Embedding, workspace: Workspace
            ) -> tuple[Workspace, list[str]]:
    """Re-run every object whose shown mask does not come from ``backend``'s model.

    Returns the new workspace and one message per object the model could not segment (for
    example background points only on GrabCut); those objects keep their prompts, no mask.
    A locked object keeps its mask: locking says "this one is finished", whatever the model.
    """
    problems = []
    for obj in workspace.objects:
        result = obj.result
        stale = not obj.locked and not obj.prompts.is_empty and (
            result is None or result.model_id != backend.model_id)
        if not stale:
            continue
        try:
            workspace = workspace.update(rerun_object(backend, embedding, obj))
        except PromptError as exc:
            workspace = workspace.update(obj.replace_current(
                Step(obj.prompts).with_edits(obj.current.edits)))
            problems.append(f"Object {obj.object_id}: {exc}")
    return workspace, problems


DISTINCT_IOU = 0.9  # candidates overlapping more than this are "the same mask"


def candidates_differ(candidates: tuple[MaskResult, ...] | list[MaskResult]) -> bool:
    """True when some pair of candidate masks overlaps less than ``DISTINCT_IOU`` (IoU), i.e.
    the model really offers different readings of the click. Compared on the 256 x 256 logits
    when every candidate has them (cheap), else on the full masks."""
    if len(candidates) < 2:
        return False
    if all(c.logits is not None for c in candidates):
        masks = [np.asarray(c.logits).reshape(c.logits.shape[-2:]) > 0 for c in candidates]
    else:
        masks = [c.mask() for c in candidates]
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            union = np.logical_or(masks[i], masks[j]).sum()
            if union == 0:
                continue
            if np.logical_and(masks[i], masks[j]).sum() / union < DISTINCT_IOU:
                return True
    return False


def stale_objects(workspace: Workspace, model_id: str) -> int:
    """How many objects show a mask from another model (or none while having prompts);
    locked ones are not counted (``refresh`` leaves them as they are)."""
    return sum(
        1 for o in workspace.objects if not o.locked
        and not o.prompts.is_empty and (o.result is None or o.result.model_id != model_id)
    )


def pick_candidate(workspace: Workspace, index: int) -> Workspace:
    """Show candidate ``index`` of the active object (no new undo step)."""
    obj = workspace.active
    return workspace.update(obj.replace_current(obj.current.pick(index)))
