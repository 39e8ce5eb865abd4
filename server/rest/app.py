"""The REST routes and their error handlers, mounted into Gradio's own server.

``rest_routes(ctx, security)`` gives Starlette routes for ``FastAPI(routes=...)``, which
Gradio's ``launch(app_kwargs=...)`` passes on, so they are registered before Gradio's own
routes and sit behind the same guard middleware (body limit 413, security headers)::

    GET  /healthz                 liveness: {"status": "ok"}, no model work, no key
    GET  /readyz                  200 when a model is present and the API queue takes work,
                                  else 503 with the reasons; no key
    POST /v1/segment              JSON SegmentRequest (image: data: URI or URL, or image_id)
    POST /v1/segment/upload       multipart: "file" (the image) + "request" (SegmentRequest
                                  JSON text, without image/image_id)
    POST /v1/images               JSON {"image": <data: URI or URL>} -> {"id": "img_...", ...}
    POST /v1/images/upload        multipart: "file"
    GET  /v1/models               the models offered, their presence and capabilities
    GET  /v1/files/{token}        a PNG of an ``output: "url"`` response (same key, expiring)
    /v1/jobs...                   background jobs (``routes_jobs``), scope "jobs"
    POST /v1/video[/upload]       a clip tracked as a job (``video``), scope "video"
    GET  /v1/openapi.json, /v1/docs

Two routes per upload (JSON and multipart) rather than one that sniffs the content type, so
the OpenAPI schema describes each body exactly and FastAPI validates it. Every ``/v1`` route
needs a key with the "segment" scope (jobs: "jobs"). Every error is ``schemas.ErrorBody``
JSON with a machine-readable code, a message for a person and the field at fault; never a
traceback (unexpected errors are logged once, on the server, and answered 500 "internal").
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import Depends, FastAPI, File, Form, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route

from server.middleware import BodyTooLarge, StorageFull
from server.rest.docs import add_docs
from server.rest.images import (
    MAX_IMAGE_BYTES_PER_KEY,
    FetchPolicy,
    FileStore,
    ImageStore,
    UrlFetcher,
)
from server.rest.schemas import (
    ErrorBody,
    ImageFromUri,
    ImageUploaded,
    ModelRow,
    SegmentRequest,
    SegmentResponse,
)
from server.rest.service import RestError, SegmentService
from workbench.context import AppContext
from workbench.lanes import Deadline
from workbench.limits import Limits

log = logging.getLogger("samwb.rest")
API_TITLE = "Segment Anything Workbench API"
SEGMENT_SCOPE = "segment"
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or unknown API key"},
    403: {"model": ErrorBody, "description": "the key lacks the scope"},
    404: {"model": ErrorBody, "description": "no such image or file for this key"},
    413: {"model": ErrorBody, "description": "body or image over the limit"},
    422: {"model": ErrorBody, "description": "invalid request; error.field names the field"},
    429: {"model": ErrorBody, "description": "rate limited; see Retry-After"},
    503: {"model": ErrorBody, "description": "busy (see Retry-After) or model unavailable"},
    504: {"model": ErrorBody, "description": "the request ran past its deadline"},
}
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
              406: "not_acceptable", 415: "unsupported_media_type"}
MAX_LISTED_ERRORS = 3


def build_security(config: Any) -> Any:
    """The app's ``RestSecurity`` (keys, scopes, limits) from its config."""
    from server.security.auth import RestSecurity

    return RestSecurity.from_config(config)


def build_service(ctx: AppContext) -> SegmentService:
    config = ctx.config
    policy = FetchPolicy(hosts=tuple(h.strip().rstrip(".").lower()
                                     for h in config.url_fetch_hosts if h.strip()),
                         allow_private=config.url_fetch_allow_private,
                         max_bytes=config.upload_bytes,
                         timeout_s=config.url_fetch_timeout_s)
    store = ImageStore() if ctx.memory.store_bytes is None else ImageStore(
        max_bytes=ctx.memory.store_bytes,
        per_key_bytes=min(MAX_IMAGE_BYTES_PER_KEY, ctx.memory.store_bytes))
    return SegmentService(ctx, store, UrlFetcher(policy),
                          FileStore(ctx.temp.folder("rest"), reserve=ctx.temp.reserve))


def rest_routes(ctx: AppContext, security: Any) -> list[BaseRoute]:
    """``/healthz``, ``/readyz`` and ``/v1`` (see the module docstring)."""
    service = build_service(ctx)
    v1 = build_v1(service, security)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        state = service.readiness()
        body = {"status": "ready" if state.ready else "not_ready",
                "reasons": list(state.reasons), "models_present": list(state.models_present)}
        return JSONResponse(body, status_code=200 if state.ready else 503)

    return [Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Mount("/v1", app=v1)]


