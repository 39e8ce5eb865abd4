"""The evaluation command on synthetic images with known masks.

The GrabCut baseline and small random-weight SAM models run the real protocol; the tests check
the protocol's bookkeeping (which clicks, which logits fed back), the files written and their
columns, never the scores of random models.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam_backends import Backend, create_backend
from sam_backends.evaluation.click_simulation import first_click, next_click, run_click_protocol
from sam_backends.evaluation.evaluate import (
    CSV_COLUMNS,
    DatasetError,
    ModelEntry,
    Sample,
    evaluate,
    find_samples,
    main,
    write_results,
)
from sam_backends.evaluation.metrics import mask_iou

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def object_scene(height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A saturated ellipse on a grey textured background: (RGB image, its bool mask)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    cy, cx = rng.uniform(0.4, 0.6) * height, rng.uniform(0.4, 0.6) * width
    ry, rx = rng.uniform(0.15, 0.3) * height, rng.uniform(0.15, 0.3) * width
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    image = rng.normal(120, 25, size=(height, width, 1)).repeat(3, axis=2)
    image[mask] = rng.normal((220, 40, 40), 12, size=(int(mask.sum()), 3))
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_dataset(root: Path, count: int = 2) -> tuple[Path, Path]:
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for index in range(count):
        image, mask = object_scene(72 + 8 * index, 96, seed=index)
        Image.fromarray(image).save(images / f"scene{index}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(masks / f"scene{index}.png")
    return images, masks


@pytest.fixture(scope="module")
def grabcut():
    return create_backend("grabcut", device="cpu", precision="fp32")


class RecordingBackend(Backend):
    """Passes every call to a real backend and records the prompts and predictions."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.spec, self.device, self.precision = inner.spec, inner.device, inner.precision
        self.calls = []

    def encode(self, image):
        return self.inner.encode(image)

    def predict(self, embedding, prompts):
        prediction = self.inner.predict(embedding, prompts)
        self.calls.append((prompts, prediction))
        return prediction


def check_protocol(recorder: RecordingBackend, target: np.ndarray, trace, max_clicks: int):
    """Every click where the protocol says, given the masks the model really returned."""
    caps = recorder.spec.capabilities
    calls = recorder.calls
    assert len(calls) == len(trace.clicks) == len(trace.decode_seconds)
    assert 1 <= len(calls) <= max_clicks and len(trace.ious) == max_clicks
    assert trace.clicks[0] == first_click(target)
    previous_mask = previous_logits = None
    for k, (prompts, prediction) in enumerate(calls):
        assert list(prompts.points) == [(c.x, c.y) for c in trace.clicks[: k + 1]]
        assert list(prompts.labels) == [c.label for c in trace.clicks[: k + 1]]
        assert prompts.box is None
        assert prompts.multimask == (k == 0 and caps.multimask)
        if k > 0:
            assert trace.clicks[k] == next_click(previous_mask, target)
        if k > 0 and caps.mask_refinement:
            assert np.array_equal(prompts.mask_input, previous_logits)
        else:
            assert prompts.mask_input is None
        index = prediction.best_index if prompts.multimask else 0
        previous_mask = prediction.masks[index]
        previous_logits = prediction.low_res_logits[index : index + 1]
        assert trace.ious[k] == mask_iou(previous_mask, target)
    if len(calls) < max_clicks:  # stopped early: only when the mask became exact
        assert np.array_equal(previous_mask, target)
        assert set(trace.ious[len(calls):]) == {trace.ious[len(calls) - 1]}


def test_protocol_on_grabcut_follows_the_masks(grabcut):
    image, target = object_scene(80, 104, seed=3)
    recorder = RecordingBackend(grabcut)
    trace = run_click_protocol(recorder, recorder.encode(image), target, max_clicks=6)
    check_protocol(recorder, target, trace, 6)


