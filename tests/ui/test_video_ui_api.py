"""The ``/track`` endpoint through ``gradio_client`` against the running app (in-process,
127.0.0.1, the random-weight SAM 2.1 test model), with a 3-frame synthetic clip."""

from __future__ import annotations

import json
import re

import av
import pytest
from app_harness import app_config, running_app
from test_video_ui import make_clip

from sam_backends.masks import decode_rle

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def server(sam1_small, sam2_small, tmp_path_factory):
    from sam_backends.registry import OWLV2_ID
    from sam_backends.testing.text_models import small_owlv2_config, write_random_owlv2

    checkpoints = tmp_path_factory.mktemp("checkpoints")  # OWLv2 only: words are found with it
    write_random_owlv2(checkpoints / OWLV2_ID, small_owlv2_config(image_size=32))  # 4 boxes a frame
    config = app_config(sam1_small, sam2_small, checkpoints, video_max_frames=3)
    with running_app(config) as running:
        yield running


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-clips")
    return {"short": make_clip(folder / "short.mp4", frames=3),
            "long": make_clip(folder / "long.mp4", frames=8)}


def call(url, clip, prompts, model="test-sam2-small", stride=1, max_frames=0):
    client = gradio_client.Client(url, verbose=False)
    text = prompts if isinstance(prompts, str) else json.dumps(prompts)
    return client.predict(gradio_client.handle_file(str(clip)), model, text, stride, 0, 0,
                          max_frames, api_name="/track")


def test_track_returns_coco_rle_and_an_h264_overlay(server, clips):
    prompts = {"objects": [{"id": 3, "name": "square", "frame": 1, "box": [12, 18, 40, 46],
                            "points": [[26, 32]], "labels": [1]}]}
    coco, overlay = call(server.url, clips["short"], prompts)
    assert coco["format"] == "coco" and coco["model_id"] == "test-sam2-small"
    assert coco["num_frames"] == 3 and coco["frame_indices"] == [0, 1, 2]
    assert coco["fps"] == pytest.approx(10.0) and coco["size"] == [64, 96]
    assert coco["objects"] == [{"id": 3, "name": "square", "category_id": 1}]
    assert [image["frame_index"] for image in coco["images"]] == [0, 1, 2]
    # Random weights: a frame's mask may be empty (no annotation there); those that are kept
    # belong to object 3, on a frame of the clip, and decode to their stated area.
    for annotation in coco["annotations"]:
        assert annotation["track_id"] == 3 and annotation["image_id"] in (1, 2, 3)
        mask = decode_rle(annotation["segmentation"])
        assert mask.shape == (64, 96) and mask.sum() == annotation["area"] > 0
    assert coco["timings"]["track_s"] > 0
    with av.open(overlay) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in container.decode(video=0)) == 3


@pytest.mark.parametrize("prompts, message", [
    ("", "JSON text"),
    ("{\"objects\": []}", "at least one entry"),
    ({"objects": [{"id": 1, "frame": 0}]}, "no points and no box"),
    ({"objects": [{"id": 0, "box": [1, 1, 9, 9]}]}, "whole number >= 1"),
    ({"objects": [{"id": 1, "box": [1, 1, 9, 9], "colour": "red"}]}, "Unknown prompt key"),
    ({"objects": [{"id": 1, "frame": 9, "box": [1, 1, 9, 9]}]}, "not among the 3"),
    ({"objects": [{"id": 1, "box": [1, 1, 900, 9]}]}, "outside"),
])
def test_bad_prompts_are_refused_clearly(server, clips, prompts, message):
    with pytest.raises(Exception, match=message):
        call(server.url, clips["short"], prompts)


def test_limits_and_models_are_checked(server, clips):
    prompts = {"objects": [{"id": 1, "box": [12, 18, 40, 46]}]}
    with pytest.raises(Exception, match="more than the limit of 3"):
        call(server.url, clips["long"], prompts)
    with pytest.raises(Exception, match="cannot track video"):
        call(server.url, clips["short"], prompts, model="grabcut")


def test_track_by_words_names_objects_after_the_phrase(server, clips):
    """The MCP/gradio_client ``track`` tool takes words: detected with OWLv2 here (SAM 3 is
    not offered), each instance an object named after its phrase (random weights: what is
    found is arbitrary; threshold 0 makes every box a detection, up to the caps)."""
    coco, overlay = call(server.url, clips["short"], {"text": "square", "threshold": 0.0,
                                                      "re_detect_every": 2})
    assert coco["format"] == "coco" and coco["found_nothing"] is False
    tracked = coco["tracked_objects"]
    assert 1 <= len(tracked) <= 100 and all(t["phrase"] == "square" for t in tracked)
    assert {t["first_frame"] for t in tracked} <= {0, 2}
    assert [o["name"] for o in coco["objects"]] == [f"square {i + 1}" for i in range(len(
        coco["objects"]))]
    with av.open(overlay) as container:
        assert sum(1 for _ in container.decode(video=0)) == 3


@pytest.mark.parametrize("prompts, message", [
    ({"text": "dog", "threshold": 2}, "[0, 1]"),
    ({"text": "dog", "re_detect_every": -1}, "re_detect_every"),
    ({"text": "dog", "fps": 5}, "Unknown key"),
    ({"text": ""}, "empty"),
])
def test_track_by_words_refuses_bad_input(server, clips, prompts, message):
    with pytest.raises(Exception, match=re.escape(message)):
        call(server.url, clips["short"], prompts)
