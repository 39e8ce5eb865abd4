"""``POST /v1/video``: a clip tracked as a job, by points/boxes or by words, each output format
read back by its own reader (pycocotools, PyAV, zipfile + PIL), bad input refused with the field
named, a cancelled job leaving no file, and the video scope.

The app runs on 127.0.0.1 with a random-weight SAM 2 test model and a random-weight OWLv2 folder
in its checkpoints folder (so "auto" finds words with OWLv2: SAM 3 is not offered here).
"""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from fractions import Fraction

import httpx
import numpy as np
import pytest
from app_harness import app_config, running_app
from one_file_server import OneFileServer
from PIL import Image

from sam_backends.registry import OWLV2_ID
from sam_backends.testing.text_models import small_owlv2_config, write_random_owlv2
from sam_backends.video.text_tracking import MAX_DETECTIONS_PER_FRAME
from server.security.keys import new_key

H, W = 48, 64
WAIT_S = 240


def draw(index: int) -> np.ndarray:
    frame = np.full((H, W, 3), 30, np.uint8)
    x = 6 + 3 * index
    frame[14:34, x:x + 18] = (220, 60, 40)
    return frame


def clip_bytes(frames: int, tmp_path) -> bytes:
    import av

    path = tmp_path / f"clip{frames}.mp4"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(10, 1))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for index in range(frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(draw(index), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path.read_bytes()


def data_uri(data: bytes, media: str = "video/mp4") -> str:
    return f"data:{media};base64," + base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def tokens():
    return {"segment": new_key("segment-only", frozenset({"segment", "jobs"})),
            "video": new_key("video", frozenset({"video", "jobs"}))}


@pytest.fixture(scope="module")
def server(sam1_small, sam2_small, tmp_path_factory, tokens):
    checkpoints = tmp_path_factory.mktemp("checkpoints")
    # 32 px at patch 16: 4 boxes a frame, so words at threshold 0 track a few objects, not 16
    write_random_owlv2(checkpoints / OWLV2_ID, small_owlv2_config(image_size=32))
    # Clips may be fetched from localhost (the test's own server), as an operator may allow.
    config = app_config(sam1_small, sam2_small, checkpoints, rate_limit_per_min=0,
                        url_fetch_hosts=("localhost",), url_fetch_allow_private=True)
    keys = json.dumps({"version": 1, "keys": [stored.to_json() for _, stored in tokens.values()]})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAMWB_API_KEYS", keys)
        patch.delenv("SAMWB_API_KEYS_FILE", raising=False)
        with running_app(config) as running:
            yield running


@pytest.fixture(scope="module")
def client(server, tokens):
    headers = {"Authorization": f"Bearer {tokens['video'][0]}"}
    with httpx.Client(base_url=server.url, timeout=60, headers=headers) as http:
        yield http


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return clip_bytes(4, tmp_path_factory.mktemp("clips"))


def finished(client, job_id: str) -> dict:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        state = client.get(f"v1/jobs/{job_id}").json()
        if state["status"] in ("succeeded", "failed", "canceled"):
            return state
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {WAIT_S} s: {state}")


def submit(client, **body) -> dict:
    response = client.post("v1/video", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "starting" and response.json()["kind"] == "video"
    return finished(client, response.json()["id"])


OBJECTS = [{"id": 2, "name": "block", "frame": 1, "box": [8, 12, 30, 36], "points": [[18, 24]]}]


def test_prompts_to_standard_coco_read_by_pycocotools(client, clip, tmp_path):
    from pycocotools.coco import COCO

    state = submit(client, video=data_uri(clip), objects=OBJECTS, output_format="coco_rle",
                   frame_stride=1)
    assert state["status"] == "succeeded", state
    result = state["result"]
    assert result["num_frames"] == 4 and (result["width"], result["height"]) == (W, H)
    assert result["media_type"] == "application/json" and not result["found_nothing"]
    file = client.get(result["file_url"])
    assert file.status_code == 200 and len(file.content) == result["file_bytes"]
    path = tmp_path / "coco.json"
    path.write_bytes(file.content)
    coco = COCO(str(path))
    assert sorted(coco.getImgIds()) == [1, 2, 3, 4]
    annotations = coco.loadAnns(coco.getAnnIds())
    assert {a["track_id"] for a in annotations} <= {2}
    reported = {f["frame"]: f for o in result["objects"] for f in o["frames"]}
    for annotation in annotations:  # the JSON and the result tell the same story
        row = reported[annotation["image_id"] - 1]
        assert coco.annToMask(annotation).sum() == annotation["area"] == row["area"]
    assert [o["name"] for o in result["objects"]] in ([], ["block"])
    assert client.get(result["file_url"], headers={"Authorization": "Bearer nope"}
                      ).status_code == 401


@pytest.mark.slow  # a default-run budget: one job per format is enough there
def test_upload_to_mask_pngs_and_overlay_frames(client, clip):
    for output, check in (("masks", "masks"), ("frames", "frames")):
        response = client.post("v1/video/upload", files={"file": ("c.mp4", clip, "video/mp4")},
                               data={"request": json.dumps({"objects": OBJECTS,
                                                            "output_format": output,
                                                            "frame_stride": 1,
                                                            "mask_color": "#00ff00"})})
        assert response.status_code == 202, response.text
        state = finished(client, response.json()["id"])
        assert state["status"] == "succeeded", state
        data = client.get(state["result"]["file_url"]).content
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            images = [np.asarray(Image.open(archive.open(n))) for n in names]
        if check == "frames":
            assert names == [f"frame_{i:06d}.png" for i in range(4)]
            assert all(img.shape == (H, W, 3) for img in images)
        else:
            assert all(n.startswith("frame_") and n.endswith("_object_2.png") for n in names)
            assert all(img.shape == (H, W) for img in images)


def test_overlay_mp4_is_h264_with_every_frame(client, clip, tmp_path):
    import av

    state = submit(client, video=data_uri(clip), objects=OBJECTS, frame_stride=1)
    assert state["status"] == "succeeded" and state["result"]["output_format"] == "mp4"
    path = tmp_path / "overlay.mp4"
    path.write_bytes(client.get(state["result"]["file_url"]).content)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in container.decode(video=0)) == 4


def test_words_with_owlv2_name_the_objects_after_the_phrase(client, clip):
    state = submit(client, video=data_uri(clip), prompt="block", threshold=0.0,
                   re_detect_every=2, frame_stride=1, output_format="coco_rle")
    assert state["status"] == "succeeded", state
    result = state["result"]
    # Random weights: what is found is arbitrary, but every object is named after the phrase,
    # starts on a detection frame, and the per-frame cap holds.
    assert 1 <= len(result["objects"]) <= 100
    assert all(o["name"].startswith("block ") for o in result["objects"])
    assert all(o["first_frame"] in (0, 2) for o in result["objects"])
    assert result["timings"]["detect_s"] >= 0 and set(result["capped_frames"]) <= {0, 2}
    assert MAX_DETECTIONS_PER_FRAME == 50


@pytest.mark.parametrize("body, status, field", [
    ({"prompt": "dog", "threshold": 1.5}, 422, "threshold"),
    ({"prompt": "dog", "re_detect_every": -1}, 422, "re_detect_every"),
    ({"prompt": "dog", "objects": OBJECTS}, 422, None),
    ({}, 422, None),
    ({"prompt": "dog", "fps": 10}, 422, "fps"),
    ({"prompt": ", ".join(f"thing {i}" for i in range(500))}, 422, "prompt"),
    ({"prompt": "dog", "video": "data:image/png;base64,AAAA"}, 422, "video"),
    ({"prompt": "dog", "video": "https://127.0.0.1/clip.mp4"}, 422, None),
    ({"prompt": "dog", "output_format": "gif"}, 422, "output_format"),
])
def test_bad_input_is_refused_before_any_work(client, clip, body, status, field):
    body = {"video": data_uri(clip), **body}
    response = client.post("v1/video", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and "Traceback" not in response.text
    if field is not None:
        assert field in (error["field"] or "")


@pytest.mark.slow  # a default-run budget: one job per format is enough there
def test_re_detect_every_zero_and_huge_are_accepted(client, clip):
    for every in (0, 10**9):
        state = submit(client, video=data_uri(clip), prompt="block", threshold=0.0,
                       re_detect_every=every, frame_stride=1, max_frames=2,
                       output_format="coco_rle")
        assert state["status"] == "succeeded", state
        assert all(o["first_frame"] == 0 for o in state["result"]["objects"])


def test_the_video_scope_is_needed(server, tokens, clip):
    headers = {"Authorization": f"Bearer {tokens['segment'][0]}"}
    response = httpx.post(server.url + "v1/video", headers=headers, timeout=30,
                          json={"video": data_uri(clip), "prompt": "dog"})
    assert response.status_code == 403, response.text


def test_a_job_cancelled_mid_clip_leaves_no_file(server, client, tmp_path):
    long_clip = clip_bytes(24, tmp_path)
    response = client.post("v1/video", json={"video": data_uri(long_clip), "objects": OBJECTS,
                                             "frame_stride": 1})
    job_id = response.json()["id"]
    deadline = time.monotonic() + WAIT_S
    while client.get(f"v1/jobs/{job_id}").json()["progress"] <= 0.05:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert client.delete(f"v1/jobs/{job_id}").json()["status"] == "canceled"
    folders = server.ctx.temp.path / "api-video-jobs"
    while any(folders.iterdir()):  # the runner stops at its next frame and removes its folder
        assert time.monotonic() < deadline, list(folders.iterdir())
        time.sleep(0.1)
    state = client.get(f"v1/jobs/{job_id}").json()
    assert state["status"] == "canceled" and state["result"] is None


@pytest.fixture(scope="module")
def clip_server(clip):
    server = OneFileServer("clip.mp4", clip, "video/mp4")
    yield server
    server.close()


def test_clip_urls_from_allowed_hosts_only_and_never_redirected(client, clip_server):
    url = f"http://localhost:{clip_server.port}/clip.mp4"
    accepted = client.post("v1/video", json={"video": url, "objects": OBJECTS})
    assert accepted.status_code == 202, accepted.text
    client.delete(f"v1/jobs/{accepted.json()['id']}")
    for refused in (url.replace("clip.mp4", "redirect"),  # a redirect is not followed
                    f"http://127.0.0.1:{clip_server.port}/clip.mp4"):  # not an allowed host
        response = client.post("v1/video", json={"video": refused, "objects": OBJECTS})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "url_refused"
        assert "Traceback" not in response.text


def test_the_clip_fetcher_refuses_private_addresses(clip_server):
    """Without the operator's allow_private, a host that resolves to a loopback or private
    address is refused, as for images (the video fetcher keeps the image fetcher's rules)."""
    from types import SimpleNamespace

    from server.rest.images import FetchError, FetchPolicy, UrlFetcher
    from server.rest.video import VideoJobs

    config = SimpleNamespace(video_file_bytes=1 << 20, request_timeout_s=5)
    service = SimpleNamespace(ctx=SimpleNamespace(config=config),
                              fetcher=UrlFetcher(FetchPolicy(hosts=("localhost",))))
    with pytest.raises(FetchError, match="private, loopback"):
        VideoJobs(service)._clip_bytes(f"https://localhost:{clip_server.port}/clip.mp4")
