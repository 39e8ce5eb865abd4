"""``--max-points`` is honoured by every entrance alike: the page's click route, the Gradio/MCP
``/segment`` endpoint (through ``gradio_client``) and REST ``/v1/segment``.

One app process on a loopback port (random-weight SAM 2 test model), started with
``max_points=100``: a 100-point prompt is accepted by all three, a 101-point prompt refused by
all three with the same message (``workbench.limits.Limits.check_points``). Before, REST
refused the 65th point whatever the flag said.
"""

from __future__ import annotations

import base64
import io
import json

import httpx
import numpy as np
import pytest
from app_harness import app_config, running_app
from PIL import Image

from sam_backends.images import image_digest
from sam_backends.prompts.prompt_parsing import too_many_points_message
from sam_backends.testing.random_models import synthetic_image
from workbench.objects import PromptSet, Step
from workbench.segment.values import LIVE_ROUTE
from workbench.session import Session

gradio_client = pytest.importorskip("gradio_client")

MAX_POINTS = 100
H, W = 120, 160


def points(count: int) -> list[list[float]]:
    """``count`` distinct points inside the image, on a 10-pixel grid."""
    return [[5.0 + (i % 15) * 10, 5.0 + (i // 15) * 10] for i in range(count)]


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return synthetic_image(H, W, seed=3)


@pytest.fixture(scope="module")
def server(sam1_small, sam2_small, tmp_path_factory):
    config = app_config(sam1_small, sam2_small, tmp_path_factory.mktemp("no-checkpoints"),
                        max_points=MAX_POINTS, api_open_local=True, rate_limit_per_min=0)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SAMWB_API_KEYS", raising=False)
        patch.delenv("SAMWB_API_KEYS_FILE", raising=False)
        with running_app(config) as running:
            yield running


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def click_after(server, http, scene, existing: int) -> httpx.Response:
    """A page session whose object already has ``existing`` points, then one click via the
    live route (the click the page's canvas sends)."""
    session = Session(f"limit-{existing}", server.ctx.default_model())
    session.set_image(scene, image_digest(scene), "scene.png")
    prompts = PromptSet()
    for x, y in points(existing):
        prompts = prompts.with_point(x, y, 1)
    session.workspace = session.workspace.update_active(lambda obj: obj.record(Step(prompts)))
    server.ctx.sessions.track(session)
    x, y = points(existing + 1)[-1]
    return http.post(LIVE_ROUTE.lstrip("/") + "/point",
                     json={"token": session.token, "gen": session.generation,
                           "x": x, "y": y, "label": 1})


def gradio_segment(server, path, count: int):
    client = gradio_client.Client(server.url, verbose=False)
    return client.predict(gradio_client.handle_file(str(path)), "",
                          json.dumps({"points": points(count)}), api_name="/segment")


def rest_segment(http, scene, count: int) -> httpx.Response:
    buffer = io.BytesIO()
    Image.fromarray(scene).save(buffer, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return http.post("v1/segment", json={"image": uri, "objects": [{"points": points(count)}],
                                         "mask_only": True})


def test_max_points_is_the_same_for_the_click_route_gradio_and_rest(server, http, scene,
                                                                   tmp_path):
    path = tmp_path / "scene.png"
    Image.fromarray(scene).save(path)
    refusal = too_many_points_message(MAX_POINTS + 1, MAX_POINTS)

    # Exactly the limit: accepted by all three.
    answer = click_after(server, http, scene, MAX_POINTS - 1)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["points"]) == MAX_POINTS
    result, _ = gradio_segment(server, path, MAX_POINTS)
    assert result["masks"]
    answer = rest_segment(http, scene, MAX_POINTS)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["objects"]) == 1

    # One more: refused by all three, with the same message.
    answer = click_after(server, http, scene, MAX_POINTS)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "too_many_points"
    assert answer.json()["error"]["message"] == refusal
    with pytest.raises(Exception) as info:
        gradio_segment(server, path, MAX_POINTS + 1)
    assert refusal in str(info.value)
    answer = rest_segment(http, scene, MAX_POINTS + 1)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["field"], error["message"]) == (
        "too_many_points", "objects.0.points", refusal)


def test_the_openapi_document_states_the_servers_point_limit(http):
    schema = http.get("v1/openapi.json").json()
    points_schema = schema["components"]["schemas"]["ObjectPrompt"]["properties"]["points"]
    assert points_schema["maxItems"] == MAX_POINTS