@pytest.mark.parametrize("fixture", ["sam1_small", "sam2_small"])
def test_protocol_on_sam_feeds_back_logits(fixture, request):
    checkpoint = request.getfixturevalue(fixture)
    backend = create_backend(checkpoint.spec, checkpoint.path, device="cpu", precision="fp32")
    image, target = object_scene(64, 96, seed=5)
    recorder = RecordingBackend(backend)
    trace = run_click_protocol(recorder, recorder.encode(image), target, max_clicks=3)
    check_protocol(recorder, target, trace, 3)
    assert len(recorder.calls) >= 2  # random weights never give the exact mask at once


def test_protocol_refuses_mask_of_another_size(grabcut):
    image, target = object_scene(40, 50, seed=1)
    with pytest.raises(ValueError, match="must match"):
        run_click_protocol(grabcut, grabcut.encode(image), target[:, :-1])


def test_find_samples_pairs_by_stem(tmp_path):
    images, masks = write_dataset(tmp_path, count=3)
    (images / "notes.txt").write_text("not an image")
    samples = find_samples(images, masks)
    assert [s.name for s in samples] == ["scene0.png", "scene1.png", "scene2.png"]
    sample = samples[1].load()
    assert sample.image.shape == (80, 96, 3) and sample.target.shape == (80, 96)
    assert sample.target.dtype == bool and sample.target.any()


def test_dataset_problems_are_clear(tmp_path):
    images, masks = write_dataset(tmp_path, count=2)
    with pytest.raises(DatasetError, match="does not exist"):
        find_samples(tmp_path / "nowhere", masks)
    (masks / "scene1.png").unlink()
    with pytest.raises(DatasetError, match=r"1 image\(s\) have no mask.*scene1.png"):
        find_samples(images, masks)
    Image.fromarray(np.zeros((80, 96), np.uint8)).save(masks / "scene1.png")
    with pytest.raises(DatasetError, match="mask is empty"):
        find_samples(images, masks)[1].load()
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(masks / "scene1.png")
    with pytest.raises(DatasetError, match="must be the same size"):
        find_samples(images, masks)[1].load()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(images / "scene0.jpg")
    with pytest.raises(DatasetError, match="share the stem"):
        find_samples(images, masks)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_cli_with_grabcut_writes_all_files(tmp_path, capsys):
    images, masks = write_dataset(tmp_path, count=2)
    out = tmp_path / "out"
    status = main(["--models", "grabcut", "--images", str(images), "--masks", str(masks),
                   "--out", str(out), "--max-clicks", "5", "--no-progress"])
    assert status == 0
    assert "grabcut" in capsys.readouterr().out
    rows = read_csv(out / "results.csv")
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert [(r["kind"], r["image"]) for r in rows] == [
        ("model", ""), ("image", "scene0.png"), ("image", "scene1.png")
    ]
    model, per_image = rows[0], rows[1:]
    assert model["model_id"] == "grabcut" and model["images"] == "2" and model["error"] == ""
    for key in ("miou_1", "miou_3", "miou_5", "box_miou"):
        values = [float(r[key]) for r in per_image]
        assert float(model[key]) == pytest.approx(np.mean(values), abs=1e-5)
        assert all(0.0 <= v <= 1.0 for v in values)
    for key in ("noc_85", "noc_90"):
        assert all(1 <= float(r[key]) <= 5 for r in per_image)
    # GrabCut is deterministic and the scenes are easy: the box must find the ellipse
    assert float(model["box_miou"]) > 0.8

    document = json.loads((out / "results.json").read_text())
    assert document["protocol"]["max_clicks"] == 5
    assert len(document["models"]) == 1 and len(document["images"]) == 2
    assert len(document["models"][0]["miou_curve"]) == 5
    for entry in document["images"]:
        assert len(entry["ious"]) == 5
        assert 1 <= len(entry["clicks"]) <= 5
        assert entry["clicks"][0][2] == 1  # the first click is positive
    with Image.open(out / "miou_vs_clicks.png") as plot:
        assert plot.format == "PNG" and plot.width > 300 and plot.height > 200


