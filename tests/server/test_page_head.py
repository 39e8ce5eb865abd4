"""The early page scripts (``server.page_head`` with ``ui.page_head``): inserted first in the
``<head>`` of Gradio's page and nowhere else, with a right ``Content-Length``; the app's own
page carries them. What they do in a browser: ``tests/browser/test_browser_segment.py``."""

from __future__ import annotations

import gzip

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from server.page_head import PageHeadMiddleware, insert_after_head
from ui.page_head import early_head_html

SNIPPET = "<script>window.early = 1;</script>"
PAGE = ('<!doctype html><html><HEAD lang="en"><meta charset="utf-8"><title>x</title></HEAD>'
        '<body><gradio-app></gradio-app></body></html>')


def make_client(max_page_bytes: int = 1 << 20) -> TestClient:
    async def page(request):
        return HTMLResponse(PAGE)

    async def other_html(request):
        return HTMLResponse("<html><head></head><body>docs</body></html>")

    async def text(request):
        return PlainTextResponse(PAGE)  # the page's text, but not HTML

    async def zipped(request):
        return Response(gzip.compress(PAGE.encode()), media_type="text/html",
                        headers={"content-encoding": "gzip"})

    async def streamed(request):
        async def chunks():
            for part in (PAGE[:20], PAGE[20:50], PAGE[50:]):
                yield part.encode()
        return StreamingResponse(chunks(), media_type="text/html")

    async def missing(request):
        return HTMLResponse(PAGE, status_code=404)

    async def user_file(request):
        return HTMLResponse(PAGE)

    routes = [Route("/", page), Route("/docs", other_html), Route("/text", text),
              Route("/zipped", zipped), Route("/streamed", streamed),
              Route("/missing", missing), Route("/gradio_api/file=x.html", user_file)]
    app = Starlette(routes=routes, middleware=[
        Middleware(PageHeadMiddleware, snippet=SNIPPET, max_page_bytes=max_page_bytes)])
    return TestClient(app)


def test_the_snippet_goes_first_into_the_pages_head_with_a_right_length():
    answer = make_client().get("/")
    assert answer.status_code == 200
    assert answer.text.startswith('<!doctype html><html><HEAD lang="en">' + SNIPPET + "<meta")
    assert answer.text.replace(SNIPPET, "") == PAGE
    assert int(answer.headers["content-length"]) == len(answer.content)


def test_a_page_sent_in_pieces_gets_it_too():
    answer = make_client().get("/streamed")
    assert answer.text == PAGE.replace('<HEAD lang="en">', '<HEAD lang="en">' + SNIPPET)


@pytest.mark.parametrize("path", ["/docs", "/text", "/missing", "/gradio_api/file=x.html"])
def test_every_other_answer_passes_unchanged(path):
    answer = make_client().get(path)
    assert SNIPPET not in answer.text
    assert int(answer.headers["content-length"]) == len(answer.content)


def test_a_compressed_page_and_a_page_past_the_bound_pass_unchanged():
    zipped = make_client().get("/zipped")  # the test client inflates it on the way in
    assert zipped.text == PAGE
    too_large = make_client(max_page_bytes=30).get("/streamed")
    assert too_large.text == PAGE


def test_a_post_and_a_head_request_are_left_alone():
    client = make_client()
    assert client.head("/").headers["content-length"] == str(len(PAGE))
    assert client.post("/").status_code == 405


def test_insert_after_head_needs_gradios_page_and_a_head_tag():
    assert insert_after_head(b"<html><head></head></html>", b"X") is None  # not Gradio's
    assert insert_after_head(b"<html><body><gradio-app></body></html>", b"X") is None
    assert insert_after_head(b"<header><head><gradio-app>", b"X") == b"<header><head>X<gradio-app>"


def test_the_early_scripts_are_inline_scripts_of_their_files():
    html = early_head_html()
    assert html.startswith("<script>") and html.endswith("</script>")
    assert "window.requestAnimationFrame = function" in html
    assert html.count("<script>") == html.count("</script>") == 1


def test_the_apps_page_carries_them(sam1_small, sam2_small, tmp_path):
    """The real app (``app.launch``): its page has the scripts right after ``<head>``, before
    any of Gradio's own scripts."""
    import httpx
    from app_harness import app_config, running_app

    with running_app(app_config(sam1_small, sam2_small, tmp_path)) as running:
        page = httpx.get(running.url, timeout=30).text
    head = page.index("<head>") + len("<head>")
    assert page[head:head + len(early_head_html())] == early_head_html()
    assert page.index("window.gradio_config") > head + len(early_head_html())
