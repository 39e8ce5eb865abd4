"""The compare view's per-user data and its transitions: one set of prompts, every model's masks.

A ``CompareSession`` is a segment-view ``Session`` (image, objects, prompts, undo history) with
one ``Workspace`` per selected model. The workspaces always share the same structure (objects,
prompts, history cursor): every prompt change is decoded by each model with the segment view's
own policy (``ui.inference.decode``: candidates for a lone point, each model refining with its
own previous logits), and every structural change (new object, select, delete, undo, redo,
clear) is applied to all of them. ``session.workspace`` is the canvas model's workspace (the
first selected model that has masks), so the segment view's canvas and object list render it
unchanged.

A model that cannot run (weights missing, a prompt it cannot take) records the prompts with no
mask and a friendly message in its ``ModelOutcome``; the other models are not affected.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from sam_backends import Embedding
from ui import inference
from ui.context import AppContext
from ui.errors import describe, log_unexpected
from ui.objects import PromptSet, Step, Workspace
from ui.session import Session

MIN_MODELS, MAX_MODELS = 2, 6
Progress = Callable[..., Any]


@dataclass(frozen=True)
class ModelOutcome:
    """How one model did on the latest interaction.

    Attributes:
        encode_seconds: wall time of the encode that produced the embedding in use (None: not
            encoded yet); ``cached`` True when it came from the cache (no encoder ran).
        decode_seconds: decoder wall time of the latest interaction (all objects it re-ran).
        error: a friendly message when the model could not answer (None when it did).
    """

    encode_seconds: float | None = None
    cached: bool = False
    decode_seconds: float | None = None
    error: str | None = None


class CompareSession(Session):
    """One tab's compare view: the image, the selected models and each model's workspace."""

    def __init__(self, session_id: str, models: Sequence[str]) -> None:
        super().__init__(session_id, models[0])
        self.models: tuple[str, ...] = tuple(models)
        self.workspaces: dict[str, Workspace] = {m: Workspace() for m in self.models}
        self.outcomes: dict[str, ModelOutcome] = {m: ModelOutcome() for m in self.models}
        self.ground_truth: np.ndarray | None = None  # bool H x W, same size as the image
        self.ground_truth_name = ""
        self.card_images: Any = None  # compare_views.CardImages of the image, built on first view

    # --- image -------------------------------------------------------------------------------

    def set_image(self, image: np.ndarray, digest: str, name: str) -> None:
        super().set_image(image, digest, name)
        self.workspaces = {m: Workspace() for m in self.models}
        self.outcomes = {m: ModelOutcome() for m in self.models}
        self.ground_truth = None
        self.ground_truth_name = ""
        self.card_images = None

    def release(self) -> None:
        super().release()
        self.workspaces = {m: Workspace() for m in self.models}
        self.outcomes = {m: ModelOutcome() for m in self.models}
        self.ground_truth = None
        self.card_images = None

    # --- views of the state ------------------------------------------------------------------

    @property
    def canvas_model(self) -> str:
        """The model whose masks the canvas shows: the first selected one that has masks."""
        for model_id in self.models:
            if self.workspaces[model_id].with_masks():
                return model_id
        return self.models[0]

    def sync_canvas(self) -> None:
        self.model_id = self.canvas_model
        self.workspace = self.workspaces[self.model_id]

    def masks_of(self, model_id: str) -> list[tuple[int, np.ndarray, float]]:
        """(object id, H x W bool mask, score) of every object the model has a mask for."""
        return [(o.object_id, o.result.mask(), o.result.score)
                for o in self.workspaces[model_id].with_masks()]

    def union_mask(self, model_id: str) -> np.ndarray | None:
        """All of the model's objects together (H x W bool), None when it has no mask."""
        masks = self.masks_of(model_id)
        if not masks or self.image is None:
            return None
        union = np.zeros(self.image.shape[:2], bool)
        for _, mask, _ in masks:
            union |= mask
        return union

    def apply(self, change: Callable[[Workspace], Workspace]) -> None:
        """Apply one structural change (new object, undo, ...) to every model's workspace."""
        self.workspaces = {m: change(ws) for m, ws in self.workspaces.items()}
        self.sync_canvas()


# --- running the models ---------------------------------------------------------------------


def _friendly(exc: BaseException) -> str:
    _, message, expected = describe(exc)
    if not expected:
        log_unexpected(exc)
    return message


def unavailable_reason(ctx: AppContext, model_id: str) -> str | None:
    """Why the model cannot run here (weights missing), or None when it can."""
    status = ctx.status(model_id)
    if status.present:
        return None
    name = status.display_name
    operator = ctx.config.shows_operator_details
    if status.download_command:
        command = f"Run `{status.download_command}` on the server, or pick" if operator else \
            "Pick"
        return f"{name} is not downloaded. {command} it in the Segment tab to download it."
    if operator:
        return f"{name}: its checkpoint file {ctx.checkpoint_file(model_id)} is missing."
    return f"{name}: its weights are not on this server."


