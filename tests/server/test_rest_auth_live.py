"""Keys, scopes and limits of the REST API through the running app on 127.0.0.1 (not a stand-in
app): every bearer variant, the no-key server, per-key rate limits, per-address failure limits,
a job cancelled over HTTP, and the page behind Gradio's own login."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import httpx
import pytest
from app_harness import running_app
from http_raw import raw_request
from PIL import Image

from server.security.keys import new_key, write_key_file
from workbench.config import AppConfig


def keys(tmp_path: Path, *scope_sets: frozenset[str]) -> tuple[Path, list[str]]:
    tokens, entries = [], []
    for n, scopes in enumerate(scope_sets):
        token, entry = new_key(f"key{n}", scopes, [e.key_id for e in entries])
        tokens.append(token)
        entries.append(entry)
    path = tmp_path / "keys.json"
    write_key_file(path, entries)
    return path, tokens


def config(tmp_path: Path, **changes) -> AppConfig:
    return AppConfig(models=("grabcut",), default_model="grabcut", temp_dir=tmp_path / "temp",
                     **changes)


def data_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 160, 40)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("keyed")
    path, tokens = keys(tmp, frozenset({"segment"}), frozenset({"jobs", "segment"}))
    with running_app(config(tmp, api_keys_file=path, rate_limit_per_min=0,
                            auth_failures_per_min=0)) as running:
        yield running, tokens


@pytest.mark.parametrize("header", [
    # (Spaces around the whole value are not the app's to see: HTTP strips them.)
    None, "", "Bearer", "bearer {key}", "BEARER {key}", "Bearer  {key}",
    "Bearer\t{key}", "Basic {key}", "Bearer " + "a" * 10_000, "{key}",
    "Bearer {key}x", "Bearer samwb_00000000_" + "A" * 43,
])
def test_every_malformed_or_wrong_bearer_is_a_401(keyed, header):
    running, tokens = keyed
    line = b"" if header is None else (
        b"Authorization: " + header.format(key=tokens[0]).encode() + b"\r\n")
    response = raw_request(running.url, b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                         b"Connection: close\r\n" + line + b"\r\n")
    assert response.status == 401, header
    assert json.loads(response.body)["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_non_ascii_token_is_a_401_not_a_500(keyed):
    running, tokens = keyed
    head = ("GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            "Authorization: Bearer ").encode() + tokens[0][:-2].encode() + "é€".encode() + \
        b"\r\n\r\n"
    assert raw_request(running.url, head).status == 401


def test_a_key_in_the_query_string_is_refused(keyed):
    running, tokens = keyed
    for name in ("api_key", "token", "access_token"):
        response = httpx.get(running.url + "v1/models", params={name: tokens[0]})
        assert response.status_code == 401
        assert "Authorization header" in response.json()["error"]["message"]


def test_a_valid_key_works_and_scopes_are_enforced(keyed):
    running, (segment_only, both) = keyed
    ok = httpx.get(running.url + "v1/models", headers={"authorization": f"Bearer {segment_only}"})
    assert ok.status_code == 200 and [m["id"] for m in ok.json()] == ["grabcut"]
    body = {"kind": "segment",
            "request": {"image": data_uri(), "objects": [{"box": [5, 5, 50, 40]}]}}
    refused = httpx.post(running.url + "v1/jobs", json=body,
                         headers={"authorization": f"Bearer {segment_only}"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    job = httpx.post(running.url + "v1/jobs", json=body,
                     headers={"authorization": f"Bearer {both}"})
    assert job.status_code == 202


def test_a_job_can_be_cancelled_over_http(keyed):
    running, (_, both) = keyed
    auth = {"authorization": f"Bearer {both}"}
    lane = running.ctx.api_lane
    with lane.admit():  # the job waits behind this slot, so it is still unfinished when cancelled
        body = {"kind": "segment", "request": {"image": data_uri(),
                                               "objects": [{"box": [5, 5, 50, 40]}]}}
        job = httpx.post(running.url + "v1/jobs", json=body, headers=auth).json()
        cancelled = httpx.delete(running.url + f"v1/jobs/{job['id']}", headers=auth)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "canceled"
    state = httpx.get(running.url + f"v1/jobs/{job['id']}", headers=auth).json()
    assert state["status"] == "canceled"


def test_without_keys_every_call_says_how_to_create_one(tmp_path):
    with running_app(config(tmp_path)) as running:
        response = httpx.get(running.url + "v1/models")
        assert response.status_code == 401
        assert "python -m server.security.keys create" in response.json()["error"]["message"]
        assert httpx.get(running.url + "healthz").status_code == 200  # liveness needs no key


def test_open_local_is_refused_on_a_public_address(tmp_path):
    with pytest.raises(ValueError, match="cannot be combined with --host 0.0.0.0"):
        config(tmp_path, host="0.0.0.0", api_open_local=True)


def test_a_key_over_its_rate_gets_429_with_retry_after(tmp_path):
    path, (token,) = keys(tmp_path, frozenset({"segment"}))
    with running_app(config(tmp_path, api_keys_file=path, rate_limit_per_min=3)) as running:
        auth = {"authorization": f"Bearer {token}"}
        codes = [httpx.get(running.url + "v1/models", headers=auth).status_code
                 for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = httpx.get(running.url + "v1/models", headers=auth)
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"]["code"] == "rate_limited"


def test_guessing_keys_blocks_the_address(tmp_path):
    path, (token,) = keys(tmp_path, frozenset({"segment"}))
    with running_app(config(tmp_path, api_keys_file=path, auth_failures_per_min=5)) as running:
        for _ in range(5):
            wrong = httpx.get(running.url + "v1/models",
                              headers={"authorization": "Bearer samwb_00000000_" + "B" * 43})
            assert wrong.status_code == 401
        blocked = httpx.get(running.url + "v1/models",
                            headers={"authorization": f"Bearer {token}"})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1


def test_the_page_can_be_put_behind_gradios_login(tmp_path):
    with running_app(config(tmp_path, ui_auth=(("ann", "s3cret-pass"),))) as running:
        page = httpx.get(running.url + "config")
        assert page.status_code == 401
        client = httpx.Client(base_url=running.url)
        login = client.post("login", data={"username": "ann", "password": "s3cret-pass"})
        assert login.status_code == 200
        assert client.get("config").status_code == 200
        assert httpx.get(running.url + "healthz").status_code == 200  # probes need no login
