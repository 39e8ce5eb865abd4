"""An ASGI middleware in front of every route (Gradio's own and ours).

Why a middleware: Gradio parses request bodies, ``Range`` headers and queue messages itself, so
the checks that must happen *before* that (a 500 MiB multipart field, a multi-range header that
makes Gradio answer 500, an empty ``session_hash``) can only live in front of it. It also adds
security headers to every response and turns Gradio's bare "Queue is full" 503 into a message
with ``Retry-After``.

Errors are JSON ``{"error": {"code": <code>, "message": <message>}, "detail": <message>}``: the
REST API's error shape, plus FastAPI's ``detail`` key so that ``gradio_client`` shows the message.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

log = logging.getLogger("samwb.http")
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SINGLE_RANGE = re.compile(r"bytes=(\d+-\d*|-\d+)")
SESSION_HASH = re.compile(r"[A-Za-z0-9_\-]{1,128}")
FILE_ROUTE_MARK = "/file="
QUEUE_JOIN_SUFFIX = "/queue/join"
UPLOAD_SUFFIX = "/upload"  # Gradio's /gradio_api/upload; REST's /v1/images/upload, /segment/upload
QUEUE_FULL_MARK = b"Queue is full"  # the detail of Gradio's own queue refusal
CALL_ROUTE_MARK = "/call/"
REFUSAL_STATUSES = frozenset({413, 429, 503, 504, 507})  # counted for /metrics
MCP_ROUTE = "/gradio_api/mcp"  # Gradio's MCP transport: files arrive base64 inside JSON
# What a served user file may do when opened directly: nothing active (no script, no frames).
FILE_POLICY = "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src " \
              "'unsafe-inline'; sandbox"


@dataclass(frozen=True)
class GuardSettings:
    """What the middleware enforces.

    Attributes:
        max_body_bytes: larger request bodies get 413 (checked from Content-Length before
            reading, and counted while streaming when there is none).
        frame_ancestors: CSP ``frame-ancestors`` sources for pages ("'self'" by default; a
            Hugging Face Space must allow huggingface.co, which embeds it).
        retry_after_s: the ``Retry-After`` sent with 503 when the queue is full.
        temp: the run's temp folder (``workbench.temp_root.TempRoot``, or anything with
            ``reserve(nbytes, what)``): an upload that would pass its byte bound gets 507
            before it is read, instead of being stored and deleted a minute later.
        mcp_max_body_bytes: the body limit under ``/gradio_api/mcp`` (None: ``max_body_bytes``);
            ``AppConfig.mcp_body_limit``, larger because files travel there as base64.
        on_refusal: called with (status, path) for every answer with a status in
            ``REFUSAL_STATUSES`` (413, 429, 503, 504, 507), ours or Gradio's (``/metrics``
            counts them); None: not counted.
    """

    max_body_bytes: int
    frame_ancestors: str = "'self'"
    retry_after_s: int = 5
    temp: Any = None
    mcp_max_body_bytes: int | None = None
    on_refusal: Callable[[int, str], None] | None = None

    def body_limit(self, path: str) -> int:
        """The body limit of a request to ``path``."""
        if self.mcp_max_body_bytes is not None and path.startswith(MCP_ROUTE):
            return self.mcp_max_body_bytes
        return self.max_body_bytes


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes the limit."""


class StorageFull(Exception):
    """Raised from ``receive`` when a streamed upload without a Content-Length (chunked) would
    take the temp folder past its bound; the message is ``TempRoot.reserve``'s."""


RESERVE_STEP = 256 * 1024  # a chunked upload is reserved in the temp folder this much at a time


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _query_values(scope: Scope, key: str) -> list[str]:
    from urllib.parse import parse_qs

    query = scope.get("query_string", b"").decode("latin-1")
    return parse_qs(query, keep_blank_values=True).get(key, [])


def _one_ordered_range(header: str) -> bool:
    """One ``bytes=START-END`` range whose END (when given) is not before its START."""
    match = SINGLE_RANGE.fullmatch(header.strip())
    if match is None:
        return False
    start, _, end = match.group(1).partition("-")
    return not (start and end) or int(start) <= int(end)


def _bad_session_hash(value: Any) -> bool:
    return not isinstance(value, str) or SESSION_HASH.fullmatch(value) is None


