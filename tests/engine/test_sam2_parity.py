"""SAM 2.1 backend == upstream ``SAM2ImagePredictor`` (fp32), from the same checkpoint file.

The backend loads the file through the project's loader; the upstream model loads it through
``build_sam2(config, ckpt_path=...)``. Small random-weight architecture unless marked ``slow``.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from parity import (
    IMAGE_SHAPES,
    PROMPT_CASES,
    assert_matches_upstream,
    prompts_for,
    upstream_predict,
)

from sam_backends import PromptError, Prompts, SamBackendError, create_backend, get_spec
from sam_backends.testing.random_models import synthetic_image, write_random_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")


def _upstream_model(spec, path):
    from sam2.build_sam import build_sam2

    return build_sam2(
        spec.arch["config"],
        ckpt_path=str(path),
        device="cpu",
        hydra_overrides_extra=list(spec.arch["overrides"]),
    )


def _assert_features_match(embedding, predictor, atol=1e-6):
    ours, theirs = embedding.features, predictor._features
    torch.testing.assert_close(ours["image_embed"], theirs["image_embed"], rtol=0, atol=atol)
    assert len(ours["high_res_feats"]) == len(theirs["high_res_feats"]) == 2
    for mine, upstream in zip(ours["high_res_feats"], theirs["high_res_feats"], strict=True):
        torch.testing.assert_close(mine, upstream, rtol=0, atol=atol)


@pytest.fixture(scope="module")
def backend(sam2_small):
    return create_backend(
        sam2_small.spec, checkpoint=sam2_small.path, device="cpu", precision="fp32"
    )


@pytest.fixture(scope="module")
def encoded(backend, sam2_small):
    """name -> (image, backend embedding, upstream predictor with that image set); lazy."""
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    model = _upstream_model(sam2_small.spec, sam2_small.path)
    done = {}

    def get(name):
        if name not in done:
            image = synthetic_image(*IMAGE_SHAPES[name], seed=list(IMAGE_SHAPES).index(name))
            predictor = SAM2ImagePredictor(model)
            predictor.set_image(image)
            done[name] = (image, backend.encode(image), predictor)
        return done[name]

    return get


@pytest.mark.parametrize("name", list(IMAGE_SHAPES))
def test_embedding_matches_upstream(encoded, name):
    image, embedding, predictor = encoded(name)
    assert embedding.model_id == "test-sam2-small" and embedding.precision == "fp32"
    assert embedding.original_size == image.shape[:2] == tuple(predictor._orig_hw[0])
    assert embedding.input_size == (1024, 1024)  # SAM 2 stretches, it does not pad
    features = embedding.features
    assert tuple(features["image_embed"].shape) == (1, 256, 64, 64)
    assert [tuple(f.shape) for f in features["high_res_feats"]] == [
        (1, 32, 256, 256),
        (1, 64, 128, 128),
    ]
    assert embedding.nbytes == (256 * 64 * 64 + 32 * 256 * 256 + 64 * 128 * 128) * 4
    _assert_features_match(embedding, predictor)


def test_pil_image_input_matches_upstream(backend, encoded):
    from PIL import Image
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    image, embedding, predictor = encoded("odd")
    from_pil = backend.encode(Image.fromarray(image))
    upstream = SAM2ImagePredictor(predictor.model)
    upstream.set_image(Image.fromarray(image))
    assert from_pil.original_size == image.shape[:2]
    _assert_features_match(from_pil, upstream)
    _assert_features_match(from_pil, predictor)


@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("case", list(PROMPT_CASES))
@pytest.mark.parametrize("name", list(IMAGE_SHAPES))
def test_masks_match_upstream(backend, encoded, name, case, multimask):
    image, embedding, predictor = encoded(name)
    prompts = prompts_for(case, image.shape[:2], multimask=multimask)
    prediction = backend.predict(embedding, prompts)
    assert_matches_upstream(prediction, upstream_predict(predictor, prompts), image.shape[:2])


@pytest.mark.parametrize("name", ["landscape", "portrait"])
def test_refinement_with_previous_logits_matches_upstream(backend, encoded, name):
    image, embedding, predictor = encoded(name)
    shape = image.shape[:2]
    first = backend.predict(embedding, prompts_for("positive point", shape, multimask=True))
    upstream_first = upstream_predict(
        predictor, prompts_for("positive point", shape, multimask=True)
    )
    assert_matches_upstream(first, upstream_first, shape)
    best = first.best_index
    for case, multimask in (("positive and negative points", False), ("box and points", True)):
        ours = backend.predict(
            embedding,
            prompts_for(case, shape, mask_input=first.low_res_logits[best], multimask=multimask),
        )
        theirs = upstream_predict(
            predictor,
            prompts_for(case, shape, mask_input=upstream_first[2][best], multimask=multimask),
        )
        assert_matches_upstream(ours, theirs, shape)
        # The refinement input must matter, or this test would prove nothing.
        plain = backend.predict(embedding, prompts_for(case, shape, multimask=multimask))
        assert not np.array_equal(plain.low_res_logits, ours.low_res_logits)


def test_random_weights_give_masks_with_both_classes(backend, encoded):
    _, embedding, _ = encoded("landscape")
    for case in PROMPT_CASES:
        prediction = backend.predict(
            embedding, prompts_for(case, embedding.original_size, multimask=True)
        )
        fractions = prediction.masks.mean(axis=(1, 2))
        assert ((fractions > 0.01) & (fractions < 0.99)).all(), (case, fractions)


def test_interleaved_images_do_not_mix(backend, encoded):
    """Two images encoded and decoded in interleaved order, also from two threads at once."""
    image_a, embedding_a, predictor_a = encoded("landscape")
    image_b, embedding_b, predictor_b = encoded("portrait")
    again_a = backend.encode(image_a)  # encoded after image B: must not depend on it
    for key in ("image_embed", "high_res_feats"):  # same as when encoded first
        torch.testing.assert_close(again_a.features[key], embedding_a.features[key], rtol=0, atol=0)
    prompts_a = prompts_for("box and points", image_a.shape[:2])
    prompts_b = prompts_for("box and points", image_b.shape[:2])
    expected_a = upstream_predict(predictor_a, prompts_a)
    expected_b = upstream_predict(predictor_b, prompts_b)
    jobs = [(again_a, prompts_a), (embedding_b, prompts_b)] * 3
    for embedding, prompts in jobs:
        prediction = backend.predict(embedding, prompts)
        is_a = embedding is again_a
        assert_matches_upstream(
            prediction, expected_a if is_a else expected_b, (image_a if is_a else image_b).shape[:2]
        )
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda job: backend.predict(*job), jobs))
    for (embedding, _), prediction in zip(jobs, results, strict=True):
        is_a = embedding is again_a
        assert_matches_upstream(
            prediction, expected_a if is_a else expected_b, (image_a if is_a else image_b).shape[:2]
        )


def test_embedding_from_another_model_is_refused(backend, encoded, sam2_small, sam1_small):
    _, embedding, _ = encoded("landscape")
    other_spec = dataclasses.replace(sam2_small.spec, model_id="test-sam2-other")
    other = create_backend(other_spec, checkpoint=sam2_small.path, device="cpu", precision="fp32")
    with pytest.raises(SamBackendError, match="test-sam2-small.*test-sam2-other"):
        other.predict(embedding, Prompts(points=[(10, 10)], labels=[1]))
    sam1 = create_backend(
        sam1_small.spec, checkpoint=sam1_small.path, device="cpu", precision="fp32"
    )
    with pytest.raises(SamBackendError, match="test-sam2-small.*test-sam1-small"):
        sam1.predict(embedding, Prompts(points=[(10, 10)], labels=[1]))
    with pytest.raises(SamBackendError, match="test-sam1-small.*test-sam2-small"):
        backend.predict(sam1.encode(synthetic_image(64, 80)), Prompts(points=[(5, 5)], labels=[1]))


@pytest.mark.parametrize(
    "prompts, message",
    [
        (Prompts(points=[(500, 10)], labels=[1]), "outside the 500x300 image"),
        (Prompts(points=[(10, -0.5)], labels=[1]), "outside"),
        (Prompts(box=(10, 10, 501, 200)), "outside"),
        (Prompts(), "No prompt"),
        (Prompts(mask_input=np.zeros((256, 256), np.float32)), "No prompt"),
    ],
)
def test_bad_prompts_raise_prompt_error(backend, encoded, prompts, message):
    _, embedding, _ = encoded("landscape")  # 300 high, 500 wide
    with pytest.raises(PromptError, match=message):
        backend.predict(embedding, prompts)


@pytest.mark.slow
def test_full_size_tiny_matches_upstream(tmp_path):
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    spec = get_spec("sam2.1-tiny")
    path = write_random_checkpoint(spec, tmp_path / spec.checkpoint_file, seed=1)
    backend = create_backend(spec, checkpoint=path, device="cpu", precision="fp32")
    predictor = SAM2ImagePredictor(_upstream_model(spec, path))
    image = synthetic_image(480, 640, seed=5)
    predictor.set_image(image)
    embedding = backend.encode(image)
    _assert_features_match(embedding, predictor)
    for case, multimask in (("positive point", True), ("box and points", False)):
        prompts = prompts_for(case, image.shape[:2], multimask=multimask)
        prediction = backend.predict(embedding, prompts)
        assert_matches_upstream(prediction, upstream_predict(predictor, prompts), (480, 640))
        assert prediction.masks.any() and not prediction.masks.all()