def test_evaluate_random_model_baseline_and_a_broken_one(tmp_path, sam1_small, sam2_small,
                                                          grabcut):
    samples = [Sample(f"s{i}", *object_scene(64, 80, seed=10 + i)) for i in range(2)]
    missing = ModelEntry(sam1_small.spec, checkpoint=tmp_path / "absent.pth")
    result = evaluate(
        [missing, ModelEntry(sam2_small.spec, sam2_small.path), grabcut],
        samples, max_clicks=2, device="cpu", precision="fp32", progress=False,
    )  # fmt: skip
    ids = [m.model_id for m in result.models]
    assert ids == ["test-sam1-small", "test-sam2-small", "grabcut"]
    assert [m.error is None for m in result.models] == [False, True, True]
    assert "absent.pth" in result.models[0].error and "download" in result.models[0].error
    for model in result.models[1:]:
        assert [r.image for r in model.images] == ["s0", "s1"]
        assert all(len(r.ious) == 2 for r in model.images)
        assert all(r.clicks[0] == first_click(s.target) for r, s in zip(model.images, samples))
        summary = model.summary()
        assert summary["miou_3"] is None and summary["miou_5"] is None  # beyond the budget
        assert summary["seconds_per_click"] > 0 and summary["encode_seconds"] > 0

    paths = write_results(result, tmp_path / "out")
    rows = read_csv(paths["csv"])
    assert len(rows) == 3 + 2 * 2
    broken, sam2 = rows[0], rows[1]
    assert broken["kind"] == "model" and broken["images"] == "0" and "absent.pth" in broken["error"]
    assert broken["miou_1"] == "" and sam2["miou_3"] == "" and sam2["miou_1"] != ""
    assert [r["model_id"] for r in rows[3:]] == ["test-sam2-small"] * 2 + ["grabcut"] * 2
    assert paths["plot"].stat().st_size > 0


def test_cli_refuses_missing_checkpoint_before_running(tmp_path):
    images, masks = write_dataset(tmp_path, count=1)
    empty = tmp_path / "ckpts"
    empty.mkdir()
    completed = subprocess.run(
        [sys.executable, "-m", "sam_backends.evaluate", "--models", "grabcut", "sam-vit-h",
         "--images", str(images), "--masks", str(masks), "--out", str(tmp_path / "out"),
         "--checkpoint-dir", str(empty)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 2
    assert "sam-vit-h" in completed.stderr
    assert "python -m sam_backends download sam-vit-h" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "out").exists()


def test_cli_unknown_model_lists_valid_ids(tmp_path, capsys):
    images, masks = write_dataset(tmp_path, count=1)
    status = main(["--models", "sam-vit-x", "--images", str(images), "--masks", str(masks),
                   "--out", str(tmp_path / "out")])
    assert status == 2
    assert "sam2.1-tiny" in capsys.readouterr().err


def test_mask_files_in_every_layout(tmp_path):
    from sam_backends.errors import ImageError
    from sam_backends.evaluation.ground_truth import load_mask

    truth = np.zeros((6, 8), bool)
    truth[1:4, 2:7] = True
    palette = Image.fromarray(truth.astype(np.uint8) * 3, mode="L").convert("P")
    palette.putpalette([0, 0, 0] * 256)  # every index black: the index decides, not the colour
    palette.save(tmp_path / "palette.png")
    Image.fromarray(truth.astype(np.uint16) * 40000).save(tmp_path / "grey16.png")
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[truth, 1] = 7
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    rgba = np.full((6, 8, 4), 200, np.uint8)  # colour everywhere; alpha marks the object
    rgba[..., 3] = truth * 255
    Image.fromarray(rgba).save(tmp_path / "cutout.png")
    for name in ("palette.png", "grey16.png", "rgb.png", "cutout.png"):
        assert np.array_equal(load_mask(tmp_path / name), truth), name
    assert np.array_equal(load_mask((tmp_path / "rgb.png").read_bytes()), truth)
    with pytest.raises(ImageError, match="does not exist"):
        load_mask(tmp_path / "absent.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ImageError, match="not an image"):
        load_mask(tmp_path / "text.png")