def upload_folder() -> Path:
    """Gradio's upload folder, where every file an event may read must be (read as Gradio
    does, from ``GRADIO_TEMP_DIR``, at call time)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def foreign_file(data: Any, allowed: Path, max_nodes: int = 10_000) -> bool:
    """True when ``data`` holds a Gradio FileData whose ``path`` lies outside ``allowed``.

    Gradio refuses such paths itself, but with an empty error message and a traceback in the
    log; refusing here gives the caller a reason. Iterative, with a node budget, so that deep or
    huge payloads cost little (they are refused by Gradio's own validation afterwards).
    """
    stack = [data]
    seen = 0
    while stack and seen < max_nodes:
        node = stack.pop()
        seen += 1
        if isinstance(node, dict):
            path = node.get("path")
            meta = node.get("meta")
            if isinstance(meta, dict) and meta.get("_type") == "gradio.FileData" and \
                    isinstance(path, str) and not _inside(path, allowed):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _inside(path: str, folder: Path) -> bool:
    if "://" in path:
        return False
    try:
        return Path(path).resolve().is_relative_to(folder)
    except (OSError, ValueError, RuntimeError):
        return False


async def send_error(send: Send, status: int, code: str, detail: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"error": {"code": code, "message": detail}, "detail": detail}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *(headers or [])],
    })
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """See the module docstring; ``settings`` is a ``GuardSettings``."""

    def __init__(self, app: ASGIApp, settings: GuardSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.settings.on_refusal is not None:
            send = self._counted(send, scope.get("path", ""))
        refusal = self._refuse_early(scope)
        if refusal is not None:
            await send_error(self._secured(send, scope), *refusal)
            return
        path = scope.get("path", "")
        if scope.get("method") == "POST" and (path.endswith(QUEUE_JOIN_SUFFIX)
                                              or CALL_ROUTE_MARK in path):
            await self._event_call(scope, receive, send)
            return
        await self._guarded(scope, receive, send)

    # --- checks that need no body -------------------------------------------------------------

    def _refuse_early(self, scope: Scope) -> tuple[int, str, str] | None:
        limit = self.settings.body_limit(scope.get("path", ""))
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                return 400, "bad_content_length", "The Content-Length header is not a number."
            if int(length) > limit:
                return 413, "payload_too_large", (
                    f"The request body is {int(length):,} bytes; the limit is {limit:,} bytes. "
                    "Send a smaller file.")
        range_header = _header(scope, b"range")
        if range_header is not None and not _one_ordered_range(range_header):
            return 416, "bad_range", ("Only one byte range of the form 'bytes=START-END' is "
                                      "served; request the file without a Range header or with "
                                      "a single range.")
        for value in _query_values(scope, "session_hash"):
            if _bad_session_hash(value):
                return 400, "bad_session_hash", ("session_hash must be 1-128 letters, digits, "
                                                 "'-' or '_'.")
        if (self.settings.temp is not None and scope.get("method") == "POST"
                and scope.get("path", "").endswith(UPLOAD_SUFFIX)):
            try:  # an upload is stored in the temp folder: refuse it now if it cannot fit
                self.settings.temp.reserve(int(length) if length else 0, "This upload")
            except OSError as exc:
                return 507, "storage_full", str(exc)
        return None

    # --- the body ----------------------------------------------------------------------------

    def _counting(self, receive: Receive, limit: int,
                  reserve: Callable[[int, str], None] | None = None) -> Receive:
        """``receive``, counting the body against ``limit`` and, with ``reserve`` (a chunked
        upload: its size was not known before), against the temp folder's bound as it
        streams, ``RESERVE_STEP`` bytes ahead."""
        seen = 0
        reserved = 0

        async def counted() -> Message:
            nonlocal seen, reserved
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge()
                if reserve is not None and seen > reserved:
                    step = max(seen - reserved, RESERVE_STEP)
                    try:
                        reserve(step, "This upload")
                    except OSError as exc:
                        raise StorageFull(str(exc)) from exc
                    reserved += step
            return message

        return counted

    def _streamed_upload_reserve(self, scope: Scope) -> Callable[[int, str], None] | None:
        """The temp folder's ``reserve`` for an upload whose size is not declared (chunked);
        one with a Content-Length was reserved whole in ``_refuse_early``."""
        if (self.settings.temp is None or scope.get("method") != "POST"
                or not scope.get("path", "").endswith(UPLOAD_SUFFIX)
                or _header(scope, b"content-length") is not None):
            return None
        return self.settings.temp.reserve

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.settings.body_limit(scope.get("path", ""))
        started = False
        secured = self._secured(send, scope)

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await secured(message)

        try:
            await self.app(scope, self._counting(receive, limit,
                                                 self._streamed_upload_reserve(scope)), tracking)
        except BodyTooLarge:
            if not started:
                await send_error(secured, 413, "payload_too_large",
                                 f"The request body is larger than the limit of "
                                 f"{limit:,} bytes. Send a smaller file.")
        except StorageFull as exc:
            if not started:
                await send_error(secured, 507, "storage_full", str(exc))
        except Exception as exc:
            if not started:
                raise
            # Gradio raises after its stream has begun (an unknown session on /queue/data, as
            # after a server restart): the client already has its message; end the stream
            # instead of a traceback in the log.
            log.warning("%s %s ended early: %s", scope.get("method"), scope.get("path"),
                        f"{type(exc).__name__}: {exc}")
            await secured({"type": "http.response.body", "body": b"", "more_body": False})

    async def _event_call(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the JSON body of an event call, refuse a malformed session id or a file
        reference outside the upload folder, then replay the body to Gradio."""
        secured = self._secured(send, scope)
        chunks: list[bytes] = []
        counted = self._counting(receive, self.settings.max_body_bytes)
        try:
            while True:
                message = await counted()
                if message["type"] != "http.request":
                    return  # the client went away
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except BodyTooLarge:
            await send_error(secured, 413, "payload_too_large",
                             f"The request body is larger than the limit of "
                             f"{self.settings.max_body_bytes:,} bytes.")
            return
        body = b"".join(chunks)
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
        is_join = scope["path"].endswith(QUEUE_JOIN_SUFFIX)
        if is_join and isinstance(data, dict) and _bad_session_hash(data.get("session_hash")):
            await send_error(secured, 400, "bad_session_hash",
                             "session_hash must be 1-128 letters, digits, '-' or '_'.")
            return
        if isinstance(data, dict) and foreign_file(data.get("data"), upload_folder()):
            await send_error(secured, 400, "file_not_uploaded", (
                "A file in the request is not one uploaded to this server. Upload it first "
                "(gradio_client's handle_file does this, or POST /gradio_api/upload) and send "
                "the path that the upload returns."))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, self._busy_rewriting(secured))

    def _busy_rewriting(self, send: Send) -> Send:
        """Gradio answers a full queue with a bare 503 ("Queue is full"); give it a message and
        Retry-After. Every other 503 (a stopped queue, a route's own refusal) passes unchanged:
        only a real queue refusal may tell a client to come back later."""
        retry = self.settings.retry_after_s
        state: dict[str, Any] = {"start": None, "body": b""}

        async def rewriting(message: Message) -> None:
            headers = message.get("headers", ())
            if (message["type"] == "http.response.start" and message["status"] == 503
                    and not any(k.lower() == b"retry-after" for k, _ in headers)):
                state["start"] = message  # held until the body says what it is
                return
            if state["start"] is not None and message["type"] == "http.response.body":
                state["body"] += message.get("body", b"")
                if message.get("more_body", False) and len(state["body"]) <= 64 * 1024:
                    return
                if QUEUE_FULL_MARK in state["body"]:
                    await send_error(send, 503, "busy",
                                     f"The server is busy: its queue is full. Retry in about "
                                     f"{retry} s.", [(b"retry-after", str(retry).encode())])
                else:
                    start, body = state["start"], state["body"]
                    state["start"], state["body"] = None, b""
                    await send(start)
                    await send({**message, "body": body})
                return
            await send(message)

        return rewriting

    # --- response headers --------------------------------------------------------------------

    def _counted(self, send: Send, path: str) -> Send:
        on_refusal = self.settings.on_refusal

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start" and message.get(
                    "status") in REFUSAL_STATUSES:
                on_refusal(int(message["status"]), path)
            await send(message)

        return counted

    def _secured(self, send: Send, scope: Scope) -> Send:
        is_file = FILE_ROUTE_MARK in scope.get("path", "")
        policy = FILE_POLICY if is_file else f"frame-ancestors {self.settings.frame_ancestors}"
        added = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"content-security-policy", policy.encode()),
        ]
        if self.settings.frame_ancestors.strip() == "'self'":
            added.append((b"x-frame-options", b"SAMEORIGIN"))
        names = {name for name, _ in added}

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": headers + added}
            await send(message)

        return secured
