"""How many masks to ask the model for, and whether to feed the last mask back: named policies.

Every entrance segments through ``workbench.segment.use_case``, which asks the model through
``predict`` below with the entrance's policy:

* ``Policy.INTERACTIVE`` (the page's click route): the way SAM's own demo behaves. A lone point
  with no box is ambiguous (a shirt, the person, the crowd?), so the model is asked for three
  candidates (``multimask``) and the best-scoring one is shown; any other prompt asks for one
  mask and, when the model supports it, feeds the previous mask's low-res logits back
  (``mask_input``) so each click refines the same object; when that single mask scores below
  ``UNSURE_SCORE``, three candidates for the same prompts are offered instead so the person can
  choose (taken from the same decode where the backend can: ``single_or_candidates``).
* ``Policy.SINGLE`` (Gradio/MCP ``/segment`` and REST ``/v1/segment``): stateless calls get
  exactly what they asked for: one mask, or three candidates when the request says
  ``multimask``; no second call, no hidden state. A program can then reason about the answer.
"""

from __future__ import annotations

import dataclasses
import enum

import numpy as np

from sam_backends import Backend, Embedding, Prediction, Prompts
from workbench.objects import MaskResult

UNSURE_SCORE = 0.5  # below this predicted IoU, INTERACTIVE offers three candidates


class Policy(enum.Enum):
    """See the module docstring."""

    INTERACTIVE = "interactive"
    SINGLE = "single"


def predict(backend: Backend, embedding: Embedding, prompts: Prompts, policy: Policy,
            previous: MaskResult | None = None) -> Prediction:
    """Ask ``backend`` for ``prompts``'s masks under ``policy``.

    Args:
        prompts: original-image pixels; ``prompts.multimask`` is the caller's own request.
        previous: INTERACTIVE only: the mask shown before this interaction; its logits refine
            the new mask when it came from the same model and the model supports refinement.

    Raises:
        PromptError: empty prompts, outside the image, or unsupported by the model.
    """
    if policy is Policy.SINGLE:
        return backend.predict(embedding, prompts)
    caps = backend.spec.capabilities
    single_point = len(prompts.points) == 1 and prompts.box is None
    mask_input = None
    if (caps.mask_refinement and not single_point and previous is not None
            and previous.model_id == backend.model_id and previous.logits is not None):
        mask_input = previous.logits
    multimask = caps.multimask and (single_point or prompts.multimask)
    if caps.multimask and not multimask:
        return single_or_candidates(backend, embedding, _with(prompts, mask_input, False))
    return backend.predict(embedding, _with(prompts, mask_input, multimask))


def single_or_candidates(backend: Backend, embedding: Embedding, prompts: Prompts) -> Prediction:
    """One mask, or three candidates when it scores below ``UNSURE_SCORE``.

    A ``Backend`` answers both from one decode where its family can
    (``Backend.predict_single_or_candidates``); anything else that only has ``predict`` (the
    ZeroGPU router, whose every ``predict`` is a GPU call of its own) gets that method's
    default: two ``predict`` calls.
    """
    if isinstance(backend, Backend):
        return backend.predict_single_or_candidates(embedding, prompts, UNSURE_SCORE)
    return Backend.predict_single_or_candidates(backend, embedding, prompts, UNSURE_SCORE)


def _with(prompts: Prompts, mask_input: np.ndarray | None, multimask: bool) -> Prompts:
    return dataclasses.replace(prompts, mask_input=mask_input, multimask=multimask)
