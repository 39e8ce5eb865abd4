"""The REST API (``/healthz``, ``/readyz``, ``/v1``) against the running app on 127.0.0.1:
every route, JSON and multipart, exact masks, outputs, strict validation, limits and the URL
fetcher's refusals (random-weight models and GrabCut; nothing leaves the machine)."""

from __future__ import annotations

import base64
import io
import json
import re
import threading

import httpx
import numpy as np
import pytest
from app_harness import app_config, running_app
from one_file_server import OneFileServer
from PIL import Image

from sam_backends import Prompts, create_backend
from sam_backends.masks import decode_rle, mask_box
from sam_backends.testing.random_models import synthetic_image
from server.rest import render
from server.rest.images import (
    FetchError,
    FetchPolicy,
    ImageStore,
    StoreFullError,
    UnknownImageError,
    UrlFetcher,
)
from server.security.keys import new_key
from workbench.config import AppConfig
from workbench.drawing import SPEC
from workbench.exports import crop_box
from workbench.render import Layer, compose

H, W = 120, 160
BOX = [30, 20, 140, 110]


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(data: bytes, media: str = "image/png") -> str:
    return f"data:{media};base64," + base64.b64encode(data).decode()


def decode_png(uri_or_bytes) -> np.ndarray:
    data = uri_or_bytes
    if isinstance(data, str):
        data = base64.b64decode(data.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return synthetic_image(H, W, seed=1)


@pytest.fixture(scope="module")
def image_server(scene):
    server = OneFileServer("img.png", png(scene), "image/png")
    yield server
    server.close()


@pytest.fixture(scope="module")
def other_token(jobs_only_token):
    token, stored = new_key("other", frozenset({"segment"}))
    keys = [stored.to_json(), jobs_only_token[1].to_json()]
    return token, json.dumps({"version": 1, "keys": keys})


@pytest.fixture(scope="module")
def jobs_only_token():
    return new_key("jobs-only", frozenset({"jobs"}))


@pytest.fixture(scope="module")
def server(sam1_small, sam2_small, tmp_path_factory, other_token):
    config = app_config(sam1_small, sam2_small, tmp_path_factory.mktemp("no-checkpoints"),
                        max_image_pixels=200_000, max_file_size="300kb", api_open_local=True,
                        rate_limit_per_min=0, url_fetch_hosts=("localhost",),
                        url_fetch_allow_private=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAMWB_API_KEYS", other_token[1])
        patch.delenv("SAMWB_API_KEYS_FILE", raising=False)
        with running_app(config) as running:
            yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as http_client:
        yield http_client


@pytest.fixture(scope="module")
def other(server, other_token):
    headers = {"Authorization": f"Bearer {other_token[0]}"}
    with httpx.Client(base_url=server.url, timeout=60, headers=headers) as http_client:
        yield http_client


@pytest.fixture(scope="module")
def jobs_only(server, jobs_only_token):
    headers = {"Authorization": f"Bearer {jobs_only_token[0]}"}
    with httpx.Client(base_url=server.url, timeout=60, headers=headers) as http_client:
        yield http_client


def segment(client, **body):
    return client.post("v1/segment", json=body)


def error_of(response, status):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and "Traceback" not in response.text
    return error


# --- health, docs, models ---------------------------------------------------------------------


def test_health_readiness_docs_and_models(client):
    assert client.get("healthz").json() == {"status": "ok"}
    ready = client.get("readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert "test-sam2-small" in ready.json()["models_present"]
    schema = client.get("v1/openapi.json").json()
    assert schema["info"]["title"] == "Segment Anything Workbench API"
    for path in ("/segment", "/segment/upload", "/images", "/images/upload", "/models",
                 "/files/{token}", "/jobs"):
        assert path in schema["paths"], path
    assert "SegmentRequest" in schema["components"]["schemas"]
    upload = schema["paths"]["/segment/upload"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    docs = client.get("v1/docs")
    assert docs.status_code == 200
    # served by the app itself, so the page works without internet
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", docs.text)
    assert "/v1/docs-assets/swagger-ui-bundle.js" in assets
    assert not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
    for asset in assets:
        fetched = client.get(asset.lstrip("/"))
        assert fetched.status_code == 200 and len(fetched.content) > 100, asset
    rows = {row["id"]: row for row in client.get("v1/models").json()}
    assert set(rows) == {"grabcut", "sam2.1-tiny", "test-sam2-small", "test-sam1-small"}
    assert rows["sam2.1-tiny"]["present"] is False and "points" in rows["grabcut"]["capabilities"]
    assert error_of(client.get("v1/nowhere"), 404)["code"] == "not_found"


# --- segmenting -------------------------------------------------------------------------------


def test_masks_match_the_engine_exactly_for_several_objects(client, scene, sam2_small):
    objects = [{"points": [[80, 60], [20, 100]], "labels": [1, 0], "box": BOX},
               {"box": [10, 10, 70, 60]}, {"points": [[120, 90]]}]
    response = segment(client, image=data_uri(png(scene)), model="test-sam2-small",
                       objects=objects, multimask=True, cutout="cropped")
    assert response.status_code == 200, response.text
    body = response.json()
    backend = create_backend(sam2_small.spec, checkpoint=sam2_small.path, device="cpu",
                             precision="fp32")
    embedding = backend.encode(scene)
    assert body["model"] == "test-sam2-small" and body["image"] == {"id": None, "width": W,
                                                                      "height": H}
    assert [o["index"] for o in body["objects"]] == [0, 1, 2] and body["dropped"] == 0
    for obj, prompt in zip(body["objects"], objects):
        expected = backend.predict(embedding, Prompts(
            points=[tuple(p) for p in prompt.get("points", [])],
            labels=prompt.get("labels", [1] * len(prompt.get("points", []))),
            box=tuple(prompt["box"]) if "box" in prompt else None, multimask=True))
        best = expected.masks[expected.best_index]
        np.testing.assert_array_equal(decode_rle(obj["mask"]), best)
        assert obj["score"] == pytest.approx(float(expected.scores.max()), abs=1e-5)
        assert obj["area"] == int(best.sum())
        assert obj["box"] == [float(v) for v in mask_box(best)]  # XYXY, exclusive max
        assert len(obj["candidates"]) == 3
        for candidate, mask in zip(obj["candidates"], expected.masks):
            np.testing.assert_array_equal(decode_rle(candidate["mask"]), mask)
        x0, y0, x1, y1 = crop_box(best)  # the one crop rule, page downloads and REST alike
        assert decode_png(obj["cutout"]).shape == (y1 - y0, x1 - x0, 4)
    overlay = decode_png(body["overlay"])
    assert overlay.shape == (H, W, 3) and not np.array_equal(overlay, scene)
    assert body["cache"]["embedding"] == "miss" and body["cache"]["entries"] >= 1
    assert {"queue_s", "encode_s", "predict_s", "total_s"} <= set(body["timings"])


def test_an_uploaded_image_id_is_reused_from_the_cache_and_bound_to_its_key(client, other,
                                                                             scene):
    uploaded = client.post("v1/images/upload", files={"file": ("s.png", png(scene),
                                                               "image/png")})
    assert uploaded.status_code == 201, uploaded.text
    image_id = uploaded.json()["id"]
    assert image_id.startswith("img_") and uploaded.json()["width"] == W
    first = segment(client, image_id=image_id, model="test-sam1-small", objects=[{"box": BOX}])
    second = segment(client, image_id=image_id, model="test-sam1-small",
                     objects=[{"points": [[50, 50]]}])
    assert first.status_code == 200 and second.status_code == 200, second.text
    assert second.json()["cache"]["embedding"] == "hit"
    assert second.json()["image"]["id"] == image_id
    refused = error_of(segment(other, image_id=image_id, objects=[{"box": BOX}]), 404)
    assert refused["code"] == "not_found" and refused["field"] == "image_id"
    unknown = error_of(segment(other, image_id="img_nope", objects=[{"box": BOX}]), 404)
    assert unknown["message"] == refused["message"]  # another key's id reveals nothing
    as_json = client.post("v1/images", json={"image": data_uri(png(scene))})
    assert as_json.status_code == 201 and as_json.json()["id"] != image_id


def test_multipart_segment_mask_only_and_without_scores_or_boxes(client, scene):
    request = {"model": "grabcut", "objects": [{"box": BOX}], "mask_only": True,
               "include_scores": False, "include_boxes": False}
    response = client.post("v1/segment/upload", data={"request": json.dumps(request)},
                           files={"file": ("s.png", png(scene), "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["overlay"] is None
    obj = body["objects"][0]
    assert obj["cutout"] is None and obj["score"] is None and obj["box"] is None
    assert decode_rle(obj["mask"]).shape == (H, W) and obj["area"] > 0
    bad = client.post("v1/segment/upload", data={"request": '{"multimask": "false"}'},
                      files={"file": ("s.png", png(scene), "image/png")})
    assert error_of(bad, 422)["field"] == "request.multimask"
    wrong_route = client.post("v1/segment", files={"file": ("s.png", png(scene), "image/png")})
    assert error_of(wrong_route, 415)["code"] == "unsupported_media_type"


def test_threshold_drops_objects_and_full_cutouts(client, scene):
    image = data_uri(png(scene))
    kept = segment(client, image=image, model="test-sam2-small", objects=[{"box": BOX}],
                   overlay=False).json()
    assert kept["overlay"] is None and decode_png(kept["objects"][0]["cutout"]).shape == (H, W, 4)
    score = kept["objects"][0]["score"]
    dropped = segment(client, image=image, model="test-sam2-small", objects=[{"box": BOX}],
                      threshold=min(1.0, score + 1e-3)).json()
    assert dropped["objects"] == [] and dropped["dropped"] == 1


def test_output_urls_are_served_to_their_key_only(client, other, scene):
    body = segment(client, image=data_uri(png(scene)), model="grabcut", objects=[{"box": BOX}],
                   output="url", mask_color="#ff0000", mask_opacity=1).json()
    assert body["overlay"].startswith("/v1/files/")
    overlay = client.get(body["overlay"].lstrip("/"))
    assert overlay.status_code == 200 and overlay.headers["content-type"] == "image/png"
    pixels = decode_png(overlay.content)
    mask = decode_rle(body["objects"][0]["mask"])
    assert pixels.shape == (H, W, 3) and (pixels[mask] == [255, 0, 0]).all()
    cutout = client.get(body["objects"][0]["cutout"].lstrip("/"))
    assert decode_png(cutout.content).shape == (H, W, 4)
    assert error_of(other.get(body["overlay"].lstrip("/")), 404)["code"] == "not_found"


def test_url_images_are_fetched_from_allowed_hosts_only(client, image_server):
    url = f"http://localhost:{image_server.port}/img.png"
    fetched = segment(client, image=url, model="grabcut", objects=[{"box": BOX}])
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["image"]["width"] == W
    redirect = segment(client, image=url.replace("img.png", "redirect"),
                       objects=[{"box": BOX}])
    assert error_of(redirect, 422)["code"] == "url_refused"
    other_host = segment(client, image=f"http://127.0.0.1:{image_server.port}/img.png",
                         objects=[{"box": BOX}])
    assert error_of(other_host, 422)["code"] == "url_refused"


# --- strict validation and refusals -----------------------------------------------------------


@pytest.mark.parametrize("changes, field", [
    ({"surprise": 1}, "surprise"),
    ({"multimask": "false"}, "multimask"),
    ({"objects": [{"points": [["100", 20]]}]}, "objects.0.points.0.0"),
    ({"objects": [{"points": [[1, 2]], "nope": 1}]}, "objects.0.nope"),
    ({"mask_opacity": 2}, "mask_opacity"),
    ({"threshold": "0.5"}, "threshold"),
    ({"objects": [{"box": BOX}] * 17}, "objects"),
    ({"objects": [{"points": [[1, 1]], "labels": [True]}]}, "objects.0.labels.0"),
    ({"objects": [{"points": [[1, 1]], "labels": [1, 0]}]}, "objects.0"),
    ({"mask_color": "red"}, "mask_color"),
    ({"cutout": "some"}, "cutout"),
])
def test_invalid_requests_name_the_field(client, changes, field):
    body = {"image": "data:image/png;base64,AAAA", "objects": [{"box": BOX}], **changes}
    error = error_of(segment(client, **body), 422)
    assert error["code"] == "invalid_request" and error["field"] == field
    assert field.split(".")[-1] in error["message"] or field in error["message"]


@pytest.mark.parametrize("changes, code, field", [
    ({"text": "a dog"}, "unsupported", "text"),
    ({"everything": True}, "unsupported", "everything"),
    ({"model": "sam-vit-h"}, "unknown_model", "model"),
    ({"objects": []}, "no_prompt", "objects"),
    # The point cap is the app's Limits (--max-points, default 64), checked by the use case.
    ({"objects": [{"points": [[1, 1]] * 65}]}, "too_many_points", "objects.0.points"),
    ({"objects": [{"points": [[500, 10]]}]}, "bad_prompt", "objects.0"),
    ({"image": "data:text/html;base64,PGI+"}, "bad_image", "image"),
    ({"image": "data:image/png;base64,not base64!"}, "bad_image", "image"),
    ({"image": data_uri(b"\x89PNG\r\n\x1a\n not really")}, "bad_image", "image"),
    ({"image": None}, "bad_image", "image"),
    ({"image_id": "img_x"}, "bad_image", "image_id"),
])
def test_refusals_say_what_to_do(client, scene, changes, code, field):
    body = {"image": data_uri(png(scene)), "model": "test-sam2-small",
            "objects": [{"box": BOX}], **changes}
    error = error_of(segment(client, **body), 422)
    assert (error["code"], error["field"]) == (code, field)
    if code == "unsupported":
        assert "test-sam2-small" in error["message"] and "points" in error["message"]


def test_limits_too_many_pixels_and_too_large_bodies(client):
    big = png(np.zeros((500, 500, 3), np.uint8))  # 250k pixels > 200k
    error = error_of(segment(client, image=data_uri(big), objects=[{"box": BOX}]), 422)
    assert error["code"] == "image_too_large"
    noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    heavy = error_of(segment(client, image=data_uri(png(noise)), objects=[{"box": BOX}]), 413)
    assert heavy["field"] == "image"  # over the 300 kB upload limit, within the body limit
    body = b'{"image": "' + b"A" * 2_000_000 + b'"}'
    refused = client.post("v1/segment", content=body,
                          headers={"content-type": "application/json"})
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "payload_too_large"
    assert error_of(client.get("v1/models", headers={"Authorization": "Bearer nope"}),
                    401)["code"] == "unauthorized"


def test_jobs_run_segments_in_the_background(client, scene):
    job = client.post("v1/jobs", json={"kind": "segment", "request": {
        "image": data_uri(png(scene)), "model": "grabcut", "objects": [{"box": BOX}],
        "mask_only": True}})
    assert job.status_code == 202, job.text
    for _ in range(200):
        state = client.get(f"v1/jobs/{job.json()['id']}").json()
        if state["status"] in ("succeeded", "failed", "canceled"):
            break
        threading.Event().wait(0.05)
    assert state["status"] == "succeeded", state
    assert decode_rle(state["result"]["objects"][0]["mask"]).shape == (H, W)


def test_busy_answers_503_with_retry_after_and_deadlines_504(tmp_path, scene):
    config = AppConfig(models=("grabcut",), default_model="grabcut", api_max_waiting=0,
                       request_timeout_s=0.001, api_open_local=True, rate_limit_per_min=0,
                       checkpoint_dir=tmp_path)
    request = {"image": data_uri(png(scene)), "objects": [{"box": BOX}]}
    with running_app(config) as running, httpx.Client(base_url=running.url) as http_client:
        late = error_of(http_client.post("v1/segment", json=request), 504)
        assert late["code"] == "timeout" and "limit of 0.001 s" in late["message"]
        release, entered = threading.Event(), threading.Event()

        def hold():
            with running.ctx.api_lane.admit():
                entered.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            entered.wait(5)
            busy = http_client.post("v1/segment", json=request)
            assert error_of(busy, 503)["code"] == "busy"
            assert int(busy.headers["retry-after"]) >= 1
            not_ready = http_client.get("readyz")
            assert not_ready.status_code == 503 and "queue is full" in not_ready.text
        finally:
            release.set()
            holder.join(5)


def test_a_long_many_object_run_never_holds_up_short_calls_and_jobs_wait_their_turn(
        tmp_path, scene):
    """An everything run (its own lane) does not block /v1/segment; a job submitted while the
    API lane is full waits for its turn instead of failing "busy"."""
    config = AppConfig(models=("grabcut",), default_model="grabcut", api_max_waiting=0,
                       api_open_local=True, rate_limit_per_min=0, checkpoint_dir=tmp_path)
    request = {"image": data_uri(png(scene)), "objects": [{"box": BOX}]}
    with running_app(config) as running, httpx.Client(base_url=running.url,
                                                      timeout=60) as http_client:
        for lane, answer in ((running.ctx.proposals_lane, 200), (running.ctx.api_lane, None)):
            release, entered = threading.Event(), threading.Event()

            def hold(lane=lane, release=release, entered=entered):
                with lane.admit():
                    entered.set()
                    release.wait(20)

            holder = threading.Thread(target=hold)
            holder.start()
            try:
                assert entered.wait(5)
                if answer is not None:  # a long run holds its lane: a short call goes on
                    assert http_client.post("v1/segment", json=request).status_code == 200
                    continue
                job = http_client.post("v1/jobs", json={"kind": "segment", "request": request})
                assert job.status_code == 202, job.text
                threading.Event().wait(1.0)  # the job's worker is now waiting for the lane
                state = http_client.get(f"v1/jobs/{job.json()['id']}").json()
                assert state["status"] in ("starting", "processing"), state
                release.set()
                for _ in range(400):
                    state = http_client.get(f"v1/jobs/{job.json()['id']}").json()
                    if state["status"] in ("succeeded", "failed", "canceled"):
                        break
                    threading.Event().wait(0.05)
                assert state["status"] == "succeeded", state
            finally:
                release.set()
                holder.join(5)


# --- the pieces, without a server -------------------------------------------------------------


def test_url_fetcher_refuses_what_it_must(image_server):
    strict = UrlFetcher(FetchPolicy(hosts=("localhost", "example.org"), max_bytes=10_000))
    with pytest.raises(FetchError, match="disabled|does not fetch"):
        UrlFetcher(FetchPolicy()).fetch("https://example.org/a.png")
    with pytest.raises(FetchError, match="Only https"):
        strict.fetch("http://example.org/a.png")
    with pytest.raises(FetchError, match="not one of them"):
        strict.fetch("https://evil.example.com/a.png")
    with pytest.raises(FetchError, match="user name"):
        strict.fetch("https://user:pw@example.org/a.png")
    with pytest.raises(FetchError, match="private, loopback"):
        strict.fetch(f"https://localhost:{image_server.port}/img.png")
    rebinding = UrlFetcher(FetchPolicy(hosts=("example.org",)),
                           resolver=lambda host, port: ["93.184.215.14", "10.0.0.1"])
    with pytest.raises(FetchError, match="private, loopback"):
        rebinding.fetch("https://example.org/a.png")
    local = UrlFetcher(FetchPolicy(hosts=("localhost",), allow_private=True, max_bytes=100))
    with pytest.raises(FetchError, match="larger than the limit"):
        local.fetch(f"http://localhost:{image_server.port}/img.png")
    with pytest.raises(FetchError, match="redirect"):
        local.fetch(f"http://localhost:{image_server.port}/redirect")


def test_image_store_is_bounded_and_bound_to_keys():
    store = ImageStore(max_images=3, per_key=2, ttl_s=60)
    image = np.zeros((4, 4, 3), np.uint8)
    first = store.add("a", image, "d1")
    store.add("a", image, "d2")
    store.add("a", image, "d3")  # over a's quota: a's own oldest goes
    assert len(store) == 2
    with pytest.raises(UnknownImageError):
        store.get(first.image_id, "a")
    third = store.add("b", image, "d4")
    assert store.get(third.image_id, "b").digest == "d4"
    with pytest.raises(UnknownImageError):
        store.get(third.image_id, "a")
    with pytest.raises(StoreFullError):  # full: refused, nobody's image is taken
        store.add("c", image, "d5")


def test_overlay_follows_the_drawing_spec():
    image = np.full((20, 20, 3), 100, np.uint8)
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    out = render.overlay(image, [mask], (200, 0, 0), 0.5)
    assert (out[~mask] == 100).all()
    assert (out[10, 10] == [150, 50, 50]).all()  # inside: blended
    assert (out[5, 10] == [200, 0, 0]).all() and not (out[6, 10] == [200, 0, 0]).all()
    second = np.zeros((20, 20), bool)
    second[16:19, 1:4] = True
    default = render.overlay(image, [mask, second])  # each object its spec colour
    assert tuple(default[5, 10]) == SPEC.colour_for(1)
    assert tuple(default[16, 1]) == SPEC.colour_for(2)
    np.testing.assert_array_equal(default, compose(image, [Layer(mask, SPEC.colour_for(1)),
                                                           Layer(second, SPEC.colour_for(2))]))
    assert render.cutout(image, mask, cropped=True).shape == (10, 10, 4)
    assert render.cutout(image, np.zeros((20, 20), bool), cropped=True).shape == (1, 1, 4)


def test_an_unexpected_failure_is_a_json_500_without_traceback(client, server, monkeypatch):
    from starlette.routing import Mount

    v1 = next(r.app for r in server.demo.app.routes if isinstance(r, Mount) and r.path == "/v1")

    def broken():
        raise RuntimeError("secret internals /srv/x.py")

    monkeypatch.setattr(v1.state.service, "models", broken)
    error = error_of(client.get("v1/models"), 500)
    assert error["code"] == "internal" and "secret" not in error["message"]


def test_a_prompt_the_backend_cannot_take_names_the_object(client, scene):
    body = {"image": data_uri(png(scene)), "model": "grabcut",
            "objects": [{"box": BOX}, {"points": [[50, 50]], "labels": [0]}]}
    error = error_of(segment(client, **body), 422)
    assert error["field"] == "objects.1" and error["message"].startswith("Object 1:")


def test_a_job_that_cannot_succeed_is_refused_at_submit(client, jobs_only, scene):
    image = data_uri(png(scene))
    refused = jobs_only.post("v1/jobs", json={"kind": "segment", "request": {
        "image": image, "objects": [{"points": [[10, 10]]}]}})
    assert error_of(refused, 403)["code"] == "forbidden"  # jobs scope alone cannot segment
    for request, code, field in (
            ({"image": image, "objects": []}, "no_prompt", "objects"),
            ({"image": image, "model": "nope", "objects": [{"points": [[1, 1]]}]},
             "unknown_model", "model"),
            ({"objects": [{"points": [[1, 1]]}]}, "bad_image", "image"),
            ({"image": image, "objects": [{"points": [[1, 1]] * 65}]}, "too_many_points",
             "objects.0.points")):
        answer = client.post("v1/jobs", json={"kind": "segment", "request": request})
        error = error_of(answer, 422)
        assert (error["code"], error.get("field")) == (code, field), error
