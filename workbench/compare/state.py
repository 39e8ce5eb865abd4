"""The compare view's per-user data and its transitions: one set of prompts, every model's masks.

A ``CompareSession`` is a segment-view ``Session`` (image, objects, prompts, undo history) with
one ``Workspace`` per selected model. The workspaces always share the same structure (objects,
prompts, history cursor): every prompt change is decoded by each model with the segment view's
own policy (``workbench.inference.decode``: candidates for a lone point, each model refining with
its own previous logits), and every structural change (new object, select, delete, undo, redo,
clear) is applied to all of them. ``session.workspace`` is the canvas model's workspace (the
one picked above the canvas, else the first selected model that has masks), so the segment
view's canvas and object list render it unchanged.

Streaming: ``run_prompts_steps`` and ``rerun_stale_steps`` run the models side by side (one
thread each: the backends are stateless, and torch and OpenCV release the GIL) and yield each
model id as soon as that model's workspace holds its answer, so a slow model (GrabCut on points,
a ViT-H encode) does not hold back the cards of the others. Workspaces are only replaced in the
caller's thread. While a step runs, ``session.pending`` names the models still to answer; in
between, the workspaces differ by that one step.

A model that cannot run (weights missing, a prompt it cannot take) records the prompts with no
mask and a friendly message in its ``ModelOutcome``; the other models are not affected.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from sam_backends import Embedding
from workbench import inference
from workbench.context import AppContext
from workbench.errors import describe, log_unexpected
from workbench.objects import PromptSet, Step, Workspace
from workbench.session import Session

MIN_MODELS, MAX_MODELS = 2, 6
Progress = Callable[..., Any]


@dataclass(frozen=True)
class ModelOutcome:
    """How one model did on the latest interaction.

    Attributes:
        encode_seconds: the model's own encode time for the embedding in use (None: not
            encoded yet); ``cached`` True when it came from the cache (no encoder ran).
        encode_wait_seconds: how long that encode waited for the encoder lane (other models'
            encodes) before it ran: shown apart, as it is not this model's time.
        decode_seconds: decoder wall time of the latest interaction (all objects it re-ran).
        error: a friendly message when the model could not answer (None when it did).
    """

    encode_seconds: float | None = None
    cached: bool = False
    decode_seconds: float | None = None
    error: str | None = None
    encode_wait_seconds: float | None = None


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
        self.canvas_choice: str | None = None  # the model picked above the canvas (None: auto)
        self.pending: frozenset[str] = frozenset()  # models still answering the current step

    # --- image -------------------------------------------------------------------------------

    def set_image(self, image: np.ndarray, digest: str, name: str) -> None:
        super().set_image(image, digest, name)
        self.workspaces = {m: Workspace() for m in self.models}
        self.outcomes = {m: ModelOutcome() for m in self.models}
        self.ground_truth = None
        self.ground_truth_name = ""
        self.card_images = None
        self.pending = frozenset()

    def release(self) -> None:
        super().release()
        self.workspaces = {m: Workspace() for m in self.models}
        self.outcomes = {m: ModelOutcome() for m in self.models}
        self.ground_truth = None
        self.card_images = None

    # --- views of the state ------------------------------------------------------------------

    @property
    def canvas_model(self) -> str:
        """The model whose masks the canvas shows: the one picked above the canvas when it is
        still compared, else the first selected one that has masks."""
        if self.canvas_choice in self.models:
            return self.canvas_choice
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
    embeddings = {m: e for m, e in encode_steps(ctx, session, progress) if e is not None}
    if progress is not None:
        progress(1.0, desc="Decoding the prompts with every model…")
    return embeddings


def encode_steps(ctx: AppContext, session: CompareSession, progress: Progress | None = None
                 ) -> Iterator[tuple[str, Embedding | None]]:
    """``encode_models`` one model at a time, in selection order: yields (model id, embedding
    or None when it cannot run) as each is ready, so the cards can show it at once."""
    count = len(session.models)
    for index, model_id in enumerate(session.models):
        yield model_id, _encode_one(ctx, session, model_id, progress, f"({index + 1}/{count})",
                                    index / count)


def _encode_one(ctx: AppContext, session: CompareSession, model_id: str,
                progress: Progress | None = None, step: str = "",
                fraction: float = 0.0) -> Embedding | None:
    """One model's embedding (its outcome updated), None when it cannot run."""
    reason = unavailable_reason(ctx, model_id)
    if reason is not None:
        session.outcomes[model_id] = ModelOutcome(error=reason)
        return None
    name = ctx.spec(model_id).display_name
    try:
        if progress is not None and not ctx.pool.is_loaded(model_id):
            progress(fraction, desc=f"{name}: loading the model {step}")
        if progress is not None:
            progress(fraction, desc=_encode_description(ctx, session, model_id, step))
        encoded = ctx.encode(model_id, session.image, session.digest)
    except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the others
        session.outcomes[model_id] = ModelOutcome(error=_friendly(exc))
        return None
    previous = session.outcomes[model_id]
    if previous.encode_seconds is None or not encoded.cached:
        session.outcomes[model_id] = ModelOutcome(
            encoded.seconds, encoded.cached, previous.decode_seconds,
            encode_wait_seconds=None if encoded.cached else encoded.waited)
    else:  # a later cache hit for this image: keep showing how its encode went
        session.outcomes[model_id] = dataclasses.replace(previous, error=None)
    return encoded.embedding


