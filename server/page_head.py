"""An ASGI middleware that puts a snippet first in the ``<head>`` of the app's page.

Why: a script that must run before any of Gradio's own modules (``ui.page_head``) cannot come
through Gradio's ``head=``, which Gradio adds from its own code once the app has mounted. The
page itself is Gradio's template, so the snippet goes in on the way out.

Only Gradio's page is changed: a 200 answer to a GET, ``text/html``, not compressed, whose body
holds ``<gradio-app`` and a ``<head>`` tag. Every other answer (files, API calls, a user's HTML
file under ``/file=``) passes unchanged, byte for byte. An HTML answer is held until its body
has arrived, and one that comes in pieces past ``max_page_bytes`` is sent on as it comes,
unchanged, so nothing long or large is held.
A HEAD request is answered as Gradio answers it (its ``Content-Length`` is the page's without
the snippet; browsers never use it).
"""

from __future__ import annotations

import re
from typing import Any

from server.middleware import FILE_ROUTE_MARK, ASGIApp, Message, Receive, Scope, Send

HEAD_TAG = re.compile(rb"<head(?:\s[^>]*)?>", re.IGNORECASE)
PAGE_MARK = b"<gradio-app"
MAX_PAGE_BYTES = 4 * 1024 * 1024  # Gradio's page is ~20 KB plus the app's inline config


def insert_after_head(page: bytes, snippet: bytes) -> bytes | None:
    """``page`` with ``snippet`` right after its first ``<head ...>`` tag; None when the page
    is not Gradio's (no ``<gradio-app``) or has no ``<head>`` tag."""
    if PAGE_MARK not in page:
        return None
    tag = HEAD_TAG.search(page)
    if tag is None:
        return None
    return page[:tag.end()] + snippet + page[tag.end():]


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _may_be_page(start: Message) -> bool:
    """Whether a response that begins with ``start`` may be Gradio's page (module docstring)."""
    headers = start.get("headers", [])
    kind = (_header(headers, b"content-type") or b"").split(b";")[0].strip().lower()
    encoding = (_header(headers, b"content-encoding") or b"identity").strip().lower()
    return start.get("status") == 200 and kind == b"text/html" and encoding == b"identity"


class PageHeadMiddleware:
    """Puts ``snippet`` (HTML text) first in the ``<head>`` of Gradio's page (module docstring)."""

    def __init__(self, app: ASGIApp, snippet: str,
                 max_page_bytes: int = MAX_PAGE_BYTES) -> None:
        self.app = app
        self.snippet = snippet.encode("utf-8")
        self.max_page_bytes = max_page_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope.get("method") != "GET" or not self.snippet
                or FILE_ROUTE_MARK in scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, self._inserting(send))

    def _inserting(self, send: Send) -> Send:
        held: dict[str, Any] = {"start": None, "parts": [], "size": 0}

        async def release(body: bytes, more_body: bool) -> None:
            start, held["start"], held["parts"] = held["start"], None, []
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": more_body})

        async def inserting(message: Message) -> None:
            if message["type"] == "http.response.start" and _may_be_page(message):
                held["start"] = message  # sent with the body, once it is known
                return
            if held["start"] is None or message["type"] != "http.response.body":
                await send(message)
                return
            body = message.get("body", b"")
            held["parts"].append(body)
            held["size"] += len(body)
            more = bool(message.get("more_body", False))
            if more and held["size"] <= self.max_page_bytes:
                return
            whole = b"".join(held["parts"])
            if more:  # too large to be the page: send it on as it comes
                await release(whole, True)
                return
            changed = insert_after_head(whole, self.snippet)
            if changed is not None:
                headers = [(k, v) for k, v in held["start"].get("headers", [])
                           if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(changed)).encode()))
                held["start"] = {**held["start"], "headers": headers}
                whole = changed
            await release(whole, False)

        return inserting