def build_v1(service: SegmentService, security: Any) -> FastAPI:
    """The ``/v1`` application: routes, error handlers, and the jobs router when present."""
    v1 = FastAPI(title=API_TITLE, version="1", docs_url=None, openapi_url="/openapi.json",
                 redoc_url=None, description=__doc__.split("\n\n")[0])
    add_docs(v1, API_TITLE)  # Swagger UI from the app itself, not a CDN
    v1.state.service = service
    config = service.ctx.config
    _document_limits(v1, service.ctx.limits)
    key_dep = Depends(security.require(SEGMENT_SCOPE))

    def deadline(what: str) -> Deadline:
        return Deadline(config.request_timeout_s, what)

    @v1.post("/segment", response_model=SegmentResponse, responses=ERRORS, tags=["segment"])
    def segment(body: SegmentRequest, key: Any = key_dep) -> SegmentResponse:
        """Segment one or more objects on an image given as a data: URI, an allowed URL or the
        ``image_id`` of an uploaded image (the same pixels are never encoded twice)."""
        return service.segment(body, key, image_bytes=None,
                               deadline=deadline("The segment request"))

    @v1.post("/segment/upload", response_model=SegmentResponse, responses=ERRORS,
             tags=["segment"])
    def segment_upload(file: UploadFile = File(description="the image file"),
                       request: str = Form(default="{}", description=(
                           "SegmentRequest as JSON text, without image and image_id")),
                       key: Any = key_dep) -> SegmentResponse:
        """``POST /v1/segment`` with the image as a multipart file part."""
        parsed = _parse_part(request)
        data = _read_upload(file, service.max_image_bytes)
        return service.segment(parsed, key, image_bytes=data,
                               deadline=deadline("The segment request"))

    @v1.post("/images", response_model=ImageUploaded, status_code=201, responses=ERRORS,
             tags=["images"])
    def upload_image(body: ImageFromUri, key: Any = key_dep) -> ImageUploaded:
        """Keep an image (data: URI or allowed URL) for later calls by this key; send its
        ``id`` as ``image_id``."""
        return service.upload(key, image=body.image, image_bytes=None,
                              deadline=deadline("The image upload"))

    @v1.post("/images/upload", response_model=ImageUploaded, status_code=201,
             responses=ERRORS, tags=["images"])
    def upload_image_file(file: UploadFile = File(description="the image file"),
                          key: Any = key_dep) -> ImageUploaded:
        """``POST /v1/images`` with the image as a multipart file part."""
        data = _read_upload(file, service.max_image_bytes)
        return service.upload(key, image=None, image_bytes=data,
                              deadline=deadline("The image upload"))

    @v1.get("/models", response_model=list[ModelRow], responses=ERRORS, tags=["models"])
    def models(key: Any = key_dep) -> list[ModelRow]:
        """The models this server offers, whether their weights are present, and the prompt
        kinds each takes."""
        return service.models()

    @v1.get("/files/{token}", response_class=FileResponse, responses=ERRORS, tags=["segment"])
    def files(token: str, key: Any = Depends(security.require((SEGMENT_SCOPE, "video")))
              ) -> FileResponse:
        """An output file (a PNG of an ``output: "url"`` response, or a video job's file);
        only for the key that made it."""
        stored = service.file(token, key)
        return FileResponse(stored.path, media_type=stored.media_type,
                            headers={"Cache-Control": "private, max-age=300"})

    _include_jobs(v1, service, security)
    _add_error_handlers(v1)
    v1.add_middleware(CatchAll)
    return v1


def _include_jobs(v1: FastAPI, service: SegmentService, security: Any) -> None:
    """``/v1/jobs``; the job workers stop when the app closes (``ctx.on_close``)."""
    from server.rest.jobs import JobManager
    from server.rest.routes_jobs import jobs_router

    timeout = service.ctx.config.request_timeout_s

    def run(job: Any, key: Any, progress: Any, cancelled: Any) -> SegmentResponse:
        return service.segment(job.request, key, image_bytes=None,
                               deadline=Deadline(timeout, "The segment job"),
                               progress=progress, cancelled=cancelled)

    from server.rest.video import KIND as VIDEO
    from server.rest.video import VideoJobs, video_router

    videos = VideoJobs(service)
    manager = JobManager({"segment": run, VIDEO: videos.run}, checks={
        "segment": lambda job, key: service.precheck(job.request, key)},
        on_release={VIDEO: VideoJobs.release})
    service.ctx.on_close(manager.close)
    v1.state.jobs = manager
    v1.include_router(jobs_router(manager, security))
    v1.include_router(video_router(videos, manager, security))