def in_parallel(models: Sequence[str], work: Callable[[str], Any]
                ) -> Iterator[tuple[str, Any]]:
    """``work(model_id)`` for every model, one thread each; yields (model id, result) in the
    order they finish. ``work`` must catch its own errors (per-model messages)."""
    if len(models) <= 1:
        for model_id in models:
            yield model_id, work(model_id)
        return
    with ThreadPoolExecutor(max_workers=len(models), thread_name_prefix="compare") as pool:
        futures = {pool.submit(work, model_id): model_id for model_id in models}
        for future in as_completed(futures):
            yield futures[future], future.result()


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
    for _ in run_prompts_steps(ctx, session, prompts, progress):
        pass


def run_prompts_steps(ctx: AppContext, session: CompareSession, prompts: PromptSet,
                      progress: Progress | None = None) -> Iterator[str]:
    """``run_prompts`` with every model at once (see the module docstring): yields each model
    id once its workspace holds the answer. Stops early if the image changes meanwhile;
    ``progress`` is accepted for symmetry and unused (workers do not report)."""
    generation = session.generation
    before = dict(session.workspaces)

    def answer(model_id: str) -> Step:
        embedding = _encode_one(ctx, session, model_id)
        active = before[model_id].active
        if embedding is None:
            return Step(prompts)
        try:
            start = time.perf_counter()
            step = inference.decode(ctx.backend(model_id), embedding, prompts,
                                    previous=active.result)
            session.outcomes[model_id] = dataclasses.replace(
                session.outcomes[model_id], decode_seconds=time.perf_counter() - start,
                error=None)
            return step
        except Exception as exc:  # noqa: BLE001 - shown on this model's card only
            session.outcomes[model_id] = dataclasses.replace(
                session.outcomes[model_id], decode_seconds=None, error=_friendly(exc))
            return Step(prompts)

    session.pending = frozenset(session.models)
    try:
        for model_id, step in in_parallel(session.models, answer):
            if generation != session.generation:  # a new image: these answers are stale
                return
            workspace = before[model_id]
            session.workspaces[model_id] = workspace.update(workspace.active.record(step))
            session.pending = session.pending - {model_id}
            session.sync_canvas()
            yield model_id
    finally:
        if generation == session.generation:
            session.pending = frozenset()


def rerun_stale(ctx: AppContext, session: CompareSession,
                progress: Progress | None = None) -> None:
    """Give every model masks for the objects' current prompts where it has none of its own
    (after undo/redo, or for a newly selected model)."""
    for _ in rerun_stale_steps(ctx, session, progress):
        pass


def rerun_stale_steps(ctx: AppContext, session: CompareSession,
                      progress: Progress | None = None) -> Iterator[str]:
    """``rerun_stale`` with every stale model at once: yields each model id once it is up to
    date (``progress`` unused, as in ``run_prompts_steps``)."""
    stale = [m for m in session.models
             if inference.stale_objects(session.workspaces[m], m)]
    if not stale or not session.has_image:
        session.sync_canvas()
        return
    generation = session.generation
    before = dict(session.workspaces)

    def refresh(model_id: str) -> Workspace | None:
        embedding = _encode_one(ctx, session, model_id)
        if embedding is None:
            return None
        try:
            start = time.perf_counter()
            workspace, problems = inference.refresh(ctx.backend(model_id), embedding,
                                                    before[model_id])
            session.outcomes[model_id] = dataclasses.replace(
                session.outcomes[model_id], decode_seconds=time.perf_counter() - start,
                error=" ".join(problems) or None)
            return workspace
        except Exception as exc:  # noqa: BLE001 - shown on this model's card only
            session.outcomes[model_id] = dataclasses.replace(
                session.outcomes[model_id], error=_friendly(exc))
            return None

    session.pending = frozenset(stale)
    try:
        for model_id, workspace in in_parallel(stale, refresh):
            if generation != session.generation:
                return
            if workspace is not None:
                session.workspaces[model_id] = workspace
            session.pending = session.pending - {model_id}
            session.sync_canvas()
            yield model_id
    finally:
        if generation == session.generation:
            session.pending = frozenset()


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
