"""``Prediction`` makes full-resolution masks on demand: the best one inside ``predict``, the
other candidates only when asked for, each once, equal to what an eager upscale gives."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from sam_backends import Prediction, Prompts, create_backend
from sam_backends.testing.random_models import synthetic_image


def _counting(masks: np.ndarray) -> tuple[list[int], object]:
    calls: list[int] = []

    def source(index: int) -> np.ndarray:
        calls.append(index)
        return masks[index]

    return calls, source


def test_masks_are_made_once_per_index_and_only_when_asked():
    masks = np.random.default_rng(0).random((3, 20, 30)) > 0.5
    calls, source = _counting(masks)
    prediction = Prediction(np.array([0.2, 0.9, 0.5], np.float32),
                            np.zeros((3, 256, 256), np.float32), mask_source=source)
    assert prediction.count == 3 and prediction.best_index == 1 and calls == []
    assert np.array_equal(prediction.mask(1), masks[1]) and calls == [1]
    assert np.array_equal(prediction.mask(-2), masks[1]) and calls == [1]  # kept, not remade
    assert np.array_equal(prediction.masks, masks) and sorted(calls) == [0, 1, 2]
    with pytest.raises(IndexError, match="out of range for 3"):
        prediction.mask(3)
    bare = Prediction(np.array([0.5], np.float32), np.zeros((1, 256, 256), np.float32))
    with pytest.raises(ValueError, match="from_masks"):
        bare.mask(0)


def test_from_masks_checks_the_shape():
    masks = np.ones((2, 4, 5), bool)
    prediction = Prediction.from_masks(masks, np.array([0.1, 0.2], np.float32),
                                       np.zeros((2, 256, 256), np.float32))
    assert np.array_equal(prediction.masks, masks) and prediction.masks.dtype == bool
    with pytest.raises(ValueError, match="C = 3"):
        Prediction.from_masks(masks, np.zeros(3, np.float32), np.zeros((3, 256, 256)))


@pytest.fixture(scope="module", params=["sam1-fp32", "sam1-bf16", "sam2-fp32", "sam2-bf16"])
def backend(request, sam1_small, sam2_small):
    family, precision = request.param.split("-")
    checkpoint = sam1_small if family == "sam1" else sam2_small
    return create_backend(checkpoint.spec, checkpoint=checkpoint.path, device="cpu",
                          precision=precision)


def test_predict_makes_only_the_best_mask_and_the_rest_match_an_eager_upscale(backend):
    embedding = backend.encode(synthetic_image(230, 310, seed=3))
    prediction = backend.predict(embedding, Prompts(points=[(150, 110)], labels=[1],
                                                    multimask=True))
    assert list(prediction.ready) == [prediction.best_index]
    # The same logits upscaled all at once by the backend's own step give the same masks.
    import torch

    with torch.inference_mode():
        tensors = backend._prompt_tensors(
            Prompts(points=[(150, 110)], labels=[1], multimask=True), embedding)
        low_res, _ = backend._decode(embedding.features, tensors, True)
        eager = backend._masks(low_res, embedding)
    assert prediction.masks.shape == eager.shape == (3, 230, 310)
    assert np.array_equal(prediction.masks, eager)
    assert sorted(prediction.ready) == [0, 1, 2]


def test_a_prediction_does_not_keep_the_image_features_alive(backend):
    embedding = backend.encode(synthetic_image(120, 160, seed=4))
    features = next(iter(embedding.features.values()))
    watcher = weakref.ref(features)
    prediction = backend.predict(embedding, Prompts(box=(20, 20, 140, 100)))
    del embedding, features
    gc.collect()
    assert watcher() is None
    assert prediction.mask(0).shape == (120, 160)
