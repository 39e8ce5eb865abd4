"""Segment an image: the one use case behind every entrance.

Three doors lead here, each choosing only how to admit the call and how to show the answer:

* the page's click route (``server.live_route`` -> ``workbench.segment.live``), with
  ``Policy.INTERACTIVE``, its click lane as ``decode_gate`` and the previous mask for refinement;
* the Gradio/MCP ``/segment`` endpoint (``ui.api``), with ``Policy.SINGLE`` inside the API lane;
* REST ``/v1/segment`` (``server.rest.service``), with ``Policy.SINGLE`` inside the API lane,
  one image and up to ``Limits.max_objects`` objects.

What is decided here, once: the model (unknown -> 422 ``unknown_model``), the point cap
(``Limits``, 422 ``too_many_points``), what the model can take (its ``Capabilities``, 422
``unsupported``), prompts inside the image (422 ``bad_prompt``), the order of the work
(cheapest refusal first: checks, then the model, then the encoder, then one decode per
object) and the errors: each is a ``workbench.errors.Refusal`` or an engine/lane exception that
``workbench.errors.failure_of`` maps to (status, code, message, field). An object's failure
names its field ``objects.<i>`` (and its index in the message when there are several).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Protocol, Sequence

import numpy as np

from sam_backends import Prediction, PromptError, Prompts, UnknownModelError
from workbench.errors import Refusal, failure_of
from workbench.limits import Limits
from workbench.objects import MaskResult
from workbench.segment.policy import Policy, predict


class PromptShape(Protocol):
    """What the checks read of one object's prompt (``Prompts``, a REST ``ObjectPrompt``...)."""

    @property
    def points(self) -> Sequence[Any]: ...

    @property
    def box(self) -> Any: ...


def _nothing(*_: Any) -> None:
    return None


@dataclass(frozen=True)
class Hooks:
    """How an entrance takes part in the work, without the use case knowing who it is.

    Attributes:
        between: called with the step's name between steps ("loading the model", "encoding
            the image", "segmenting object 2"); raises to stop (deadline 504, canceled job 409,
            a hover overtaken by a newer one).
        decode_gate: a context manager around the decodes (the click route's per-model lane).
        progress: the fraction of this use case's work done, 0..1 (encoding is the first half).
    """

    between: Callable[[str], None] = _nothing
    decode_gate: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    progress: Callable[[float], None] = _nothing


@dataclass(frozen=True)
class SegmentRequest:
    """One image and the prompts of its objects.

    Attributes:
        image: RGB uint8, H x W x 3; prompts are in its pixels, (x, y), boxes XYXY.
        objects: one ``Prompts`` per object (``multimask`` is the caller's own request).
        model_id: a model id of this app; empty or None: the app's default model.
        digest: the image's content digest when the caller knows it (saves hashing it).
        previous: INTERACTIVE: the object's mask shown before this interaction (refinement).
    """

    image: np.ndarray
    objects: tuple[Prompts, ...]
    model_id: str | None = None
    digest: str | None = None
    previous: MaskResult | None = field(default=None, compare=False)


@dataclass(frozen=True)
class SegmentResult:
    """The masks of each object, in the request's order, and what the encoder cost."""

    model_id: str
    predictions: tuple[Prediction, ...]
    encode_s: float
    encode_cached: bool


def resolve_model(ctx: Any, model_id: str | None) -> str:
    """The model to use: ``model_id``, or the app's default when empty (422 when unknown)."""
    model_id = (model_id or "").strip() or ctx.default_model()
    try:
        ctx.spec(model_id)
    except UnknownModelError as exc:
        raise Refusal(422, "unknown_model", str(exc), "model", title="Unknown model") from None
    return model_id


def check(ctx: Any, model_id: str, objects: Sequence[PromptShape], limits: Limits) -> None:
    """The checks that need no image and no model: point cap, then capabilities.

    Cheap, so entrances call it before waiting in a lane; ``segment`` calls it again.

    Raises:
        Refusal: 422 ``too_many_points`` (field ``objects.<i>.points``) or ``unsupported``.
    """
    caps = ctx.spec(model_id).capabilities
    for i, obj in enumerate(objects):
        limits.check_points(len(obj.points), f"objects.{i}.points")
        unsupported = _unsupported(obj, caps)
        if unsupported:
            raise Refusal(422, "unsupported", (
                f"Model {model_id!r} cannot take {unsupported}; it takes: "
                f"{', '.join(caps.as_list())}."), f"objects.{i}", title="Cannot use this prompt")


def segment(ctx: Any, request: SegmentRequest, limits: Limits, policy: Policy,
            hooks: Hooks = Hooks()) -> SegmentResult:
    """Segment every object of ``request`` on its image (see the module docstring).

    ``ctx`` is the ``AppContext`` (``spec``, ``backend``, ``encode``, ``default_model``,
    ``config.shows_operator_details``).

    Raises:
        Refusal: the checks above, and an object's prompt the image or model cannot take.
        Exception: engine and lane errors as they come (``failure_of`` maps them).
    """
    model_id = resolve_model(ctx, request.model_id)
    objects = request.objects
    check(ctx, model_id, objects, limits)
    operator = bool(getattr(ctx.config, "shows_operator_details", False))
    size = request.image.shape[:2]
    for i, prompts in enumerate(objects):
        with _object(i, len(objects), operator):
            prompts.validate_for_image(size)
    backend = ctx.backend(model_id)
    hooks.between("loading the model")
    encoded = ctx.encode(model_id, request.image, request.digest)
    hooks.between("encoding the image")
    hooks.progress(0.5)
    predictions = []
    threads = getattr(ctx, "threads", None)  # workbench.threads.ThreadPolicy

    def decode(prompts: Prompts) -> Prediction:
        def work() -> Prediction:
            return predict(backend, encoded.embedding, prompts, policy, request.previous)

        return work() if threads is None else threads.decode(
            work, getattr(backend, "device", "cpu"))

    with hooks.decode_gate():
        for i, prompts in enumerate(objects):
            hooks.between(f"segmenting object {i}")
            with _object(i, len(objects), operator):
                predictions.append(decode(prompts))
            hooks.progress(0.5 + 0.5 * (i + 1) / len(objects))
    return SegmentResult(model_id, tuple(predictions), float(encoded.seconds),
                         bool(encoded.cached))


@contextlib.contextmanager
def _object(index: int, count: int, operator: bool):
    """Name the object at fault in a prompt error: field ``objects.<i>``, and its index in the
    message when the request has several objects."""
    try:
        yield
    except PromptError as exc:
        failure = failure_of(exc, operator, f"objects.{index}")
        message = failure.message if count == 1 else f"Object {index}: {failure.message}"
        raise Refusal(failure.status, failure.code, message, failure.field,
                      title=failure.title) from exc


def _unsupported(obj: PromptShape, caps: Any) -> str | None:
    if obj.points and obj.box is not None and not caps.box_and_points:
        return "a box and points together"
    if obj.points and not caps.points:
        return "point prompts"
    if obj.box is not None and not caps.box:
        return "box prompts"
    return None