def _document_limits(v1: FastAPI, limits: Limits) -> None:
    """Write the app's ``Limits`` into the OpenAPI document, generated once at build time.

    The schema itself leaves the points of an object unbounded (typed only) so that the one
    use case refuses the excess with the message every entrance gives; the document still tells
    clients (and schemathesis) the bound, as ``maxItems``.
    """
    build = v1.openapi

    def openapi() -> dict[str, Any]:
        if v1.openapi_schema is None:
            schema = build()
            prompt = schema.get("components", {}).get("schemas", {}).get("ObjectPrompt")
            if prompt is not None:
                prompt["properties"]["points"]["maxItems"] = limits.max_points
        return v1.openapi_schema

    v1.openapi = openapi  # type: ignore[method-assign]


def _parse_part(text: str) -> SegmentRequest:
    try:
        return SegmentRequest.model_validate_json(text)
    except ValidationError as exc:
        field, message = describe_errors(exc.errors(), prefix=("request",))
        raise RestError(422, "invalid_request", message, field) from None


def _read_upload(file: UploadFile, limit: int) -> bytes:
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise RestError(413, "payload_too_large", (
            f"The file is larger than the limit of {limit:,} bytes; send a smaller file."),
            "file")
    return data


# --- errors ----------------------------------------------------------------------------------


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


def describe_errors(errors: list[dict], prefix: tuple[str, ...] = ()) -> tuple[str | None, str]:
    """(dotted field of the first error, a message listing the first few) for pydantic errors.

    ``loc`` ("body", "objects", 0, "points") becomes ``objects.0.points``.
    """
    parts = []
    first_field = None
    for error in errors[:MAX_LISTED_ERRORS]:
        loc = [str(p) for p in error.get("loc", ()) if p != "body"]
        field = ".".join([*prefix, *loc]) or None
        if first_field is None:
            first_field = field
        parts.append(f"{field or 'body'}: {_error_text(error)}")
    more = len(errors) - MAX_LISTED_ERRORS
    message = "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
    return first_field, message or "The request is invalid."


def _error_text(error: dict) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field; remove it (see /v1/docs for the fields)"
    if kind == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'syntax')})"
    if kind == "missing":
        return "required"
    text = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if "input" in error and kind not in ("model_attributes_type", "model_type"):
        shown = json.dumps(error["input"], default=str)
        text += f", got {shown[:40] + '...' if len(shown) > 40 else shown}"
    return text


def _add_error_handlers(v1: FastAPI) -> None:
    @v1.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        path = request.url.path
        if content_type.startswith("multipart/") and path.rstrip("/").endswith(
                ("/segment", "/images")):
            return error_response(415, "unsupported_media_type", (
                f"{path} takes JSON; send multipart uploads to {path.rstrip('/')}/upload."))
        field, message = describe_errors(list(exc.errors()))
        return error_response(422, "invalid_request", message, field)

    @v1.exception_handler(RestError)
    async def rest_error(request: Request, exc: RestError) -> JSONResponse:
        headers = ({"Retry-After": str(int(exc.retry_after_s))}
                   if exc.retry_after_s is not None else None)
        return error_response(exc.status, exc.code, exc.message, exc.field, headers)

    try:
        from server.security.auth import AuthError
    except ImportError:
        AuthError = None  # noqa: N806
    if AuthError is not None:
        @v1.exception_handler(AuthError)
        async def auth_error(request: Request, exc: Any) -> JSONResponse:
            return error_response(exc.status, exc.code, exc.message, None, exc.headers)

    @v1.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, BodyTooLarge):  # FastAPI turns any body error into 400
            return error_response(413, "payload_too_large", (
                f"The request body is larger than the limit of "
                f"{request.app.state.service.ctx.config.body_limit:,} bytes. "
                "Send a smaller image, or upload it once with POST /v1/images/upload."))
        if isinstance(exc.__cause__, StorageFull):  # a chunked upload past the temp bound
            return error_response(507, "storage_full", str(exc.__cause__))
        code = HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "The request failed."
        if exc.status_code == 404:
            message = (f"No route {request.url.path}; see /v1/docs for the API's routes.")
        return error_response(exc.status_code, code, message, None,
                              dict(exc.headers) if exc.headers else None)


class CatchAll:
    """Any exception no handler took becomes 500 "internal" (ErrorBody), logged once here.

    Why not an exception handler for ``Exception``: Starlette runs that one in its outermost
    middleware and re-raises afterwards, so the traceback would also travel up through Gradio's
    app and be logged again by the server.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except (BodyTooLarge, StorageFull):
            raise  # the guard middleware outside answers 413 / 507
        except Exception:
            log.exception("REST %s %s failed", scope.get("method"), scope.get("path"))
            if started:
                return
            response = error_response(500, "internal", (
                "An unexpected error happened on the server (it is logged there); the server "
                "is still running. Try again."))
            await response(scope, receive, send)
