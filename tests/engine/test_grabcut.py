"""The no-weights GrabCut baseline on synthetic scenes whose true object mask is known."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sam_backends.errors import PromptError, SamBackendError, UnsupportedPromptError
from sam_backends.families.grabcut import backend as grabcut_backend
from sam_backends.registry import get_spec
from sam_backends.types import LOW_RES_SIZE, Prompts


def make_scene(height: int = 240, width: int = 320, seed: int = 0):
    """A textured orange ellipse on a textured blue/green background.

    Returns (image uint8 HxWx3, true mask bool HxW, a box around the object with a margin,
    the object's centre (x, y)).
    """
    import cv2

    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    yy, xx = rows * (320 / max(height, width)), cols * (320 / max(height, width))
    blobs = cv2.resize(rng.uniform(0, 1, (6, 8, 3)).astype(np.float32), (width, height),
                       interpolation=cv2.INTER_CUBIC)
    background = np.stack(
        [40 + 60 * blobs[..., 0], 100 + 80 * blobs[..., 1], 90 + 100 * blobs[..., 2]], -1
    )
    background += (20 * np.sin(xx / 5.0) * np.cos(yy / 9.0))[..., None]
    checker = ((xx // 8 + yy // 8) % 2) * 35
    obj = np.stack([190 + checker * 0.6, 90 + checker, 40 + checker * 0.5], -1)
    obj *= (0.8 + 0.2 * xx / 320)[..., None]  # shading across the object
    cy, cx, ry, rx = 0.47 * height, 0.52 * width, 0.27 * height, 0.3 * width
    inside = ((cols - cx) / rx) ** 2 + ((rows - cy) / ry) ** 2 <= 1.0
    image = np.where(inside[..., None], obj, background) + rng.normal(0, 10, (height, width, 3))
    margin_x, margin_y = 0.06 * width, 0.06 * height
    box = (cx - rx - margin_x, cy - ry - margin_y, cx + rx + margin_x, cy + ry + margin_y)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), inside, box, (cx, cy)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(scope="module")
def backend():
    return grabcut_backend.load(get_spec("grabcut"), None, "cpu", "fp32")


@pytest.fixture(scope="module")
def scene():
    return make_scene()


@pytest.fixture(scope="module")
def embedding(backend, scene):
    return backend.encode(scene[0])


def test_box_prompt_finds_the_object(backend, scene, embedding):
    image, truth, box, _ = scene
    prediction = backend.predict(embedding, Prompts(box=box))
    assert prediction.masks.shape == (1, *image.shape[:2])
    assert prediction.masks.dtype == np.bool_
    assert iou(prediction.masks[0], truth) >= 0.9


@pytest.mark.parametrize("seed", [1, 2])
def test_box_prompt_on_other_scenes(backend, seed):
    image, truth, box, _ = make_scene(200, 300, seed=seed)
    prediction = backend.predict(backend.encode(image), Prompts(box=box))
    assert iou(prediction.masks[0], truth) >= 0.9


def test_points_only(backend, scene, embedding):
    _, truth, _, centre = scene
    prompts = Prompts(points=[centre, (10, 10)], labels=[1, 0])
    prediction = backend.predict(embedding, prompts)
    assert iou(prediction.masks[0], truth) >= 0.8


def test_box_and_points_combine(backend, scene, embedding):
    _, truth, box, centre = scene
    corner = (box[0] + 3, box[1] + 3)  # inside the box, outside the ellipse
    prompts = Prompts(box=box, points=[centre, corner], labels=[1, 0])
    mask = backend.predict(embedding, prompts).masks[0]
    assert iou(mask, truth) >= 0.9
    assert mask[int(centre[1]), int(centre[0])]
    assert not mask[int(corner[1]), int(corner[0])]


def test_seeds_are_obeyed(backend, scene, embedding):
    """A background point inside the object and a foreground point on the background are sure
    labels: the mask follows them there even though the colours say otherwise."""
    _, truth, box, centre = scene
    inner = (int(centre[0]), int(centre[1]))
    outer = (int(box[0]) + 2, int(box[1]) + 2)
    assert truth[inner[1], inner[0]] and not truth[outer[1], outer[0]]
    prompts = Prompts(box=box, points=[inner, outer], labels=[0, 1])
    mask = backend.predict(embedding, prompts).masks[0]
    assert not mask[inner[1], inner[0]]
    assert mask[outer[1], outer[0]]


def test_deterministic(backend, scene):
    image, _, box, centre = scene
    prompts = Prompts(box=box, points=[centre], labels=[1])
    first = backend.predict(backend.encode(image), prompts)
    second = backend.predict(backend.encode(image.copy()), prompts)
    np.testing.assert_array_equal(first.masks, second.masks)
    np.testing.assert_array_equal(first.scores, second.scores)
    np.testing.assert_array_equal(first.low_res_logits, second.low_res_logits)


def test_large_image_is_downscaled_and_mask_upscaled(backend):
    image, truth, box, _ = make_scene(1200, 1600, seed=3)
    embedding = backend.encode(image)
    assert embedding.original_size == (1200, 1600)
    assert max(embedding.input_size) == grabcut_backend.WORK_SIDE
    prediction = backend.predict(embedding, Prompts(box=box))
    assert prediction.masks.shape == (1, 1200, 1600)
    assert iou(prediction.masks[0], truth) >= 0.9


def test_low_res_logits_follow_the_mask_in_sams_frame(backend, scene, embedding):
    import cv2

    image, _, box, _ = scene  # 240 x 320: SAM's frame holds it as 192 x 256, padded below
    prediction = backend.predict(embedding, Prompts(box=box))
    logits = prediction.low_res_logits
    assert logits.shape == (1, LOW_RES_SIZE, LOW_RES_SIZE) and logits.dtype == np.float32
    assert (logits[0, 192:, :] < 0).all()  # padding is background
    back = cv2.resize((logits[0, :192, :] > 0).astype(np.uint8), (320, 240),
                      interpolation=cv2.INTER_NEAREST).astype(bool)
    assert iou(back, prediction.masks[0]) >= 0.95


def test_score_measures_colour_separation(backend, scene, embedding):
    _, _, box, _ = scene
    clean = float(backend.predict(embedding, Prompts(box=box)).scores[0])
    noise = np.random.default_rng(5).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    noisy = float(backend.predict(backend.encode(noise), Prompts(box=box)).scores[0])
    assert 0.0 <= noisy < clean <= 1.0
    assert clean > 0.9


def test_multimask_returns_one_mask(backend, scene, embedding):
    _, _, box, _ = scene
    prediction = backend.predict(embedding, Prompts(box=box, multimask=True))
    assert prediction.masks.shape[0] == 1
    assert prediction.scores.shape == (1,)
    assert prediction.low_res_logits.shape == (1, LOW_RES_SIZE, LOW_RES_SIZE)


def test_mask_input_is_refused(backend, scene, embedding):
    _, _, box, _ = scene
    previous = backend.predict(embedding, Prompts(box=box)).low_res_logits
    with pytest.raises(UnsupportedPromptError, match="cannot refine"):
        backend.predict(embedding, Prompts(box=box, mask_input=previous))


def test_background_points_alone_are_refused(backend, embedding):
    with pytest.raises(UnsupportedPromptError, match="foreground point"):
        backend.predict(embedding, Prompts(points=[(20, 20)], labels=[0]))


def test_bad_prompts_are_prompt_errors(backend, embedding):
    with pytest.raises(PromptError, match="No prompt"):
        backend.predict(embedding, Prompts())
    with pytest.raises(PromptError, match="outside"):
        backend.predict(embedding, Prompts(points=[(320, 10)], labels=[1]))


def test_box_covering_the_whole_image(backend, scene, embedding):
    image, truth, _, _ = scene
    prediction = backend.predict(embedding, Prompts(box=(0, 0, 320, 240)))
    assert prediction.masks.shape == (1, 240, 320)
    assert prediction.masks[0][truth].mean() > 0.5  # the object is mostly kept


def test_embedding_from_another_model_is_refused(backend, embedding):
    from dataclasses import replace

    foreign = replace(embedding, model_id="sam-vit-b")
    with pytest.raises(SamBackendError, match="sam-vit-b"):
        backend.predict(foreign, Prompts(points=[(10, 10)], labels=[1]))


def test_pil_input_and_embedding_contents(backend, scene):
    from PIL import Image

    image = scene[0]
    embedding = backend.encode(Image.fromarray(image))
    assert embedding.model_id == "grabcut" and embedding.precision == "fp32"
    assert embedding.original_size == (240, 320) == embedding.input_size
    np.testing.assert_array_equal(embedding.features["image"], image)
    assert not embedding.features["image"].flags.writeable
    assert embedding.nbytes == image.nbytes


def test_no_state_between_images(backend):
    """Interleaved images from two 'users', decoded from several threads, give the same masks
    as when each is decoded alone."""
    scenes = [make_scene(seed=s) for s in (4, 5)]
    embeddings = [backend.encode(s[0]) for s in scenes]
    alone = [backend.predict(e, Prompts(box=s[2])).masks for e, s in zip(embeddings, scenes)]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = backend.predict(embeddings[i % 2], Prompts(box=scenes[i % 2][2])).masks

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, masks in results.items():
        np.testing.assert_array_equal(masks, alone[i % 2])


def test_factory_builds_grabcut_without_weights(tmp_path):
    from sam_backends import create_backend

    backend = create_backend("grabcut", device="cpu", precision="fp32", checkpoint_dir=tmp_path)
    assert backend.model_id == "grabcut" and backend.device == "cpu"
    image, truth, box, _ = make_scene(120, 160, seed=6)
    mask = backend.predict(backend.encode(image), Prompts(box=box)).masks[0]
    assert iou(mask, truth) >= 0.9


def test_points_on_a_large_image_run_coarse_to_fine(backend, monkeypatch):
    """Points-only prompts on a 2250 x 1500 photo-sized scene: the coarse pass runs at
    POINT_COARSE_SIDE, the fine pass only on the edge band, and the full-resolution mask still
    covers the object."""
    image, truth, _, centre = make_scene(1500, 2250, seed=7)
    embedding = backend.encode(image)
    sizes: list[tuple[int, int]] = []
    single_pass = grabcut_backend._single_pass

    def recording(work, prompts, scale):
        sizes.append(work.shape[:2])
        return single_pass(work, prompts, scale)

    monkeypatch.setattr(grabcut_backend, "_single_pass", recording)
    prediction = backend.predict(embedding, Prompts(points=[centre], labels=[1]))
    assert [max(size) for size in sizes] == [grabcut_backend.POINT_COARSE_SIDE]
    assert prediction.masks.shape == (1, 1500, 2250)
    assert iou(prediction.masks[0], truth) >= 0.85
    assert 0.0 < float(prediction.scores[0]) <= 1.0


def test_fast_and_single_pass_points_agree_on_a_clear_object():
    image, truth, _, centre = make_scene(600, 900, seed=8)
    prompts = Prompts(points=[centre, (10, 10)], labels=[1, 0])
    masks = {}
    for fast in (True, False):
        backend = grabcut_backend.load(get_spec("grabcut"), None, "cpu", "fp32", fast_points=fast)
        masks[fast] = backend.predict(backend.encode(image), prompts).masks[0]
        assert iou(masks[fast], truth) >= 0.85
    assert iou(masks[True], masks[False]) >= 0.85


def test_boxes_take_the_single_pass_either_way(scene):
    image, _, box, centre = scene
    results = []
    for fast in (True, False):
        backend = grabcut_backend.load(get_spec("grabcut"), None, "cpu", "fp32", fast_points=fast)
        embedding = backend.encode(image)
        results.append(backend.predict(embedding, Prompts(box=box, points=[centre], labels=[1])))
    np.testing.assert_array_equal(results[0].masks, results[1].masks)
    np.testing.assert_array_equal(results[0].scores, results[1].scores)


def test_empty_coarse_result_gives_an_empty_mask(backend, monkeypatch):
    image, _, _, centre = make_scene(600, 900, seed=9)
    monkeypatch.setattr(grabcut_backend, "_single_pass",
                        lambda work, prompts, scale: (np.zeros(work.shape[:2], bool), 0.0))
    prediction = backend.predict(backend.encode(image), Prompts(points=[centre], labels=[1]))
    assert prediction.masks.shape == (1, 600, 900) and not prediction.masks.any()
    assert float(prediction.scores[0]) == 0.0
