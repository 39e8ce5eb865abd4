"""The one place the proposals UI calls the engines: "segment everything" and text prompts.

Thin adapters from UI values (a session's picture, a model choice) to
``sam_backends.automatic`` and ``sam_backends.text``, so the panel, the compare panel and the
API share one call path and one set of limits. Validation is the engines' own (their typed
``PromptError``s name the limits); ``workbench.errors`` turns those into messages.

Text models: "sam3" (SAM 3 reads the words itself) or ``DETECTOR`` (OWLv2 finds boxes for the
words and the SAM 1 / SAM 2.1 model in use turns each box into a mask).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from sam_backends import Instances, PromptError, UnsupportedPromptError
from workbench.context import AppContext

SAM3 = "sam3"
DETECTOR = "owlv2"
POINTS_CHOICES = (8, 16, 24, 32, 48, 64)
DEFAULT_POINTS = 16
MAX_TEXT_CHARS = 10_000  # the text box's own cap; the engine's limit is lower and named

Cancel = Callable[[], bool]
Report = Callable[..., None]


class Cancelled(Exception):
    """The person pressed Stop; raised by the engine (its own type) or mapped to this."""


def _automatic():
    from sam_backends import automatic

    return automatic


def _text():
    from sam_backends import text

    return text


def check_points_per_side(value: Any) -> int:
    """The UI's points-per-side choice as an int, validated by the engine's parameters."""
    try:
        points = int(value)
    except (TypeError, ValueError):
        raise PromptError(f"Points per side must be a whole number, got {value!r}.") from None
    _automatic().EverythingParams(points_per_side=points)  # the engine names the limit
    return points


def everything_param_names() -> tuple[str, ...]:
    """The parameter names ``EverythingParams`` takes (upstream's generator names)."""
    return tuple(f.name for f in dataclasses.fields(_automatic().EverythingParams))


def everything_params_from(values: dict[str, Any]):
    """``EverythingParams(**values)``: the engine checks every value and names its limit."""
    try:
        return _automatic().EverythingParams(**values)
    except TypeError as exc:  # a wrong keyword or type that the dataclass itself refuses
        raise PromptError(f"Cannot use these parameters: {exc}.") from None


def everything(ctx: AppContext, model_id: str, picture: Any, points_per_side: int,
               threshold: float, *, defaults: dict[str, Any] | None = None,
               cancel: Cancel | None = None, progress: Report | None = None) -> Instances:
    """Every object on the picture with a SAM 1 / SAM 2.1 model, from a grid of
    ``points_per_side`` squared points, keeping predicted IoU >= ``threshold``; ``defaults``:
    the other ``EverythingParams`` (upstream's defaults when absent)."""
    params = {**(defaults or {}), "points_per_side": int(points_per_side),
              "pred_iou_thresh": float(threshold)}
    return everything_with(ctx, model_id, picture, params, cancel=cancel, progress=progress)


def everything_with(ctx: AppContext, model_id: str, picture: Any, params: dict[str, Any], *,
                    cancel: Cancel | None = None, progress: Report | None = None) -> Instances:
    """``segment_everything`` on the picture's cached embedding (encoded here when needed)."""
    # Within the run's memory budget: smaller batches, or a refusal naming the largest grid.
    parsed = _automatic().fit_memory(everything_params_from(params),
                                     getattr(ctx.config, "everything_max_bytes", None))
    image, digest = _image(picture)
    report = progress or (lambda *args, **kwargs: None)
    spec = ctx.spec(model_id)
    name = spec.display_name
    if not spec.capabilities.everything:  # refused before any encode (the family's fact)
        raise UnsupportedPromptError(
            f"{name} cannot segment everything: it needs a model that decodes a grid of point "
            "prompts. Pick a SAM 1 or SAM 2.1 model.")
    report(0.02, f"Encoding the image with {name} (once per image)…")
    backend = ctx.backend(model_id)
    embedding = ctx.encode(model_id, image, digest).embedding
    def grid(done: int, total: int) -> None:  # the engine counts grid points
        report(0.1 + 0.9 * done / max(total, 1), f"Prompting the grid: {done} of {total} points…")

    return _own_thread(ctx, lambda: _cancellable(lambda: _automatic().segment_everything(
        backend, embedding, parsed, cancel=cancel, progress=grid)))


def phrases(text: str | None) -> tuple[str, ...]:
    """The phrases of a text prompt, or the engine's ``PromptError`` naming the limit."""
    from sam_backends.text.phrases import parse_phrases

    return parse_phrases("" if text is None else text)


def reads_text(ctx: AppContext, model_id: str) -> bool:
    """True when the model reads text prompts itself (SAM 3), per its catalogue capabilities."""
    return bool(getattr(ctx.spec(model_id).capabilities, "text", False))


def text(ctx: AppContext, text_model: str, sam_model: str, picture: Any,
         phrases_: tuple[str, ...], threshold: float, *, cancel: Cancel | None = None,
         progress: Report | None = None) -> Instances:
    """Instances for ``phrases_``: with ``text_model`` itself when it reads text (SAM 3), or
    with OWLv2 (``text_model == DETECTOR``) feeding the SAM 1 / SAM 2.1 model ``sam_model``.

    Raises:
        UnsupportedPromptError: ``text_model`` does not read text (the message names the
            alternatives), or ``sam_model`` takes no boxes.
    """
    image, digest = _image(picture)
    report = progress or (lambda *args, **kwargs: None)
    cancel = cancel or (lambda: False)
    if text_model == DETECTOR:
        return _detect_then_segment(ctx, sam_model, image, digest, phrases_, threshold,
                                    cancel, report)
    from sam_backends.text import segment_text

    name = ctx.spec(text_model).display_name
    if not reads_text(ctx, text_model):
        raise UnsupportedPromptError(
            f"{name} does not read text prompts. Use {SAM3} (SAM 3), or {DETECTOR}+{text_model} "
            f"to find boxes for the words with OWLv2 and cut each out with {name}.")
    report(0.02, f"Loading {name}…")
    backend = ctx.backend(text_model)
    _stop_if(cancel)
    report(0.1, f"Encoding the image with {name} (once per image)…")
    encoded = ctx.encode(text_model, image, digest)
    _stop_if(cancel)
    report(0.7, f"Finding {', '.join(phrases_)}…")
    instances = _own_thread(ctx, lambda: segment_text(backend, encoded.embedding, phrases_,
                                                      threshold))
    seconds = {"encode": 0.0 if encoded.cached else encoded.seconds, **instances.seconds}
    return dataclasses.replace(instances, seconds=seconds)


def _detect_then_segment(ctx: AppContext, sam_model: str, image: np.ndarray, digest: str | None,
                         phrases_: tuple[str, ...], threshold: float, cancel: Cancel,
                         report: Report) -> Instances:
    from sam_backends.text import DetectThenSegment

    name = ctx.spec(sam_model).display_name
    report(0.02, "Loading OWLv2…")
    owl = detector(ctx)
    report(0.05, f"Loading {name}…")
    pipeline = DetectThenSegment(owl, ctx.backend(sam_model))  # refuses models without boxes
    _stop_if(cancel)
    report(0.1, f"Encoding the image with {name} (once per image)…")
    encoded = ctx.encode(sam_model, image, digest)
    _stop_if(cancel)
    report(0.5, f"Detecting {', '.join(phrases_)} with OWLv2 and cutting out each box…")
    instances = _own_thread(ctx, lambda: pipeline.segment_text(
        image, phrases_, threshold, embedding=encoded.embedding))
    seconds = dict(instances.seconds)
    seconds["encode"] = 0.0 if encoded.cached else encoded.seconds
    return dataclasses.replace(instances, seconds=seconds)


def detector(ctx: AppContext) -> Any:
    """The OWLv2 detector for this app's configuration, loaded on first use and shared by every
    session like the backend pool's models (``ctx.services.detector``, bounded; its
    image-feature cache is bounded and thread-safe). The folder is
    ``<checkpoints>/owlv2-base-patch16-ensemble`` (downloaded from Hugging Face when absent:
    Apache-2.0, not gated). Device: the app's (as the SAM models); precision: the app's when
    OWLv2 has it (fp32 or bf16), else exact fp32."""
    from sam_backends.device import resolve_device

    device = resolve_device(ctx.config.device)
    precision = ctx.config.precision if ctx.config.precision in ("fp32", "bf16") else "fp32"
    checkpoint_dir = ctx.config.checkpoint_dir
    key = (str(checkpoint_dir), device, precision)

    def load() -> Any:
        from sam_backends.text import hub, load_owlv2

        folder = hub.resolve_folder(hub.OWLV2, checkpoint_dir=checkpoint_dir, download=True)
        return load_owlv2(folder, device, precision)

    return ctx.services.detector(key, load)


def _own_thread(ctx: AppContext, work: Callable[[], Instances]) -> Instances:
    """A many-object run on a thread that ends with it (``AppContext.in_own_thread``: its
    OpenMP pool would otherwise slow every later click)."""
    run = getattr(ctx, "in_own_thread", None)
    return work() if run is None else run(work, "samwb-proposals")


def _stop_if(cancel: Cancel) -> None:
    if cancel():
        raise Cancelled("stopped")


def split_text_model(ctx: AppContext, model_id: str | None) -> tuple[str, str]:
    """(text model, SAM model) for an API model id: a model that reads text ("sam3") as is;
    "owlv2+<sam>" as (DETECTOR, sam); a bare id as itself (refused later when it does not read
    text, with the alternatives named); empty: SAM 3 when offered and downloaded, else OWLv2 +
    the default model. Unknown ids raise ``UnknownModelError``."""
    model_id = (model_id or "").strip()
    if not model_id:
        if SAM3 in ctx.model_ids and ctx.status(SAM3).present:
            return SAM3, ""
        return DETECTOR, ctx.default_model()
    detector_id, plus, sam = model_id.partition("+")
    if not plus:
        ctx.entry(model_id)
        return model_id, ""
    if detector_id != DETECTOR:
        raise PromptError(f"Unknown text detector {detector_id!r}; use {DETECTOR}+<model id>, "
                          f"or a model that reads text ({SAM3}).")
    ctx.entry(sam)
    return DETECTOR, sam


def _image(picture: Any) -> tuple[np.ndarray, str | None]:
    if isinstance(picture, np.ndarray):
        return picture, None
    return picture.image, picture.digest


def _cancellable(run: Callable[[], Instances]) -> Instances:
    try:
        return run()
    except Exception as exc:
        if type(exc).__name__ in ("Cancelled", "CancelledError", "EverythingCancelledError"):
            raise Cancelled(str(exc)) from exc
        raise


def text_model_choices(ctx: AppContext) -> list[tuple[str, str]]:
    """(label, value) of the text models this app offers: SAM 3 when in the catalogue, and the
    detector feeding the segment view's SAM model. A ready model comes first (the default):
    SAM 3 when its weights are here, else OWLv2, with SAM 3 marked "not downloaded"."""
    owl = ("OWLv2 + the model above", DETECTOR)
    if SAM3 not in ctx.model_ids:
        return [owl]
    sam3 = "SAM 3 (reads the text itself; SAM License)"
    if ctx.status(SAM3).present:
        return [(sam3, SAM3), owl]
    return [owl, (sam3 + " · not downloaded", SAM3)]


def text_model_note(ctx: AppContext) -> str:
    """The picker's note, in the page's terms: how to get SAM 3 is the operator's business."""
    owl = "OWLv2 (Apache-2.0) finds boxes for the words; the model above cuts each one out."
    if SAM3 not in ctx.model_ids or ctx.status(SAM3).present:
        return owl
    if ctx.config.shows_operator_details:
        return owl + (" SAM 3 is not downloaded: its weights are gated on Hugging Face (SAM "
                      "License); set HF_TOKEN on the server to fetch them.")
    return owl + " SAM 3's weights are not on this server."
