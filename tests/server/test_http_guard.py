"""The HTTP guard in front of the running app (127.0.0.1): body limits, security headers,
malformed Range headers and session ids, analytics off. Requests go through httpx and, where a
client would refuse to send them, through a raw socket."""

from __future__ import annotations

import io
import json
import os

import httpx
import pytest
from app_harness import running_app
from http_raw import raw_request
from PIL import Image

from workbench.config import AppConfig

LIMIT = 1_000_000 + (1 << 20)  # max_file_size 1mb + the multipart envelope allowance
CLICK_RATE, CLICK_BURST = 0.05, 5  # the click route's per-address bucket: a token per 20 s


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = AppConfig(models=("grabcut",), default_model="grabcut", max_file_size="1mb",
                       temp_dir=tmp_path_factory.mktemp("temp-parent"),
                       click_rate_per_s=CLICK_RATE, click_burst=CLICK_BURST)
    with running_app(config) as running:
        yield running


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(url: str, data: bytes, name: str = "red.png") -> str:
    response = httpx.post(url + "gradio_api/upload", files={"files": (name, data, "image/png")})
    assert response.status_code == 200, response.text
    return response.json()[0]


def test_the_body_limit_follows_the_upload_limit(server):
    assert server.ctx.config.body_limit == LIMIT


def test_a_declared_oversized_body_is_refused_before_it_is_read(server):
    head = (b"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 524288000\r\n\r\n")  # 500 MiB announced, 1 KB sent
    response = raw_request(server.url, head + b"x" * 1024)
    assert response.status == 413
    payload = json.loads(response.body)
    assert payload["error"]["code"] == "payload_too_large" and "limit" in payload["detail"]


