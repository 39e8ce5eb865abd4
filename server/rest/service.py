"""The work behind the REST routes: decode the image, segment each object, render the outputs.

Routes stay thin: they hand a validated ``SegmentRequest`` (strict pydantic, see ``schemas``),
the caller's key and the upload's bytes to ``SegmentService.segment`` and return what it gives.
Everything that can go wrong becomes a ``RestError`` (HTTP status, machine-readable code, a
message saying what happened and what to do, the request field at fault), turned into the JSON
error body by ``app``.

Order of the work, cheapest refusal first: the request's own consistency (one image source,
prompts the model can take, point caps) -> fetching a URL (outside the lane: it is waiting, not
computing) -> the API lane (``ctx.api_lane``: one call runs, a few wait, the rest get 503 with
``Retry-After``) -> decoding, encoding (shared embedding cache: the same pixels are encoded once
whoever sends them), one decode per object, rendering. The deadline is checked between steps
(504), and so is ``cancelled`` (for background jobs).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from sam_backends import (
    BackendUnavailableError,
    CheckpointError,
    ImageError,
    ImageTooLargeError,
    ModelOutputError,
    PromptError,
    Prompts,
    UnknownModelError,
)
from sam_backends.errors import UnsupportedPromptError
from sam_backends.images import image_digest, load_image
from sam_backends.masks import encode_rle, mask_box
from server.rest import render
from server.rest.images import (
    FetchError,
    FileStore,
    ImageStore,
    StoredFile,
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
from workbench.errors import describe
from workbench.exports import png_bytes
from workbench.lanes import Deadline, RequestTimeoutError, ServerBusyError

log = logging.getLogger("samwb.rest")
DATA_URI = re.compile(r"data:(?P<type>[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+)(?P<params>(;[^;,]*)*),")
FILES_PATH = "/v1/files/"


class KeyLike(Protocol):
    """What the service needs of ``security.ApiKey``: whose request this is."""

    key_id: str


class RestError(Exception):
    """A failure to answer with ``status`` and ``schemas.ErrorBody``.

    ``code`` is machine-readable (busy, timeout, unsupported, not_found, bad_image...);
    ``message`` says what happened and what to do; ``field`` names the request field at fault;
    ``retry_after_s`` becomes a ``Retry-After`` header.
    """

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after_s = retry_after_s

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
        model_id = self._model(request)
        prompts = self._prompts(request, model_id)
        source = self._source(request, image_bytes)
        steps = Steps(deadline, cancelled)
        try:
            data = self._fetch(request.image, deadline) if source == "url" else None
            with self.ctx.api_lane.admit(deadline):
                queued = time.perf_counter()
                steps.check("waiting for its turn")
                decoded = self._decoded(request, key, image_bytes, data, source)
                size = decoded.image.shape[:2]
                for i, prompt in enumerate(prompts):
                    self._validate_for_image(prompt, size, i)
                decoded_at = time.perf_counter()
                report(0.1)
                backend = self.ctx.backend(model_id)
                steps.check("loading the model")
                encoded = self.ctx.encode(model_id, decoded.image, decoded.digest)
                steps.check("encoding the image")
                report(0.5)
                predictions = []
                for i, prompt in enumerate(prompts):
                    predictions.append(self._predict(backend, encoded.embedding, prompt, i))
                    steps.check(f"segmenting object {i}")
                    report(0.5 + 0.4 * (i + 1) / len(prompts))
                predicted = time.perf_counter()
                objects, overlay, dropped = self._outputs(request, key, decoded.image,
                                                          predictions)
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
                     "encode_s": _s(encoded.seconds),
                     "predict_s": _s(predicted - decoded_at - encoded.seconds),
                     "render_s": _s(done - predicted), "total_s": _s(done - start)},
            cache=self._cache_info(encoded.cached),
            dropped=dropped,
        )

    # --- POST /v1/images ----------------------------------------------------------------------

    def upload(self, key: KeyLike, *, image: str | None, image_bytes: bytes | None,
               deadline: Deadline) -> ImageUploaded:
        """Decode an image once and keep it for later calls by this key (``image_id``)."""
        field = "file" if image_bytes is not None else "image"
        try:
            if image_bytes is None:
                image_bytes = self._image_text_bytes(image or "", deadline)
            with self.ctx.api_lane.admit(deadline):
                deadline.check("waiting for its turn")
                array = self._load(image_bytes, field)
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
        except UnknownImageError:
            raise RestError(404, "not_found", (
                "No such file: it never existed, has expired (files are kept "
                f"{self.outputs.ttl_s} s) or belongs to another key. Repeat the "
                "request to make it again.")) from None

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

    def _model(self, request: SegmentRequest) -> str:
        model_id = (request.model or "").strip() or self.ctx.default_model()
        try:
            spec = self.ctx.spec(model_id)
        except UnknownModelError as exc:
            raise RestError(422, "unknown_model", str(exc), "model") from None
        takes = ", ".join(spec.capabilities.as_list())
        for field, asked, kind in (("text", request.text is not None, "text"),
                                   ("everything", request.everything, "everything")):
            if asked and not getattr(spec.capabilities, kind, False):
                raise RestError(422, "unsupported", (
                    f"Model {model_id!r} cannot take {kind} prompts (none offered here can yet);"
                    f" it takes: {takes}. Send objects with points and/or a box."), field)
        if not request.objects:
            raise RestError(422, "no_prompt", (
                "Give at least one object: {\"points\": [[x, y]]} and/or {\"box\": [x0, y0, "
                "x1, y1]} in original-image pixels."), "objects")
        return model_id

    def _prompts(self, request: SegmentRequest, model_id: str) -> list[Prompts]:
        caps = self.ctx.spec(model_id).capabilities
        limit = self.ctx.config.max_points
        prompts = []
        for i, obj in enumerate(request.objects):
            field = f"objects.{i}"
            if len(obj.points) > limit:
                raise RestError(422, "too_many_points", (
                    f"Object {i} has {len(obj.points)} points; this server takes at most "
                    f"{limit} per object. Use fewer points or a box."), f"{field}.points")
            unsupported = _unsupported(obj, caps)
            if unsupported:
                raise RestError(422, "unsupported", (
                    f"Model {model_id!r} cannot take {unsupported}; it takes: "
                    f"{', '.join(caps.as_list())}."), field)
            try:
                prompts.append(_to_prompts(obj, request.multimask))
            except PromptError as exc:
                raise RestError(422, "bad_prompt", str(exc), field) from None
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

    def _predict(self, backend, embedding, prompt: Prompts, index: int):
        try:
            return backend.predict(embedding, prompt)
        except PromptError as exc:  # e.g. GrabCut given only background points
            code = "unsupported" if isinstance(exc, UnsupportedPromptError) else "bad_prompt"
            message = describe(exc, self.ctx.config.shows_operator_details)[1]
            raise RestError(422, code, f"Object {index}: {message}", f"objects.{index}") from None

    @staticmethod
    def _validate_for_image(prompt: Prompts, size: tuple[int, int], index: int) -> None:
        try:
            prompt.validate_for_image(size)
        except PromptError as exc:
            raise RestError(422, "bad_prompt", f"Object {index}: {exc}",
                            f"objects.{index}") from None

    # --- images -------------------------------------------------------------------------------

    def _image_text_bytes(self, text: str, deadline: Deadline) -> bytes:
        if text.startswith("data:"):
            return self.data_uri_bytes(text)
        return self._fetch(text, deadline)

    def _fetch(self, url: str, deadline: Deadline) -> bytes:
        if not url.startswith(("https://", "http://")):
            raise RestError(422, "bad_image", (
                "image must be a data: URI (data:image/png;base64,...) or, where this server "
                "fetches URLs, an https:// URL."), "image")
        try:
            return self.fetcher.fetch(url, timeout_s=max(0.1, deadline.remaining))
        except FetchError as exc:
            raise RestError(exc.status, exc.code, str(exc), "image") from None

    def data_uri_bytes(self, text: str) -> bytes:
        """The bytes of a ``data:image/...;base64,`` URI (strict base64, size-bounded)."""
        match = DATA_URI.match(text)
        if match is None or ";base64" not in match.group("params").lower():
            raise RestError(422, "bad_image", (
                "image must be a base64 data: URI such as data:image/png;base64,iVBORw0..."),
                "image")
        if not match.group("type").lower().startswith("image/"):
            raise RestError(422, "bad_image", (
                f"The data: URI holds {match.group('type')!r}, not an image; send an image/* "
                "media type (JPEG, PNG, WebP, BMP, TIFF, GIF)."), "image")
        payload = text[match.end():]
        if len(payload) // 4 * 3 > self.max_image_bytes + 3:
            raise self._too_big("image")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise RestError(422, "bad_image", (
                "The data: URI's base64 is invalid (only A-Z, a-z, 0-9, +, / and = padding; no "
                "spaces or line breaks)."), "image") from None
        if len(data) > self.max_image_bytes:
            raise self._too_big("image")
        return data

    def _too_big(self, field: str) -> RestError:
        return RestError(413, "payload_too_large", (
            f"The image is larger than the limit of {self.max_image_bytes:,} bytes; send a "
            "smaller file."), field)

    def _decoded(self, request: SegmentRequest, key: KeyLike, image_bytes: bytes | None,
                 fetched: bytes | None, source: str) -> DecodedImage:
        if source == "image_id":
            try:
                stored = self.images.get(request.image_id, key.key_id)
            except UnknownImageError:
                raise RestError(404, "not_found", (
                    "No such image: the id is unknown, has expired (images are kept "
                    f"{self.images.ttl_s} s) or was uploaded with another key. Upload it again "
                    "with POST /v1/images."), "image_id") from None
            return DecodedImage(stored.image, stored.digest, stored.image_id)
        if source == "file":
            data, field = image_bytes, "file"
        elif source == "url":
            data, field = fetched, "image"
        else:
            data, field = self.data_uri_bytes(request.image), "image"
        array = self._load(data, field)
        return DecodedImage(array, image_digest(array))

    def _load(self, data: bytes, field: str) -> np.ndarray:
        if len(data) > self.max_image_bytes:
            raise self._too_big(field)
        try:
            return load_image(data, max_pixels=self.ctx.config.max_image_pixels)
        except ImageTooLargeError as exc:
            raise RestError(422, "image_too_large", describe(exc, False)[1], field) from None
        except ImageError as exc:
            raise RestError(422, "bad_image", describe(exc, False)[1], field) from None

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
        operator = self.ctx.config.shows_operator_details
        if isinstance(exc, RestError):
            return exc
        if isinstance(exc, ServerBusyError):
            return RestError(503, "busy", str(exc), retry_after_s=exc.retry_after_s)
        if isinstance(exc, RequestTimeoutError):
            return RestError(504, "timeout", str(exc))
        if isinstance(exc, UnsupportedPromptError):
            return RestError(422, "unsupported", describe(exc, operator)[1], "objects")
        if isinstance(exc, PromptError):
            return RestError(422, "bad_prompt", describe(exc, operator)[1], "objects")
        if isinstance(exc, (CheckpointError, BackendUnavailableError)):
            return RestError(503, "model_unavailable", describe(exc, operator)[1], "model")
        if isinstance(exc, ModelOutputError):
            return RestError(500, "model_output", describe(exc, operator)[1], "model")
        if isinstance(exc, MemoryError):
            return RestError(507, "out_of_memory", describe(exc, operator)[1])
        log.error("REST segment failed unexpectedly", exc_info=exc)
        return RestError(500, "internal", (
            "An unexpected error happened on the server (it is logged there); the server is "
            "still running. Try again, or another model or image."))


class Steps:
    """The checks between two steps of work: the deadline, then cancellation."""

    def __init__(self, deadline: Deadline, cancelled: Callable[[], bool] | None) -> None:
        self.deadline = deadline
        self.cancelled = cancelled

    def check(self, step: str) -> None:
        self.deadline.check(step)
        if self.cancelled is not None and self.cancelled():
            raise RestError(409, "canceled", f"The work was canceled (while {step}).")


def _unsupported(obj: ObjectPrompt, caps) -> str | None:
    if obj.points and obj.box is not None and not caps.box_and_points:
        return "a box and points together"
    if obj.points and not caps.points:
        return "point prompts"
    if obj.box is not None and not caps.box:
        return "box prompts"
    return None


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
