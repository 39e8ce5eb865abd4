"""SAM 1 backend == upstream ``SamPredictor`` (fp32), from the same checkpoint file.

The backend loads the file through the project's loader; the upstream model loads it through
``_build_sam(checkpoint=...)``. Small random-weight architecture unless marked ``slow``.
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


def _upstream_model(spec, path):
    from segment_anything.build_sam import _build_sam

    return _build_sam(**spec.arch, checkpoint=str(path))


@pytest.fixture(scope="module")
def backend(sam1_small):
    return create_backend(
        sam1_small.spec, checkpoint=sam1_small.path, device="cpu", precision="fp32"
    )


@pytest.fixture(scope="module")
def encoded(backend, sam1_small):
    """name -> (image, backend embedding, upstream predictor with that image set); lazy."""
    from segment_anything import SamPredictor

    model = _upstream_model(sam1_small.spec, sam1_small.path)
    done = {}

    def get(name):
        if name not in done:
            image = synthetic_image(*IMAGE_SHAPES[name], seed=list(IMAGE_SHAPES).index(name))
            predictor = SamPredictor(model)
            predictor.set_image(image)
            done[name] = (image, backend.encode(image), predictor)
        return done[name]

    return get


@pytest.mark.parametrize("name", list(IMAGE_SHAPES))
def test_embedding_matches_upstream(encoded, name):
    image, embedding, predictor = encoded(name)
    assert embedding.model_id == "test-sam1-small" and embedding.precision == "fp32"
    assert embedding.original_size == image.shape[:2] == tuple(predictor.original_size)
    assert embedding.input_size == tuple(predictor.input_size)
    assert max(embedding.input_size) == 1024
    features = embedding.features["image_embed"]
    assert tuple(features.shape) == (1, 256, 64, 64)
    assert embedding.nbytes == 256 * 64 * 64 * 4
    torch.testing.assert_close(features, predictor.features, rtol=0, atol=1e-6)


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
    torch.testing.assert_close(
        again_a.features["image_embed"], embedding_a.features["image_embed"], rtol=0, atol=0
    )
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


def test_embedding_from_another_model_is_refused(backend, encoded, sam1_small):
    _, embedding, _ = encoded("landscape")
    other_spec = dataclasses.replace(sam1_small.spec, model_id="test-sam1-other")
    other = create_backend(other_spec, checkpoint=sam1_small.path, device="cpu", precision="fp32")
    with pytest.raises(SamBackendError, match="test-sam1-small.*test-sam1-other"):
        other.predict(embedding, Prompts(points=[(10, 10)], labels=[1]))


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
def test_full_size_vit_b_matches_upstream(tmp_path):
    from segment_anything import SamPredictor

    spec = get_spec("sam-vit-b")
    path = write_random_checkpoint(spec, tmp_path / spec.checkpoint_file, seed=1)
    backend = create_backend(spec, checkpoint=path, device="cpu", precision="fp32")
    predictor = SamPredictor(_upstream_model(spec, path))
    image = synthetic_image(480, 640, seed=5)
    predictor.set_image(image)
    embedding = backend.encode(image)
    torch.testing.assert_close(
        embedding.features["image_embed"], predictor.features, rtol=0, atol=1e-6
    )
    for case, multimask in (("positive point", True), ("box and points", False)):
        prompts = prompts_for(case, image.shape[:2], multimask=multimask)
        prediction = backend.predict(embedding, prompts)
        assert_matches_upstream(prediction, upstream_predict(predictor, prompts), (480, 640))
        assert prediction.masks.any() and not prediction.masks.all()


def test_wrong_argument_types_raise_typed_errors(backend, encoded):
    _, embedding, _ = encoded("landscape")
    with pytest.raises(PromptError, match="Prompts"):
        backend.predict(embedding, {"points": [(10, 10)], "labels": [1]})
    with pytest.raises(SamBackendError, match="Embedding returned by encode"):
        backend.predict(embedding.features, Prompts(points=[(10, 10)], labels=[1]))