def test_a_chunked_body_is_cut_off_at_the_limit(server):
    def chunks():
        yield b'--b\r\nContent-Disposition: form-data; name="field"\r\n\r\n'
        for _ in range(40):  # 4 MB of a field without a file name, more than the limit
            yield b"x" * 100_000
        yield b"\r\n--b--\r\n"

    response = httpx.post(server.url + "gradio_api/upload", content=chunks(),
                          headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("route", ["v1/segment", "v1/images"])
def test_a_chunked_json_body_to_the_rest_api_is_413_not_400(server, route):
    """FastAPI turns any error while reading a JSON body into 400; the limit must still read
    as 413 with its own message."""
    def chunks():
        yield b'{"image": "data:image/png;base64,'
        for _ in range(40):  # 4 MB, more than the limit, without a Content-Length
            yield b"A" * 100_000
        yield b'"}'

    response = httpx.post(server.url + route, content=chunks(),
                          headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_json_body_over_the_limit_is_refused_on_every_route(server):
    body = b'{"data": ["' + b"a" * (LIMIT + 10) + b'"], "fn_index": 0, "session_hash": "abc"}'
    for route in ("gradio_api/queue/join", "gradio_api/run/predict", "gradio_api/info"):
        response = httpx.post(server.url + route, content=body,
                              headers={"content-type": "application/json"})
        assert response.status_code == 413, route


def test_a_body_under_the_limit_still_uploads(server):
    path = upload(server.url, png_bytes())
    assert os.path.isfile(path)


def test_the_launched_apps_idle_queue_polls_calmly(server):
    """``app.launch`` applies ``server.queue_polling`` (Gradio's 1 ms idle poll woke the idle
    server about 1,100 times a second)."""
    from server.queue_polling import FREE_POLL_S, PROGRESS_POLL_S

    queue = server.demo._queue
    assert queue.sleep_when_free == FREE_POLL_S
    assert queue.progress_update_sleep_when_free == PROGRESS_POLL_S


@pytest.mark.parametrize("path", ["", "gradio_api/info", "gradio_api/config"])
def test_pages_and_routes_carry_security_headers(server, path):
    response = httpx.get(server.url + path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "frame-ancestors 'self'"
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_served_files_cannot_run_scripts(server):
    path = upload(server.url, b"<html><script>alert(1)</script></html>", "page.html")
    response = httpx.get(server.url + f"gradio_api/file={path}")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_single_range_is_served_and_a_multi_range_is_refused(server):
    data = png_bytes()
    path = upload(server.url, data)
    url = server.url + f"gradio_api/file={path}"
    single = httpx.get(url, headers={"range": "bytes=0-9"})
    assert single.status_code == 206 and single.content == data[:10]
    for header in ("bytes=0-1,4-5", "bytes=abc", "items=0-1", "bytes=0-1, 3-4", "bytes=5-2"):
        response = httpx.get(url, headers={"range": header})
        assert response.status_code == 416, header
        assert response.json()["error"]["code"] == "bad_range"


@pytest.mark.parametrize("session_hash", ["", None, 5, "a" * 500, "../x", "a b"])
def test_a_malformed_session_hash_on_queue_join_is_a_400(server, session_hash):
    body = {"data": [None, "grabcut", "{}"], "fn_index": 0, "session_hash": session_hash}
    response = httpx.post(server.url + "gradio_api/queue/join", json=body)
    assert 400 <= response.status_code < 500
    if session_hash is not None:  # None is Gradio's own 400/422
        assert response.json()["error"]["code"] == "bad_session_hash"


def test_an_empty_session_hash_on_queue_data_is_a_400(server):
    response = httpx.get(server.url + "gradio_api/queue/data", params={"session_hash": ""})
    assert response.status_code == 400


def test_a_malformed_content_length_is_a_400(server):
    response = raw_request(server.url, b"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                       b"Content-Length: 12abc\r\n\r\n")
    assert 400 <= response.status < 500


def test_analytics_are_off_unless_asked_for(server):
    assert os.environ.get("GRADIO_ANALYTICS_ENABLED") == "False"
    assert server.demo.analytics_enabled is False


def test_a_valid_queue_join_still_works(server):
    from gradio_client import Client

    models = Client(server.url, verbose=False).predict(api_name="/models")
    assert [row["model_id"] for row in models] == ["grabcut"]


def segment_fn_index(url: str) -> int:
    config = httpx.get(url + "config").json()
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == "segment")


@pytest.mark.parametrize("path", ["/etc/passwd", "../../etc/hosts", "http://127.0.0.1:1/x.png"])
def test_a_file_reference_outside_the_uploads_is_refused_with_a_reason(server, path):
    body = {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, "grabcut", "{}"],
            "fn_index": segment_fn_index(server.url), "session_hash": "visitor1"}
    response = httpx.post(server.url + "gradio_api/queue/join", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "file_not_uploaded"
    assert "Upload it first" in response.json()["detail"]


def test_an_uploaded_file_reference_is_accepted(server):
    path = upload(server.url, png_bytes())
    body = {"data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, "grabcut",
                     '{"box": [2, 2, 30, 20]}'],
            "fn_index": segment_fn_index(server.url), "session_hash": "visitor2"}
    response = httpx.post(server.url + "gradio_api/queue/join", json=body)
    assert response.status_code == 200 and response.json()["event_id"]


def test_an_unknown_session_on_queue_data_leaves_no_traceback(server, caplog):
    import logging

    with caplog.at_level(logging.WARNING):
        with httpx.stream("GET", server.url + "gradio_api/queue/data",
                          params={"session_hash": "nosuchsession"}, timeout=20) as stream:
            lines = [line for line in stream.iter_lines() if line.strip()]
    assert any("session_not_found" in line for line in lines)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "ended early" in caplog.text


# --- only the queue's own refusal is "busy" (the guard alone, on an in-process app) -----------


def guarded_app(status: int, body: dict, headers: dict | None = None):
    """A Starlette app behind the guard whose every route answers ``status`` with ``body``."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from server.middleware import GuardMiddleware, GuardSettings

    async def answer(request):
        return JSONResponse(body, status_code=status, headers=headers)

    routes = [Route("/gradio_api/queue/join", answer, methods=["POST"]),
              Route("/v1/segment", answer, methods=["POST"]), Route("/readyz", answer)]
    settings = GuardSettings(max_body_bytes=1 << 20, frame_ancestors="'self'", retry_after_s=5)
    return Starlette(routes=routes, middleware=[Middleware(GuardMiddleware, settings=settings)])


def test_gradios_full_queue_becomes_busy_with_retry_after():
    from starlette.testclient import TestClient

    app = guarded_app(503, {"detail": "Queue is full. Max size is 4 and size is 4."})
    response = TestClient(app).post("/gradio_api/queue/join",
                                    json={"session_hash": "abc", "data": []})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "busy" in response.text and "queue is full" in response.text


@pytest.mark.parametrize(("path", "method"), [("/v1/segment", "post"), ("/readyz", "get"),
                                              ("/gradio_api/queue/join", "post")])
def test_other_503s_keep_their_own_code_and_message(path, method):
    from starlette.testclient import TestClient

    body = {"code": "model_unavailable", "message": "SAM 2.1 Tiny is not downloaded."}
    client = TestClient(guarded_app(503, body))
    kwargs = {"json": {"session_hash": "abc", "data": []}} if method == "post" else {}
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == 503
    assert response.json() == body
    assert "retry-after" not in response.headers


def test_many_sessions_from_one_address_share_one_click_budget(server):
    """Issue 19 item 1: a client that opens many sessions still has one address. Raw requests
    on new connections, each with another (unknown) page token: the first ``CLICK_BURST`` are
    answered by the route (403: no such page), the next gets 429 with Retry-After before its
    body is read."""
    statuses, last = [], None
    for i in range(CLICK_BURST + 2):
        payload = json.dumps({"token": f"{i:032d}", "gen": 1, "x": 1, "y": 1, "label": 1,
                              "seq": 1}).encode()
        last = raw_request(server.url, b"POST /samwb/segment/hover HTTP/1.1\r\n"
                           b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
                           b"Connection: close\r\nContent-Length: "
                           + str(len(payload)).encode() + b"\r\n\r\n" + payload, timeout=10)
        statuses.append(last.status)
    assert statuses == [403] * CLICK_BURST + [429, 429]
    assert int(last.headers["retry-after"]) >= 1
    error = json.loads(last.body)["error"]
    assert error["code"] == "rate_limited" and "Retry in" in error["message"]
