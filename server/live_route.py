"""HTTP face of ``workbench.segment.live``: the canvas's fast path beside Gradio's queue.

Routes (registered in ``app.launch`` before Gradio's own, behind the same guard middleware)::

    POST /samwb/segment/point   {"token", "gen", "x", "y", "label": 1|0}
    POST /samwb/segment/box     {"token", "gen", "box": [x0, y0, x1, y1]}
    POST /samwb/segment/hover   {"token", "gen", "x", "y", "label", "seq"}
    POST /samwb/segment/paint   {"token", "gen", "points": [[x, y], ...], "radius", "mode"}
    POST /samwb/segment/polygon {"token", "gen", "rings": [[[x, y], ...], ...]}
    POST /samwb/segment/outline {"token", "gen"}     the active mask's rings to edit
    GET  /samwb/segment/image/{token}/{gen}.jpg   the displayed image (JPEG, display size)
    GET  /samwb/segment/file/{token}/{gen}/{name}[?crop=1]   a download, written on request
                                                  (``workbench.segment.downloads``)

Answers are JSON (see ``LiveSegment``); refusals are ``{"ok": false, "error": {"code",
"title", "message"}}`` with 400/403/404/409/413/422/429/503 (429 and 503 carry
``Retry-After``). 429: the address passed ``--click-rate`` operations a second (a token bucket
per address, ``click_limiter``), whatever the number of its sessions. The
token is the page's secret (``Session.token``), so no one can decode another visitor's image
by guessing an id. Bodies above ``MAX_BODY_BYTES`` (``EDIT_BODY_BYTES`` for a stroke or a
polygon, which carry up to a few thousand points) are refused before parsing.
"""

from __future__ import annotations

import io
import json
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.security.rate_limits import RateLimiter, address_key
from workbench.context import AppContext
from workbench.segment.live import LiveError, LiveSegment
from workbench.segment.values import LIVE_ROUTE, preview_of

MAX_BODY_BYTES = 4096  # a click is ~150 bytes
EDIT_BODY_BYTES = 96 * 1024  # 4,000 vertices of "[1234.56,789.01]," are ~70 KB
NO_STORE = {"Cache-Control": "no-store"}


def _error(exc: LiveError) -> JSONResponse:
    headers = dict(NO_STORE)
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(int(exc.retry_after_s))
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def _json_body(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise LiveError(413, "too_large", f"This live request is at most {limit} bytes.",
                        "Request too large")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise LiveError(413, "too_large", f"This live request is at most {limit} bytes.",
                            "Request too large")
    try:
        return json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise LiveError(400, "bad_request", "The request is not valid JSON.") from exc


def _jpeg(session: Any) -> bytes:
    """The displayed image as JPEG, encoded once per image and kept on the session."""
    picture = session.picture
    cached = getattr(session, "display_jpeg", None)
    if cached is not None and cached[0] == picture.digest:
        return cached[1]
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(preview_of(session).base).save(buffer, format="JPEG", quality=90)
    session.display_jpeg = (picture.digest, buffer.getvalue())
    return session.display_jpeg[1]


def click_limiter(config: Any) -> RateLimiter:
    """The per-address token bucket of the click route (``AppConfig.click_rate_per_s`` and
    ``click_burst``): the lanes bound each session, this bounds an address however many
    sessions it opens."""
    return RateLimiter.per_second(max(0.0, float(config.click_rate_per_s)),
                                  max(1, int(config.click_burst)))


def _check_rate(limiter: RateLimiter, request: Request) -> None:
    wait = limiter.take(address_key(request.client.host if request.client else None))
    if wait is not None:
        rate = limiter.per_min / 60
        raise LiveError(429, "rate_limited",
                        f"This address sent more than {rate:g} clicks, boxes, hovers or edits a "
                        f"second (bursts of {limiter.burst:g}). Retry in {wait} s.",
                        "Too many requests", retry_after_s=wait)


def live_routes(ctx: AppContext) -> list[Route]:
    """The Starlette routes of the live canvas for ``FastAPI(routes=...)``."""
    live = LiveSegment(ctx)
    limiter = click_limiter(ctx.config)

    async def operate(request: Request) -> Response:
        try:
            _check_rate(limiter, request)  # before the body is read: a flood costs little
            op = request.path_params["op"]
            body = await _json_body(request, EDIT_BODY_BYTES if op in ("paint", "polygon")
                                    else MAX_BODY_BYTES)
            answer, later = await run_in_threadpool(live.handle_then, op, body)
        except LiveError as exc:
            return _error(exc)
        # ``later`` (a click's other candidates) runs once the answer is sent
        return JSONResponse(answer, headers=NO_STORE, background=BackgroundTask(later))

    async def image(request: Request) -> Response:
        try:
            session = live.session(request.path_params["token"])
            if session.picture is None or str(session.generation) != request.path_params["gen"]:
                raise LiveError(404, "not_found", "This image is not shown any more.",
                                "Image changed")
            data = await run_in_threadpool(_jpeg, session)
        except LiveError as exc:
            return _error(exc)
        return Response(data, media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600"})

    async def download(request: Request) -> Response:
        from workbench.errors import UserError
        from workbench.segment.downloads import build_file

        name = request.path_params["name"]
        try:
            session = live.session(request.path_params["token"])
            if str(session.generation) != request.path_params["gen"]:
                raise LiveError(404, "not_found", "The image changed; use the new links.",
                                "Image changed")
            crop = request.query_params.get("crop") == "1"
            try:
                data, media = await run_in_threadpool(build_file, session, name, crop)
            except UserError as exc:
                raise LiveError(404, "not_found", str(exc), exc.title) from exc
        except LiveError as exc:
            return _error(exc)
        return Response(data, media_type=media, headers={
            **NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'})

    return [
        Route(LIVE_ROUTE + "/image/{token}/{gen}.jpg", image, methods=["GET"]),
        Route(LIVE_ROUTE + "/file/{token}/{gen}/{name}", download, methods=["GET"]),
        Route(LIVE_ROUTE + "/{op}", operate, methods=["POST"]),
    ]
