"""Schemathesis against the REST API's own OpenAPI schema: whatever it generates, the running
app (127.0.0.1, GrabCut, open for local use) answers without a server error."""

from __future__ import annotations

import pytest
from app_harness import running_app
from hypothesis import HealthCheck, settings

from workbench.config import AppConfig

schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = AppConfig(models=("grabcut",), default_model="grabcut", api_open_local=True,
                       temp_dir=tmp_path_factory.mktemp("temp"), max_file_size="2mb",
                       rate_limit_per_min=0)
    with running_app(config) as running:
        yield running


@pytest.fixture(scope="module")
def rest_schema(server):
    return schemathesis.openapi.from_url(server.url + "v1/openapi.json")


schema = schemathesis.pytest.from_fixture("rest_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_server_fail(case, server):
    response = case.call(base_url=server.url.rstrip("/") + "/v1", timeout=60)
    assert response.status_code < 500, (
        f"{case.method} {case.path} -> {response.status_code}: {response.text[:300]}")
    if response.status_code >= 400:
        body = response.json()
        assert set(body["error"]) >= {"code", "message"}, body
    assert "Traceback" not in response.text
