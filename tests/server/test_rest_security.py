"""REST security: strict bearer parsing, hashed keys and scopes, the no-key and open-local modes,
the per-key and per-address limiters (with an injected clock), the key CLI, and one end-to-end
pass through a real uvicorn server on 127.0.0.1 (raw bytes for headers httpx refuses)."""

from __future__ import annotations

import contextlib
import json
import stat
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from app_harness import free_port
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from http_raw import raw_request
from starlette.requests import Request

from server.security import keys as keys_cli
from server.security.auth import (
    NO_KEYS_MESSAGE,
    ApiKey,
    AuthError,
    KeyStore,
    RestSecurity,
    parse_bearer,
)
from server.security.keys import KeyFileError, StoredKey, new_key, parse_key_file, write_key_file
from server.security.rate_limits import FailureLimiter, RateLimiter, address_key
from workbench.config import AppConfig


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key_file(tmp_path: Path, *specs: tuple[str, frozenset[str]]) -> tuple[Path, list[str]]:
    """A key file with one key per (name, scopes); returns the path and the plain keys."""
    tokens, entries = [], []
    for name, scopes in specs:
        token, entry = new_key(name, scopes, [e.key_id for e in entries])
        tokens.append(token)
        entries.append(entry)
    path = tmp_path / "keys.json"
    write_key_file(path, entries)
    return path, tokens


ALL = frozenset({"segment", "jobs", "video", "metrics"})


def request(authorization: str | bytes | None = None, *, host: str = "203.0.113.5",
            query: bytes = b"", extra_headers: list[tuple[bytes, bytes]] = ()) -> Request:
    """A Starlette request as a server would build it: header bytes, decoded latin-1 on read."""
    headers = list(extra_headers)
    if authorization is not None:
        value = authorization if isinstance(authorization, bytes) else authorization.encode(
            "latin-1")
        headers.append((b"authorization", value))
    return Request({"type": "http", "method": "GET", "path": "/v1/ping", "headers": headers,
                    "query_string": query, "client": (host, 50000), "server": ("127.0.0.1", 80),
                    "scheme": "http", "root_path": ""})


@pytest.fixture
def keyed(tmp_path: Path) -> tuple[RestSecurity, list[str], Clock]:
    path, tokens = key_file(tmp_path, ("all", ALL), ("seg", frozenset({"segment"})))
    clock = Clock()
    security = RestSecurity(KeyStore.from_sources(path, None, clock=clock), clock=clock)
    return security, tokens, clock


def refusal(security: RestSecurity, req: Request, scope: str = "segment") -> AuthError:
    with pytest.raises(AuthError) as caught:
        security.check(req, scope)
    return caught.value


# --- the parser --------------------------------------------------------------------------

GOOD = "samwb_0123abcd_" + "A" * 43

BAD_HEADERS = {
    "missing": None,
    "empty": "",
    "spaces only": "   ",
    "lower-case scheme": "bearer " + GOOD,
    "upper-case scheme": "BEARER " + GOOD,
    "two spaces": "Bearer  " + GOOD,
    "trailing space": "Bearer " + GOOD + " ",
    "leading space": " Bearer " + GOOD,
    "tab": "Bearer\t" + GOOD,
    "trailing tab": "Bearer " + GOOD + "\t",
    "no token": "Bearer ",
    "scheme only": "Bearer",
    "basic auth": "Basic dXNlcjpwYXNz",
    "token without scheme": GOOD,
    "10 KB token": "Bearer samwb_0123abcd_" + "A" * 10_240,
    "short secret": "Bearer samwb_0123abcd_" + "A" * 42,
    "long secret": "Bearer samwb_0123abcd_" + "A" * 44,
    "upper-case id": "Bearer samwb_0123ABCD_" + "A" * 43,
    "other prefix": "Bearer sk_0123abcd_" + "A" * 43,
    "newline after": "Bearer " + GOOD + "\n",
    "non-ascii latin-1": "Bearer samwb_0123abcd_" + "\xff" * 43,
    "non-ascii utf-8 as latin-1": "Bearer samwb_0123abcd_" + "é".encode().decode("latin-1") * 21
                                  + "A",
    "two tokens": "Bearer " + GOOD + " " + GOOD,
}