def encode_models(ctx: AppContext, session: CompareSession,
                  progress: Progress | None = None) -> dict[str, Embedding]:
    """Each selected model's embedding of the session image (once per image and model).

    Progress is reported per model with the expected time (``ctx.encode`` records every
    uncached encode in ``ctx.encode_timings``). Models that cannot run get their
    ``ModelOutcome.error`` set and no entry.
    """
    embeddings: dict[str, Embedding] = {}
    count = len(session.models)
    for index, model_id in enumerate(session.models):
        reason = unavailable_reason(ctx, model_id)
        if reason is not None:
            session.outcomes[model_id] = ModelOutcome(error=reason)
            continue
        name = ctx.spec(model_id).display_name
        step = f"({index + 1}/{count})"
        try:
            if progress is not None and not ctx.pool.is_loaded(model_id):
                progress(index / count, desc=f"{name}: loading the model {step}")
            if progress is not None:
                progress(index / count, desc=_encode_description(ctx, session, model_id, step))
            encoded = ctx.encode(model_id, session.image, session.digest)
        except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the others
            session.outcomes[model_id] = ModelOutcome(error=_friendly(exc))
            continue
        previous = session.outcomes[model_id]
        if previous.encode_seconds is None or not encoded.cached:
            session.outcomes[model_id] = ModelOutcome(encoded.seconds, encoded.cached,
                                                      previous.decode_seconds)
        else:  # a later cache hit for this image: keep showing how its encode went
            session.outcomes[model_id] = dataclasses.replace(previous, error=None)
        embeddings[model_id] = encoded.embedding
    if progress is not None:
        progress(1.0, desc="Decoding the prompts with every model…")
    return embeddings


def _encode_description(ctx: AppContext, session: CompareSession, model_id: str,
                        step: str) -> str:
    name = ctx.spec(model_id).display_name
    if ctx.cached(model_id, session.digest):
        return f"{name}: embedding from cache {step}"
    estimate = ctx.encode_timings.estimate(model_id)
    if estimate.seconds is None:
        return f"{name}: encoding the image, first time on this machine {step}"
    return f"{name}: encoding the image, expected {estimate.text()} {step}"


def run_prompts(ctx: AppContext, session: CompareSession, prompts: PromptSet,
                progress: Progress | None = None) -> None:
    """Decode the active object's new prompts with every model, as one undoable step each."""
    generation = session.generation
    embeddings = encode_models(ctx, session, progress)
    updated: dict[str, Workspace] = {}
    for model_id in session.models:
        workspace = session.workspaces[model_id]
        active = workspace.active
        step = Step(prompts)
        embedding = embeddings.get(model_id)
        if embedding is not None:
            try:
                start = time.perf_counter()
                step = inference.decode(ctx.backend(model_id), embedding, prompts,
                                        previous=active.result)
                session.outcomes[model_id] = dataclasses.replace(
                    session.outcomes[model_id], decode_seconds=time.perf_counter() - start,
                    error=None)
            except Exception as exc:  # noqa: BLE001 - shown on this model's card only
                session.outcomes[model_id] = dataclasses.replace(
                    session.outcomes[model_id], decode_seconds=None, error=_friendly(exc))
        updated[model_id] = workspace.update(active.record(step))
    if generation == session.generation:  # the image did not change meanwhile
        session.workspaces = updated
        session.sync_canvas()


def rerun_stale(ctx: AppContext, session: CompareSession,
                progress: Progress | None = None) -> None:
    """Give every model masks for the objects' current prompts where it has none of its own
    (after undo/redo, or for a newly selected model)."""
    stale = [m for m in session.models
             if inference.stale_objects(session.workspaces[m], m)]
    if not stale or not session.has_image:
        session.sync_canvas()
        return
    generation = session.generation
    embeddings = encode_models(ctx, session, progress)
    updated = dict(session.workspaces)
    for model_id in stale:
        embedding = embeddings.get(model_id)
        if embedding is None:
            continue
        try:
            start = time.perf_counter()
            workspace, problems = inference.refresh(ctx.backend(model_id), embedding,
                                                    session.workspaces[model_id])
            updated[model_id] = workspace
            session.outcomes[model_id] = dataclasses.replace(
                session.outcomes[model_id], decode_seconds=time.perf_counter() - start,
                error=" ".join(problems) or None)
        except Exception as exc:  # noqa: BLE001 - shown on this model's card only
            session.outcomes[model_id] = dataclasses.replace(
                session.outcomes[model_id], error=_friendly(exc))
    if generation == session.generation:
        session.workspaces = updated
        session.sync_canvas()


def select_models(session: CompareSession, models: Sequence[str]) -> None:
    """Change the selection; new models start with the shared prompts and no masks (run
    ``rerun_stale`` to compute them). Raises ValueError outside 2..6 distinct models."""
    models = tuple(dict.fromkeys(models))
    if not MIN_MODELS <= len(models) <= MAX_MODELS:
        raise ValueError(f"Choose between {MIN_MODELS} and {MAX_MODELS} models to compare "
                         f"(got {len(models)}).")
    template = session.workspaces[session.models[0]]
    workspaces, outcomes = {}, {}
    for model_id in models:
        if model_id in session.workspaces:
            workspaces[model_id] = session.workspaces[model_id]
            outcomes[model_id] = session.outcomes[model_id]
        else:
            workspaces[model_id] = _prompts_only(template)
            outcomes[model_id] = ModelOutcome()
    session.models = models
    session.workspaces, session.outcomes = workspaces, outcomes
    session.sync_canvas()


def _prompts_only(workspace: Workspace) -> Workspace:
    """The same objects, prompts and history, with every mask removed."""
    objects = tuple(
        dataclasses.replace(o, history=tuple(Step(s.prompts) for s in o.history))
        for o in workspace.objects
    )
    return dataclasses.replace(workspace, objects=objects)
