"""The public ``/segment`` and ``/models`` endpoints through ``gradio_client`` against the
running app (in-process, 127.0.0.1, random-weight models and GrabCut)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from app_harness import app_config, running_app
from PIL import Image

from sam_backends import Prompts, create_backend
from sam_backends.masks import decode_rle
from sam_backends.testing.random_models import synthetic_image

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def server(sam1_small, sam2_small, tmp_path_factory):
    config = app_config(sam1_small, sam2_small, tmp_path_factory.mktemp("no-checkpoints"),
                        max_image_pixels=200_000, max_file_size="300kb")
    with running_app(config) as running:
        yield running


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-images")
    paths = {}
    for name, seed, size in (("scene.png", 1, (120, 160)), ("other.png", 2, (90, 110))):
        paths[name] = folder / name
        Image.fromarray(synthetic_image(*size, seed=seed)).save(paths[name])
    paths["corrupt.png"] = folder / "corrupt.png"
    paths["corrupt.png"].write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    paths["huge.png"] = folder / "huge.png"
    Image.new("RGB", (600, 400)).save(paths["huge.png"])  # 240k pixels > 200k limit
    paths["heavy.png"] = folder / "heavy.png"  # ~430 KB of noise > the 300 KB upload limit
    noise = np.random.default_rng(0).integers(0, 256, (380, 380, 3), dtype=np.uint8)
    Image.fromarray(noise).save(paths["heavy.png"])
    return paths


def call(url, image, model, prompts):
    client = gradio_client.Client(url, verbose=False)
    return client.predict(gradio_client.handle_file(str(image)), model, json.dumps(prompts),
                          api_name="/segment")


def test_segment_matches_the_engine_exactly(server, images, sam2_small):
    prompts = {"points": [[80, 60], [20, 100]], "labels": [1, 0], "box": [30, 20, 140, 110],
               "multimask": True}
    result, cutout = call(server.url, images["scene.png"], "test-sam2-small", prompts)
    backend = create_backend(sam2_small.spec, checkpoint=sam2_small.path, device="cpu",
                             precision="fp32")
    image = np.asarray(Image.open(images["scene.png"]).convert("RGB"))
    expected = backend.predict(backend.encode(image),
                               Prompts(points=[(80, 60), (20, 100)], labels=[1, 0],
                                       box=(30, 20, 140, 110), multimask=True))
    assert result["model_id"] == "test-sam2-small"
    assert result["image"] == {"file_name": "scene.png", "height": 120, "width": 160}
    assert len(result["masks"]) == 3 and result["best"] == expected.best_index
    for record, mask, score in zip(result["masks"], expected.masks, expected.scores):
        np.testing.assert_array_equal(decode_rle(record["segmentation"]), mask)
        assert record["score"] == pytest.approx(float(score), abs=1e-5)
        assert record["area"] == int(mask.sum())
    assert set(result["timings"]) == {"encode_s", "encode_cached", "decode_s", "total_s"}
    rgba = np.asarray(Image.open(cutout))
    assert rgba.shape == (120, 160, 4)
    best = expected.masks[expected.best_index]
    np.testing.assert_array_equal(rgba[:, :, 3] == 255, best)
    assert (rgba[~best] == 0).all()
    np.testing.assert_array_equal(rgba[best, :3], image[best])
    # Same image again: the embedding comes from the shared cache.
    again, _ = call(server.url, images["scene.png"], "test-sam2-small", {"box": [30, 20, 140, 110]})
    assert again["timings"]["encode_cached"] is True and len(again["masks"]) == 1


def test_labels_default_to_foreground_and_grabcut_works_offline(server, images):
    result, cutout = call(server.url, images["scene.png"], "grabcut", {"box": [30, 20, 140, 110]})
    assert result["model_id"] == "grabcut" and result["masks"][0]["area"] > 0
    points_only, _ = call(server.url, images["scene.png"], "test-sam1-small",
                          {"points": [[80, 60]]})
    assert len(points_only["masks"]) == 1


@pytest.mark.parametrize("image, model, prompts, message", [
    ("scene.png", "test-sam2-small", "{not json", "not valid JSON"),
    ("scene.png", "test-sam2-small", {"points": [[500, 10]]}, "outside the 160x120 image"),
    ("scene.png", "test-sam2-small", {"dots": []}, "Unknown prompt key"),
    ("scene.png", "test-sam2-small", {}, "No prompt given"),
    ("scene.png", "sam-vit-h", {"box": [1, 1, 50, 50]}, "not offered here"),
    ("scene.png", "sam2.1-tiny", {"box": [1, 1, 50, 50]}, "python -m sam_backends download"),
    ("corrupt.png", "grabcut", {"box": [1, 1, 50, 50]}, "corrupt.png"),
    ("huge.png", "grabcut", {"box": [1, 1, 50, 50]}, "more than the limit"),
])
def test_user_errors_come_back_as_friendly_messages(server, images, image, model, prompts,
                                                    message):
    text = prompts if isinstance(prompts, str) else json.dumps(prompts)
    client = gradio_client.Client(server.url, verbose=False)
    with pytest.raises(Exception) as info:
        client.predict(gradio_client.handle_file(str(images[image])), model, text,
                       api_name="/segment")
    assert message in str(info.value)
    assert "Traceback" not in str(info.value) and "/tmp/gradio" not in str(info.value)
    result, _ = call(server.url, images["scene.png"], "grabcut", {"box": [5, 5, 60, 60]})
    assert result["masks"]  # the app keeps running


def test_uploads_over_the_size_limit_are_refused(server, images):
    import httpx

    assert images["heavy.png"].stat().st_size > 300_000
    with pytest.raises(Exception, match="exceeds the maximum file size"):  # the client checks
        call(server.url, images["heavy.png"], "grabcut", {"box": [1, 1, 50, 50]})
    with open(images["heavy.png"], "rb") as handle:  # and the server enforces it
        response = httpx.post(server.url + "gradio_api/upload",
                              files={"files": ("heavy.png", handle, "image/png")})
    assert response.status_code == 413


def test_two_clients_interleaving_get_their_own_results(server, images):
    jobs = {"scene.png": {"box": [30, 20, 140, 110]}, "other.png": {"box": [10, 10, 100, 80]}}
    results = {}

    def run(name):
        results[name] = [call(server.url, images[name], "test-sam2-small", jobs[name])[0]
                         for _ in range(2)]

    threads = [threading.Thread(target=run, args=(name,)) for name in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results["scene.png"][0]["image"]["file_name"] == "scene.png"
    assert results["other.png"][1]["image"]["height"] == 90
    for name in jobs:
        first, second = results[name]
        assert first["masks"][0]["segmentation"] == second["masks"][0]["segmentation"]


def test_models_endpoint_lists_presence(server):
    client = gradio_client.Client(server.url, verbose=False)
    rows = {row["model_id"]: row for row in client.predict(api_name="/models")}
    assert rows["grabcut"]["present"] and rows["test-sam2-small"]["present"]
    assert not rows["sam2.1-tiny"]["present"]
    assert rows["sam2.1-tiny"]["download_command"] == "python -m sam_backends download sam2.1-tiny"
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    # UI events are private; the public endpoints are the documented ones
    assert set(api) == {"/segment", "/models", "/segment_everything", "/segment_text", "/track"}


def test_oversized_and_mistyped_prompts_are_refused_before_model_work(server, images):
    """20,000 points once cost 67 s and 7.4 GB; now a message naming the limit, at once."""
    import time

    client = gradio_client.Client(server.url, verbose=False)
    image = gradio_client.handle_file(str(images["scene.png"]))
    huge = json.dumps({"points": [[123.25, 45.5]] * 20_000, "labels": [1] * 20_000})  # 274 KB
    compact = json.dumps({"points": [[1, 1]] * 5_000}, separators=(",", ":"))  # under 64 KiB
    cases = [
        (huge, "more than the limit of 65,536"),
        (compact, "At most 64 points per object"),
        (json.dumps({"points": [[80, 60]], "multimask": "false"}), "multimask must be a JSON "
                                                                  "boolean"),
        (json.dumps({"points": [["100", 60]]}), "points[0][0] must be a JSON number"),
        ("[" * 20_000 + "]" * 20_000, "nests 20000 levels deep"),
        ('{"points": [[' + "9" * 5000 + ", 1]]}", "5,000 characters"),
    ]
    for text, message in cases:
        start = time.perf_counter()
        with pytest.raises(Exception) as info:
            client.predict(image, "grabcut", text, api_name="/segment")
        assert message in str(info.value)
        assert time.perf_counter() - start < 10
    result, _ = call(server.url, images["scene.png"], "grabcut",
                     {"points": [[80, 60]] * 64, "multimask": False})
    assert result["masks"]  # exactly the limit still works
