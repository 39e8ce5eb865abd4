"""The work behind the REST routes: decode the image, segment each object, render the outputs.

Routes stay thin: they hand a validated ``SegmentRequest`` (strict pydantic, see ``schemas``),
the caller's key and the upload's bytes to ``SegmentService.segment`` and return what it gives.
Everything that can go wrong becomes a ``RestError`` (HTTP status, machine-readable code, a
message saying what happened and what to do, the request field at fault), turned into the JSON
error body by ``app``.

The segmenting itself is the app's one use case (``workbench.segment.use_case.segment``, with
``Policy.SINGLE``: exactly the masks asked for, and ``ctx.limits``), the same as the page's click
route and the Gradio/MCP ``/segment`` endpoint; its refusals and the engine's errors become
``RestError`` through ``workbench.errors.failure_of``, the one mapping.

Order of the work, cheapest refusal first: the request's own consistency (one image source,
prompts the model can take, point caps: ``use_case.check``) -> fetching a URL (outside the
lane: it is waiting, not computing; ``image_input``) -> the API lane (``ctx.api_lane``: one
call runs, a few wait, the rest get 503 with ``Retry-After``) -> decoding, encoding (shared
embedding cache: the same pixels are encoded once whoever sends them), one decode per object,
rendering. The deadline is checked between steps
(504), and so is ``cancelled`` (for background jobs).
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from sam_backends import (
    PromptError,
    Prompts,
)
from sam_backends.images import image_digest
from sam_backends.masks import encode_rle, mask_box
from server.rest import render
from server.rest.image_input import ImageInput
from server.rest.images import (
    FileStore,
    ImageStore,
    StoredFile,
    StoreFullError,
    UnknownImageError,
    UrlFetcher,
)
from server.rest.schemas import (
    CacheInfo,
    Candidate,
    ImageInfo,
    ImageUploaded,
    ModelRow,
    ObjectPrompt,
    RleMask,
    SegmentedObject,
    SegmentRequest,
    SegmentResponse,
)
from workbench.context import AppContext
from workbench.drawing import hex_colour
from workbench.errors import Failure, Refusal, failure_of
from workbench.exports import png_bytes
from workbench.lanes import Deadline
from workbench.segment import use_case
from workbench.segment.policy import Policy
from workbench.segment.use_case import Hooks
from workbench.segment.use_case import SegmentRequest as UseCaseRequest

log = logging.getLogger("samwb.rest")
FILES_PATH = "/v1/files/"
# Capabilities a model may have that /v1/segment does not run (the page's Everything tab does).
_NOT_SERVED = frozenset({"everything"})


class KeyLike(Protocol):
    """What the service needs of ``security.ApiKey``: whose request this is."""

    key_id: str


class RestError(Refusal):
    """A failure to answer with ``status`` and ``schemas.ErrorBody``.

    ``code`` is machine-readable (busy, timeout, unsupported, not_found, bad_image...);
    ``message`` says what happened and what to do; ``field`` names the request field at fault;
    ``retry_after_s`` becomes a ``Retry-After`` header. The fields are ``Refusal``'s.
    """

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 retry_after_s: int | None = None) -> None:
        super().__init__(status, code, message, field, retry_after_s)

    @classmethod
    def of(cls, failure: Failure) -> RestError:
        return cls(failure.status, failure.code, failure.message, failure.field,
                   failure.retry_after_s)

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


@dataclass(frozen=True)
class DecodedImage:
    """An image ready to segment: RGB uint8 H x W x 3, its digest and its store id if any."""

    image: np.ndarray
    digest: str
    image_id: str | None = None


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reasons: tuple[str, ...]
    models_present: tuple[str, ...]


class SegmentService:
    """The REST API's work, bound to one ``AppContext`` (see the module docstring)."""

    def __init__(self, ctx: AppContext, images: ImageStore, fetcher: UrlFetcher,
                 outputs: FileStore) -> None:
        self.ctx = ctx
        self.images = images
        self.fetcher = fetcher
        self.outputs = outputs
        self.max_image_bytes = ctx.config.upload_bytes
        self.input = ImageInput(fetcher, self.max_image_bytes, ctx.config.max_image_pixels)

    # --- POST /v1/segment ---------------------------------------------------------------------

    def segment(self, request: SegmentRequest, key: KeyLike, *, image_bytes: bytes | None,
                deadline: Deadline, progress: Callable[[float], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> SegmentResponse:
        """Segment every object of ``request`` on its image.

        Args:
            image_bytes: the multipart ``file`` part (then the request has no image/image_id).
            progress: called with the fraction done (0..1) after each step.
            cancelled: checked between steps; True stops the work (409 "canceled").

        Raises:
            RestError: for every failure, with the status and the field at fault.
        """
        start = time.perf_counter()
        report = progress or (lambda fraction: None)
        steps = Steps(deadline, cancelled)
        try:
            model_id = self._model(request)
            prompts = self._prompts(request, model_id)
            source = self._source(request, image_bytes)
            data = self.input.fetch(request.image, deadline) if source == "url" else None
            with self.ctx.api_lane.admit(deadline, client=f"key:{key.key_id}",
                                         patient=progress is not None):  # a job waits its turn
                queued = time.perf_counter()
                steps.check("waiting for its turn")
                decoded = self._decoded(request, key, image_bytes, data, source)
                size = decoded.image.shape[:2]
                decoded_at = time.perf_counter()
                report(0.1)
                result = use_case.segment(
                    self.ctx, UseCaseRequest(decoded.image, tuple(prompts), model_id,
                                             decoded.digest),
                    self.ctx.limits, Policy.SINGLE,
                    Hooks(between=steps.check, progress=lambda f: report(0.1 + 0.8 * f)))
                predicted = time.perf_counter()
                objects, overlay, dropped = self._outputs(request, key, decoded.image,
                                                          result.predictions)
                report(1.0)
        except RestError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a RestError
            raise self.error(exc) from None
        done = time.perf_counter()
        return SegmentResponse(
            model=model_id,
            image=ImageInfo(id=decoded.image_id, width=int(size[1]), height=int(size[0])),
            objects=objects,
            overlay=overlay,
            timings={"queue_s": _s(queued - start), "image_s": _s(decoded_at - queued),
                     "encode_s": _s(result.encode_s),
                     "predict_s": _s(predicted - decoded_at - result.encode_s),
                     "render_s": _s(done - predicted), "total_s": _s(done - start)},
            cache=self._cache_info(result.encode_cached),
            dropped=dropped,
        )

    # --- POST /v1/images ----------------------------------------------------------------------

    def upload(self, key: KeyLike, *, image: str | None, image_bytes: bytes | None,
               deadline: Deadline) -> ImageUploaded:
        """Decode an image once and keep it for later calls by this key (``image_id``)."""
        field = "file" if image_bytes is not None else "image"
        try:
            if image_bytes is None:
                image_bytes = self.input.text_bytes(image or "", deadline)
            with self.ctx.api_lane.admit(deadline, client=f"key:{key.key_id}"):
                deadline.check("waiting for its turn")
                array = self.input.load(image_bytes, field)
                stored = self.images.add(key.key_id, array, image_digest(array))
        except RestError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self.error(exc) from None
        height, width = stored.image.shape[:2]
        return ImageUploaded(id=stored.image_id, width=int(width), height=int(height),
                             expires_in_s=self.images.ttl_s)

    # --- GET /v1/models, /v1/files, /readyz ---------------------------------------------------

    def models(self) -> list[ModelRow]:
        rows = []
        for model_id in self.ctx.model_ids:
            status = self.ctx.status(model_id)
            spec = self.ctx.spec(model_id)
            rows.append(ModelRow(id=model_id, name=status.display_name, family=spec.family,
                                 present=status.present, custom=status.custom,
                                 capabilities=spec.capabilities.as_list()))
        return rows

    def file(self, token: str, key: KeyLike) -> StoredFile:
        try:
            return self.outputs.get(token, key.key_id)
        except UnknownImageError as exc:
            raise RestError(404, "not_found", gone_message(
                "file", exc.reason, self.outputs.ttl_s, self.outputs.per_key,
                "Repeat the request to make it again.")) from None

    def readiness(self) -> Readiness:
        """Ready when a model can run now and the API lane would accept a call."""
        present = tuple(m for m in self.ctx.model_ids if self.ctx.status(m).present)
        reasons = []
        if not present:
            reasons.append("no offered model has its weights on the server")
        lane = self.ctx.api_lane
        if lane.running >= lane.max_running and lane.waiting >= lane.max_waiting:
            reasons.append(f"the API queue is full ({lane.running} running, {lane.waiting} "
                           "waiting)")
        return Readiness(not reasons, tuple(reasons), present)

    # --- the request's own consistency --------------------------------------------------------

    def precheck(self, request: SegmentRequest, key: KeyLike) -> None:
        """What can be refused before any work, for a job at submit time (rather than a job
        that is accepted and fails later): the key's ``segment`` scope, the model, the
        objects and their prompts, and that exactly one image is named.

        Raises:
            RestError: 403 without the segment scope; otherwise as ``segment`` would.
        """
        if not key_has_scope(key, "segment"):
            raise RestError(403, "forbidden", (
                "This API key may not segment: a segment job needs the 'segment' scope as well "
                "as 'jobs'. Ask the operator for a key with --scopes segment,jobs."), "kind")
        try:
            self._prompts(request, self._model(request))
            self._source(request, None)
        except Exception as exc:  # noqa: BLE001 - refusals keep their own status and code
            raise self.error(exc) from None

    def _model(self, request: SegmentRequest) -> str:
        model_id = use_case.resolve_model(self.ctx, request.model)
        spec = self.ctx.spec(model_id)
        takes = ", ".join(k for k in spec.capabilities.as_list() if k not in _NOT_SERVED)
        for field, asked, kind in (("text", request.text is not None, "text"),
                                   ("everything", request.everything, "everything")):
            if asked and (kind in _NOT_SERVED or not getattr(spec.capabilities, kind, False)):
                raise RestError(422, "unsupported", (
                    f"Model {model_id!r} cannot take {kind} prompts here (this API does not "
                    f"serve them yet); it takes: {takes}. Send objects with points and/or a "
                    "box."), field)
        if not request.objects:
            raise RestError(422, "no_prompt", (
                "Give at least one object: {\"points\": [[x, y]]} and/or {\"box\": [x0, y0, "
                "x1, y1]} in original-image pixels."), "objects")
        return model_id

    def _prompts(self, request: SegmentRequest, model_id: str) -> list[Prompts]:
        """Point cap and capabilities (the use case's ``check``), then ``Prompts`` per object."""
        use_case.check(self.ctx, model_id, request.objects, self.ctx.limits)
        prompts = []
        for i, obj in enumerate(request.objects):
            try:
                prompts.append(_to_prompts(obj, request.multimask))
            except PromptError as exc:
                raise RestError(422, "bad_prompt", str(exc), f"objects.{i}") from None
        return prompts

    @staticmethod
    def _source(request: SegmentRequest, image_bytes: bytes | None) -> str:
        given = [name for name, value in (("file", image_bytes), ("image", request.image),
                                          ("image_id", request.image_id)) if value is not None]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            raise RestError(422, "bad_image", (
                f"Send exactly one image: image (a data: URI), image_id (from POST /v1/images) "
                f"or a file part (POST /v1/segment/upload); got {what}."),
                "image" if not given else given[-1])
        if given[0] == "image" and not request.image.startswith("data:"):
            return "url"
        return given[0]

    # --- images -------------------------------------------------------------------------------

    def _decoded(self, request: SegmentRequest, key: KeyLike, image_bytes: bytes | None,
                 fetched: bytes | None, source: str) -> DecodedImage:
        if source == "image_id":
            try:
                stored = self.images.get(request.image_id, key.key_id)
            except UnknownImageError as exc:
                raise RestError(404, "not_found", gone_message(
                    "image", exc.reason, self.images.ttl_s, self.images.per_key,
                    "Upload it again with POST /v1/images."), "image_id") from None
            return DecodedImage(stored.image, stored.digest, stored.image_id)
        if source == "file":
            data, field = image_bytes, "file"
        elif source == "url":
            data, field = fetched, "image"
        else:
            data, field = self.input.data_uri_bytes(request.image), "image"
        array = self.input.load(data, field)
        return DecodedImage(array, image_digest(array))

    # --- outputs ------------------------------------------------------------------------------

    def _outputs(self, request: SegmentRequest, key: KeyLike, image: np.ndarray,
                 predictions: list) -> tuple[list[SegmentedObject], str | None, int]:
        objects, masks, dropped = [], [], 0
        pictures = not request.mask_only
        for index, prediction in enumerate(predictions):
            best = prediction.best_index
            score = float(prediction.scores[best])
            if score < request.threshold:
                dropped += 1
                continue
            mask = prediction.mask(best)
            masks.append(mask)
            box = mask_box(mask)
            cut = None
            if pictures and request.cutout != "none":
                cut = self._picture(render.cutout(image, mask, request.cutout == "cropped"),
                                    request, key)
            candidates = None
            if request.multimask and prediction.count > 1:
                candidates = [_candidate(prediction.mask(i), prediction.scores[i], request)
                              for i in range(prediction.count)]
            objects.append(SegmentedObject(
                index=index, mask=RleMask(**encode_rle(mask)), area=int(mask.sum()),
                score=_score(score) if request.include_scores else None,
                box=[float(v) for v in box] if request.include_boxes and box else None,
                cutout=cut, candidates=candidates))
        overlay = None
        if pictures and request.overlay:
            color = hex_colour(request.mask_color) if request.mask_color else None
            picture = render.overlay(image, masks, color, request.mask_opacity)
            overlay = self._picture(picture, request, key)
        return objects, overlay, dropped

    def _picture(self, array: np.ndarray, request: SegmentRequest, key: KeyLike) -> str:
        data = png_bytes(array)
        if request.output == "url":
            return FILES_PATH + self.outputs.add(key.key_id, data)
        return "data:image/png;base64," + base64.b64encode(data).decode("ascii")

    def _cache_info(self, cached: bool) -> CacheInfo:
        stats = self.ctx.cache.stats()
        return CacheInfo(embedding="hit" if cached else "miss", entries=stats.entries,
                         bytes=stats.bytes, max_bytes=stats.max_bytes, hits=stats.hits,
                         misses=stats.misses)

    # --- errors -------------------------------------------------------------------------------

    def error(self, exc: BaseException) -> RestError:
        """The ``RestError`` for an engine or lane failure (messages safe for visitors)."""
        if isinstance(exc, RestError):
            return exc
        if isinstance(exc, StoreFullError):
            return RestError(507, "store_full", str(exc), retry_after_s=exc.retry_after_s)
        return RestError.of(failure_of(exc, self.ctx.config.shows_operator_details))


class Steps:
    """The checks between two steps of work: the deadline, then cancellation."""

    def __init__(self, deadline: Deadline, cancelled: Callable[[], bool] | None) -> None:
        self.deadline = deadline
        self.cancelled = cancelled

    def check(self, step: str) -> None:
        self.deadline.check(step)
        if self.cancelled is not None and self.cancelled():
            raise RestError(409, "canceled", f"The work was canceled (while {step}).")


def key_has_scope(key: KeyLike, scope: str) -> bool:
    """Whether ``key`` (an ``ApiKey``, or a stand-in with ``scopes``) holds ``scope``."""
    scopes = getattr(key, "scopes", None)
    return scopes is None or scope in scopes


def gone_message(what: str, reason: str, ttl_s: int, per_key: int, again: str) -> str:
    """Why a stored image or file is not there, as honestly as can be told to its key."""
    if reason == "expired":
        why = f"This {what} has expired ({what}s are kept {ttl_s} s)."
    elif reason == "replaced":
        why = (f"This {what} was removed to make room for newer ones of the same key (a key "
               f"keeps at most {per_key}).")
    else:
        why = (f"No such {what} for this key: the id is unknown here. Stores live in memory, "
               f"so ids from before a server restart are gone.")
    return f"{why} {again}"


def _to_prompts(obj: ObjectPrompt, multimask: bool) -> Prompts:
    labels = obj.labels if obj.labels is not None else [1] * len(obj.points)
    return Prompts(points=[(p[0], p[1]) for p in obj.points], labels=labels,
                   box=None if obj.box is None else tuple(obj.box), multimask=multimask)


def _candidate(mask: np.ndarray, score: float, request: SegmentRequest) -> Candidate:
    return Candidate(mask=RleMask(**encode_rle(mask)), area=int(mask.sum()),
                     score=_score(score) if request.include_scores else None)


def _score(value: float) -> float:
    return round(float(value), 6)


def _s(seconds: float) -> float:
    return round(max(0.0, seconds), 4)