@pytest.mark.parametrize("header", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_the_parser_refuses_every_variant_with_401(header: str | None) -> None:
    with pytest.raises(AuthError) as caught:
        parse_bearer(header)
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")
    assert caught.value.message and caught.value.retry_after_s is None
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_parser_accepts_exactly_bearer_space_token() -> None:
    assert parse_bearer("Bearer " + GOOD) == GOOD


@pytest.mark.parametrize("header", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_bad_headers_are_refused_through_a_request(keyed, header: str | None) -> None:
    security, _, _ = keyed
    error = refusal(security, request(header))
    assert error.status == 401


# --- keys and scopes ---------------------------------------------------------------------

def test_a_valid_key_is_accepted_with_its_scopes(keyed) -> None:
    security, (full, seg_only), _ = keyed
    key = security.check(request("Bearer " + full), "jobs")
    assert isinstance(key, ApiKey) and key.name == "all" and key.scopes == ALL
    assert full.split("_")[1] == key.key_id
    assert security.check(request("Bearer " + seg_only), "segment").name == "seg"


def test_a_missing_scope_is_403_forbidden(keyed) -> None:
    security, (_, seg_only), _ = keyed
    error = refusal(security, request("Bearer " + seg_only), "jobs")
    assert (error.status, error.code) == (403, "forbidden")
    assert "jobs" in error.message


def test_wrong_secret_and_wrong_id_get_the_same_answer(keyed) -> None:
    security, (full, _), _ = keyed
    key_id = full.split("_")[1]
    other_id = "0" * 8 if key_id != "0" * 8 else "1" * 8
    wrong_secret = f"samwb_{key_id}_" + ("B" * 43 if full[-43:] != "B" * 43 else "C" * 43)
    wrong_id = f"samwb_{other_id}_" + full[-43:]
    answers = {refusal(security, request("Bearer " + t)).message for t in (wrong_secret, wrong_id)}
    assert len(answers) == 1
    assert "not valid" in answers.pop()


def test_a_revoked_key_is_refused_and_revocation_is_seen_without_restart(keyed, tmp_path) -> None:
    security, (full, _), clock = keyed
    assert security.check(request("Bearer " + full), "segment")
    assert keys_cli.main(["revoke", full.split("_")[1], "--file", str(tmp_path / "keys.json")]) == 0
    clock.now += 5  # past the reload interval
    error = refusal(security, request("Bearer " + full))
    assert error.status == 401 and "revoked" in error.message


def test_non_ascii_bytes_in_the_header_give_401_not_500(keyed) -> None:
    security, (full, _), _ = keyed
    for raw in (b"Bearer " + full.encode()[:-1] + b"\xff", "Bearer é".encode(),
                b"Bearer \x80\x81", b"\xc3\xa9Bearer " + full.encode()):
        assert refusal(security, request(raw)).status == 401


@pytest.mark.parametrize("name", ["api_key", "token", "access_token"])
def test_a_key_in_the_query_string_is_refused_even_when_valid(keyed, name: str) -> None:
    security, (full, _), _ = keyed
    error = refusal(security, request("Bearer " + full, query=f"{name}={full}".encode()))
    assert error.status == 401 and "Authorization header" in error.message


def test_two_authorization_headers_are_refused(keyed) -> None:
    security, (full, _), _ = keyed
    req = request("Bearer " + full, extra_headers=[(b"authorization", b"Bearer " + full.encode())])
    assert refusal(security, req).status == 401


def test_require_builds_a_dependency_and_refuses_unknown_scopes(keyed) -> None:
    security, (full, _), _ = keyed
    dependency = security.require("segment")
    assert dependency(request("Bearer " + full)).name == "all"
    with pytest.raises(ValueError, match="segment, jobs"):
        security.require("admin")


# --- no keys, open-local, configuration --------------------------------------------------

def test_without_keys_every_request_gets_the_how_to_message(tmp_path) -> None:
    security = RestSecurity.from_config(AppConfig(), environ={})
    for header in (None, "Bearer " + GOOD, "junk"):
        error = refusal(security, request(header, host="127.0.0.1"))
        assert (error.status, error.code, error.message) == (401, "unauthorized", NO_KEYS_MESSAGE)
    assert "python -m server.security.keys create --name me --file keys.json" in NO_KEYS_MESSAGE
    assert "--api-keys keys.json" in NO_KEYS_MESSAGE and "--api-open-local" in NO_KEYS_MESSAGE
    for _ in range(50):  # a server without keys is no brute-force target: never 429
        refusal(security, request(None))
    assert refusal(security, request(None)).status == 401


def test_open_local_mode_lets_loopback_clients_in_without_a_key(tmp_path) -> None:
    security = RestSecurity.from_config(AppConfig(api_open_local=True), environ={})
    for host in ("127.0.0.1", "::1", "127.0.0.2"):
        key = security.check(request(None, host=host), "jobs")
        assert key.key_id == "local" and key.scopes == ALL
    assert refusal(security, request(None, host="192.0.2.7")).status == 401
    assert refusal(security, request("Bearer " + GOOD, host="127.0.0.1")).status == 401


@pytest.mark.parametrize("changes", [{"host": "0.0.0.0"}, {"host": "192.168.1.4"},
                                     {"host": "::"}, {"share": True}])
def test_open_local_is_refused_when_others_can_reach_the_server(changes) -> None:
    with pytest.raises(ValueError, match="--api-open-local"):
        AppConfig(api_open_local=True, **changes)
    AppConfig(**changes)  # the same settings without the flag are fine


def test_keys_come_from_the_file_flag_the_env_path_or_the_env_text(tmp_path) -> None:
    path, (token,) = key_file(tmp_path, ("me", ALL))
    text = path.read_text()
    for config, environ in ((AppConfig(api_keys_file=path), {}),
                            (AppConfig(), {"SAMWB_API_KEYS_FILE": str(path)}),
                            (AppConfig(), {"SAMWB_API_KEYS": text})):
        security = RestSecurity.from_config(config, environ=environ)
        assert security.check(request("Bearer " + token), "segment").name == "me"
    with pytest.raises(KeyFileError, match="both"):
        RestSecurity.from_config(AppConfig(api_keys_file=path), environ={"SAMWB_API_KEYS": text})


@pytest.mark.parametrize("text, words", [
    ("samwb_0123abcd_" + "A" * 43, "plain API key"),
    ("{", "not valid JSON"),
    ('{"version": 2, "keys": []}', "version"),
    ('{"version": 1, "keys": [{"id": "0123abcd"}]}', "missing"),
    ('{"version": 1, "keys": [{"id": "0123abcd", "name": "x", "scopes": ["admin"], '
     '"sha256": "' + "0" * 64 + '", "created": "t"}]}', "valid scopes"),
    ('{"version": 1, "keys": [{"id": "0123abcd", "name": "x", "scope": ["jobs"], '
     '"sha256": "' + "0" * 64 + '", "created": "t"}]}', "unknown field"),
])
def test_broken_key_sources_are_refused_at_start_without_echoing_them(text, words) -> None:
    with pytest.raises(KeyFileError, match=words) as caught:
        parse_key_file(text, "SAMWB_API_KEYS")
    assert "A" * 43 not in str(caught.value)


def test_a_missing_key_file_says_how_to_create_one(tmp_path) -> None:
    with pytest.raises(KeyFileError, match="server.security.keys create"):
        RestSecurity.from_config(AppConfig(api_keys_file=tmp_path / "nope.json"), environ={})


def test_app_flags_reach_the_config(tmp_path) -> None:
    from app import config_from_args

    config = config_from_args(["--models", "grabcut", "--api-keys", str(tmp_path / "k.json"),
                               "--rate-limit", "5", "--auth-failures-per-min", "3",
                               "--api-open-local"])
    assert (config.api_keys_file, config.rate_limit_per_min, config.auth_failures_per_min,
            config.api_open_local) == (tmp_path / "k.json", 5, 3, True)
    defaults = config_from_args(["--models", "grabcut"])
    assert (defaults.api_keys_file, defaults.api_open_local, defaults.rate_limit_per_min,
            defaults.auth_failures_per_min) == (None, False, 60, 20)
    with pytest.raises(SystemExit):
        config_from_args(["--models", "grabcut", "--rate-limit", "-1"])


# --- limits ------------------------------------------------------------------------------

def test_the_61st_request_in_a_minute_is_429_with_retry_after(keyed) -> None:
    security, (full, seg_only), clock = keyed
    for _ in range(60):
        security.check(request("Bearer " + full), "segment")
    error = refusal(security, request("Bearer " + full))
    assert (error.status, error.code) == (429, "rate_limited")
    assert error.retry_after_s is not None and error.retry_after_s >= 1
    assert error.headers["Retry-After"] == str(error.retry_after_s)
    assert security.check(request("Bearer " + seg_only), "segment")  # limits are per key
    clock.now += error.retry_after_s
    assert security.check(request("Bearer " + full), "segment")


def test_the_token_bucket_refills_at_the_configured_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)
    assert all(limiter.take("k") is None for _ in range(60))
    assert limiter.take("k") == 1
    clock.now += 1.0
    assert limiter.take("k") is None and limiter.take("k") == 1
    assert RateLimiter(0, clock=clock).take("k") is None  # 0: off
    with pytest.raises(ValueError):
        RateLimiter(-1)


def test_failed_attempts_block_the_address_even_for_a_correct_key(keyed) -> None:
    security, (full, _), clock = keyed
    for _ in range(20):
        assert refusal(security, request("Bearer " + GOOD)).status == 401
    error = refusal(security, request("Bearer " + full))
    assert (error.status, error.code) == (429, "rate_limited") and error.retry_after_s >= 1
    assert security.check(request("Bearer " + full, host="198.51.100.1"), "segment")
    clock.now += 61
    assert security.check(request("Bearer " + full), "segment")


def test_the_failure_window_slides() -> None:
    clock = Clock()
    limiter = FailureLimiter(3, clock=clock)
    limiter.record_failure("a")
    clock.now += 30
    limiter.record_failure("a")
    assert limiter.record_failure("a") is True
    assert limiter.blocked("a") == 30
    clock.now += 30
    assert limiter.blocked("a") is None  # the first failure left the window
    assert limiter.blocked("b") is None


def test_the_tables_are_bounded() -> None:
    clock = Clock()
    rates, failures = RateLimiter(5, clock=clock, max_entries=100), FailureLimiter(
        5, clock=clock, max_entries=100)
    for n in range(1000):
        rates.take(f"key{n}")
        failures.record_failure(f"10.0.{n // 256}.{n % 256}")
    assert len(rates) == 100 and len(failures) == 100


def test_ipv6_addresses_are_limited_by_their_64_network() -> None:
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key(None) == "unknown"


def test_the_limiters_are_thread_safe() -> None:
    limiter = RateLimiter(1000, clock=Clock())
    allowed = []

    def spend() -> None:
        allowed.extend(1 for _ in range(200) if limiter.take("k") is None)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 1000


# --- the CLI -----------------------------------------------------------------------------

def test_cli_create_list_revoke(tmp_path, capsys) -> None:
    path = tmp_path / "keys.json"
    assert keys_cli.main(["create", "--name", "robot", "--scopes", "segment",
                          "--file", str(path)]) == 0
    printed = capsys.readouterr().out
    token = next(w for w in printed.split() if w.startswith("samwb_"))
    assert "Authorization: Bearer" in printed and "--api-keys" in printed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert token not in path.read_text() and token.split("_", 2)[2] not in path.read_text()
    (entry,) = data["keys"]
    assert data["version"] == 1 and entry["name"] == "robot" and entry["scopes"] == ["segment"]
    assert set(entry) == {"id", "name", "scopes", "sha256", "created"}

    assert keys_cli.main(["create", "--name", "two", "--file", str(path)]) == 0
    second = next(w for w in capsys.readouterr().out.split() if w.startswith("samwb_"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store = KeyStore.from_sources(path, None)
    assert store.authenticate("Bearer " + token).scopes == {"segment"}
    assert store.authenticate("Bearer " + second).scopes == ALL

    assert keys_cli.main(["list", "--file", str(path)]) == 0
    listing = capsys.readouterr().out
    assert "robot" in listing and entry["id"] in listing and "active" in listing
    assert "samwb_" not in listing and entry["sha256"] not in listing

    assert keys_cli.main(["revoke", entry["id"], "--file", str(path)]) == 0
    assert keys_cli.main(["revoke", "ffffffff", "--file", str(path)]) == 1
    capsys.readouterr()
    keys_cli.main(["list", "--file", str(path)])
    assert "revoked" in capsys.readouterr().out
    with pytest.raises(AuthError, match="revoked"):
        KeyStore.from_sources(path, None).authenticate("Bearer " + token)
    assert not list(tmp_path.glob(".keys.json.*"))  # no temp files left behind


def test_cli_refuses_unknown_scopes_and_runs_as_a_module(tmp_path) -> None:
    import subprocess
    import sys

    path = tmp_path / "k.json"
    assert keys_cli.main(["create", "--name", "x", "--scopes", "admin", "--file", str(path)]) == 1
    assert not path.exists()
    done = subprocess.run([sys.executable, "-m", "server.security.keys", "create", "--name", "cli",
                           "--file", str(path)], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert "samwb_" in done.stdout and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_stored_keys_round_trip(tmp_path) -> None:
    _, entry = new_key("me", ALL)
    assert isinstance(entry, StoredKey)
    assert parse_key_file(json.dumps({"version": 1, "keys": [entry.to_json()]}), "t") == (entry,)


# --- end to end through a real server ----------------------------------------------------

def ping_app(security: RestSecurity) -> FastAPI:
    app = FastAPI()

    @app.exception_handler(AuthError)
    def auth_error(_: Request, error: AuthError) -> JSONResponse:
        return JSONResponse({"error": {"code": error.code, "message": error.message,
                                       "field": None}},
                            status_code=error.status, headers=error.headers)

    @app.get("/v1/ping")
    def ping(key: ApiKey = Depends(security.require("segment"))) -> dict:
        return {"key": key.key_id}

    return app


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_end_to_end_over_http(tmp_path) -> None:
    path, (token, seg_only) = key_file(tmp_path, ("all", ALL), ("seg", frozenset({"segment"})))
    security = RestSecurity.from_config(AppConfig(api_keys_file=path, rate_limit_per_min=30,
                                                  auth_failures_per_min=10), environ={})
    with serving(ping_app(security)) as url, httpx.Client(base_url=url, timeout=20) as client:
        good = client.get("/v1/ping", headers={"Authorization": "Bearer " + token})
        assert good.status_code == 200 and good.json() == {"key": token.split("_")[1]}

        for headers in ({}, {"Authorization": ""}, {"Authorization": "bearer " + token},
                        {"Authorization": "Bearer  " + token},
                        {"Authorization": "Bearer " + token[:-1] + "x"},
                        {"Authorization": "Bearer " + "A" * 10_240}):
            refused = client.get("/v1/ping", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"].startswith("Bearer")
            body = refused.json()["error"]
            assert body["code"] == "unauthorized" and body["message"] and body["field"] is None

        in_url = client.get("/v1/ping", params={"api_key": token})
        assert in_url.status_code == 401 and "Authorization header" in in_url.json()[
            "error"]["message"]

        for raw_value in (b"Bearer " + token.encode()[:-2] + b"\xc3\xa9", b"Bearer \xff\xfe"):
            raw = raw_request(url, b"GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   b"Authorization: " + raw_value + b"\r\n"
                                   b"Connection: close\r\n\r\n")
            assert raw.status == 401, raw.body
            assert json.loads(raw.body)["error"]["code"] == "unauthorized"

        # 9 failures so far from 127.0.0.1 (10 allowed): one more blocks the address
        assert client.get("/v1/ping").status_code == 401
        blocked = client.get("/v1/ping", headers={"Authorization": "Bearer " + token})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
        assert blocked.json()["error"]["code"] == "rate_limited"

    security = RestSecurity.from_config(AppConfig(api_keys_file=path, rate_limit_per_min=3),
                                        environ={})
    with serving(ping_app(security)) as url, httpx.Client(base_url=url, timeout=20) as client:
        auth = {"Authorization": "Bearer " + seg_only}
        assert [client.get("/v1/ping", headers=auth).status_code for _ in range(4)] == [
            200, 200, 200, 429]
        limited = client.get("/v1/ping", headers=auth)
        assert int(limited.headers["retry-after"]) >= 1
