"""``GET /metrics``: Prometheus text with the app's numbers, for loopback clients or a key."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.testclient import TestClient

from server.metrics_route import metrics_routes
from server.rest.app import build_security, rest_routes
from server.security.keys import new_key, write_key_file
from workbench.config import AppConfig
from workbench.context import AppContext
from workbench.session import Session

LOCAL = ("127.0.0.1", 40000)
REMOTE = ("203.0.113.9", 40000)


@pytest.fixture
def make_app(tmp_path):
    made = []

    def make(**changes):
        config = AppConfig(models=("grabcut",), temp_dir=tmp_path / f"t{len(made)}", **changes)
        ctx = AppContext(config)
        made.append(ctx)
        security = build_security(config)
        rest = rest_routes(ctx, security)
        return ctx, Starlette(routes=rest + metrics_routes(ctx, security, rest))

    yield make
    for ctx in made:
        ctx.close()


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(found: dict, name: str, **labels) -> float:
    """The sample ``name`` with ``labels`` (a counter's family drops the ``_total``)."""
    for family in found.values():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                return sample.value
    raise KeyError((name, labels))


def test_the_route_reports_memory_cache_sessions_lanes_refusals_latency_and_jobs(make_app):
    ctx, app = make_app(memory_budget="4GiB")
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    ctx.encode("grabcut", image)
    session = Session("s1", "grabcut")
    session.set_image(image, "d", "x.png")
    ctx.sessions.track(session)
    ctx.observe.status(429, "click")
    ctx.observe.latency("click", "grabcut", 0.03)
    response = TestClient(app, client=LOCAL).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = families(response.text)
    assert value(found, "samwb_process_resident_memory_bytes") > 50e6
    assert value(found, "samwb_memory_budget_bytes") == 4 << 30
    assert value(found, "samwb_memory_share_bytes", holder="cache") == ctx.memory.cache_bytes
    assert value(found, "samwb_embedding_cache_entries") == 1
    assert value(found, "samwb_embedding_cache_bytes") == ctx.cache.stats().bytes > 0
    assert value(found, "samwb_sessions") == 1
    assert value(found, "samwb_session_bytes") == session.nbytes() > 0
    assert value(found, "samwb_lane_waiting", lane="the image encoder") == 0
    assert value(found, "samwb_http_refusals_total", status="429", route="click") == 1
    assert value(found, "samwb_encode_seconds_count", model="grabcut") == 1
    assert value(found, "samwb_click_seconds_bucket", model="grabcut", le="0.05") == 1
    assert value(found, "samwb_click_seconds_bucket", model="grabcut", le="0.025") == 0
    assert value(found, "samwb_jobs", status="starting") == 0
    assert not any(f.name.startswith("samwb") for f in REGISTRY.collect())  # per-app registry


def test_loopback_only_by_default_and_never_through_a_proxy(make_app):
    _, app = make_app()
    assert TestClient(app, client=REMOTE).get("/metrics").status_code == 403
    proxied = TestClient(app, client=LOCAL).get("/metrics",
                                                headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403 and "--metrics key" in proxied.json()["error"]["message"]
    assert TestClient(app, client=LOCAL).post("/metrics").status_code == 405


def test_share_closes_the_loopback_door(make_app):
    _, app = make_app(share=True)
    assert TestClient(app, client=LOCAL).get("/metrics").status_code == 403


def test_key_mode_wants_a_key_with_the_metrics_scope(make_app, tmp_path):
    with_scope, stored = new_key("ops", frozenset({"metrics"}))
    without, other = new_key("app", frozenset({"segment"}), [stored.key_id])
    write_key_file(tmp_path / "keys.json", [stored, other])
    _, app = make_app(metrics_access="key", api_keys_file=tmp_path / "keys.json")
    client = TestClient(app, client=REMOTE)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {without}"}
                      ).status_code == 403
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {with_scope}"})
    assert answer.status_code == 200 and "samwb_embedding_cache_bytes" in answer.text


def test_off_means_no_route(make_app):
    _, app = make_app(metrics_access="off")
    assert TestClient(app, client=LOCAL).get("/metrics").status_code == 404


def test_the_guard_counts_refusals_by_route_family(make_app):
    from starlette.middleware import Middleware

    from server.middleware import GuardMiddleware, GuardSettings
    from workbench.observe import route_family

    ctx, app = make_app()
    settings = GuardSettings(max_body_bytes=100, on_refusal=lambda status, path: ctx.observe.status(
        status, route_family(path)))
    guarded = Starlette(routes=app.routes, middleware=[Middleware(GuardMiddleware,
                                                                  settings=settings)])
    client = TestClient(guarded, client=LOCAL)
    assert client.post("/v1/segment", content=b"x" * 500).status_code == 413
    found = families(client.get("/metrics").text)
    assert value(found, "samwb_http_refusals_total", status="413", route="rest") == 1
