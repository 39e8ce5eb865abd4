"""SAM-HQ through transformers: exactness against transformers' own pipeline, and bad input.

A reduced-size random ``SamHQConfig`` (2-block, 32-wide ViT at 1024 px) is saved with
``save_pretrained`` and loaded through ``create_backend("samhq-vit-b", checkpoint=folder)``;
the reference is ``SamHQProcessor`` + ``SamHQModel`` + ``processor.post_process_masks`` on the
same folder, called the documented way.
"""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch

from sam_backends import create_backend
from sam_backends.automatic import EverythingParams, segment_everything
from sam_backends.background import encoder_blocks, pausing
from sam_backends.errors import CheckpointCorruptError, CheckpointMissingError, SamBackendError
from sam_backends.families import upstream_of
from sam_backends.testing.samhq_models import (
    full_samhq_config,
    small_samhq_config,
    write_random_samhq,
)
from sam_backends.types import Prompts

IMAGE_HW = (120, 160)  # landscape: the padding is below the image
MODEL_ID = "samhq-vit-b"


@pytest.fixture(scope="module")
def samhq_folder(tmp_path_factory):
    torch.set_num_threads(1)
    return write_random_samhq(tmp_path_factory.mktemp("samhq"), small_samhq_config())


@pytest.fixture(scope="module")
def backend(samhq_folder):
    return create_backend(MODEL_ID, checkpoint=samhq_folder, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(0).random((*IMAGE_HW, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def embedding(backend, image):
    return backend.encode(image)


@pytest.fixture(scope="module")
def reference(samhq_folder, image):
    """transformers' SamHQProcessor + SamHQModel on the same folder, called the documented way
    (``SamHQModel.get_image_embeddings`` once, then the model on them per prompt, then
    ``post_process_masks``), behind ``SamPredictor``'s two calls (``samhq/upstream.py``)."""
    predictor = upstream_of("samhq").folder_predictor(samhq_folder)
    predictor.set_image(image)
    return predictor


def _reference(reference, prompts: Prompts):
    """(masks C x H x W bool, scores C, low-res logits C x 256 x 256) from transformers."""
    return reference.predict(
        point_coords=np.asarray(prompts.points) if prompts.points else None,
        point_labels=np.asarray(prompts.labels) if prompts.points else None,
        box=None if prompts.box is None else np.asarray(prompts.box),
        mask_input=prompts.mask_input, multimask_output=prompts.multimask)


def test_encode_equals_transformers(embedding, reference):
    image_embeddings, intermediate = reference._embeddings
    for ours, theirs in ((embedding.features["image_embed"], image_embeddings),
                         (embedding.features["vit_features"], intermediate[0])):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def _assert_exact(backend, embedding, reference, prompts):
    prediction = backend.predict(embedding, prompts)
    masks, scores, low_res = _reference(reference, prompts)
    assert prediction.masks.shape == masks.shape == (len(scores), *IMAGE_HW)
    np.testing.assert_array_equal(prediction.masks, masks)
    np.testing.assert_allclose(prediction.scores, scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(prediction.low_res_logits, low_res, rtol=1e-5, atol=1e-5)
    return prediction


PROMPTS = {
    "point": Prompts(points=[(60.0, 40.0)], labels=[1]),
    "points and a background point": Prompts(points=[(60.0, 40.0), (130.5, 90.25)],
                                             labels=[1, 0]),
    "box": Prompts(box=(20.0, 15.0, 110.0, 95.0)),
    "box and points": Prompts(points=[(70.0, 50.0), (25.0, 100.0)], labels=[1, 0],
                              box=(20.0, 15.0, 110.0, 95.0)),
    "three candidates": Prompts(points=[(60.0, 40.0)], labels=[1], multimask=True),
}


@pytest.mark.parametrize("name", list(PROMPTS))
def test_masks_equal_transformers(backend, embedding, reference, name):
    prediction = _assert_exact(backend, embedding, reference, PROMPTS[name])
    assert prediction.masks.any()  # a test on empty masks would prove little
    if PROMPTS[name].multimask:
        assert len(prediction.scores) == 3


def test_refinement_with_the_previous_logits_equals_transformers(backend, embedding, reference):
    first = backend.predict(embedding, PROMPTS["three candidates"])
    refined = Prompts(points=[(60.0, 40.0), (100.0, 80.0)], labels=[1, 1],
                      mask_input=first.low_res_logits[1:2])
    prediction = _assert_exact(backend, embedding, reference, refined)
    without = backend.predict(embedding, dataclasses.replace(refined, mask_input=None))
    assert not np.array_equal(prediction.low_res_logits, without.low_res_logits)


def test_embedding_holds_the_image_embedding_and_one_vit_feature(backend, embedding):
    assert embedding.input_size == (768, 1024)  # long side 1024, as the processor resizes
    assert set(embedding.features) == {"image_embed", "vit_features"}
    assert tuple(embedding.features["vit_features"].shape) == (1, 64, 64, 32)


def test_segment_everything_masks_are_predict_masks(backend, embedding):
    params = EverythingParams(points_per_side=2, pred_iou_thresh=0.0,
                              stability_score_thresh=0.0, box_nms_thresh=1.0,
                              multimask_output=False)
    found = segment_everything(backend, embedding, params)
    assert len(found.masks) > 0 and found.masks.shape[1:] == IMAGE_HW
    height, width = IMAGE_HW
    grid = [(width * (i + 0.5) / 2, height * (j + 0.5) / 2) for j in range(2) for i in range(2)]
    clicked = [backend.predict(embedding, Prompts(points=[p], labels=[1])).masks[0]
               for p in grid]
    for mask in found.masks:  # the grid's upscaling (OpenCV) against predict's (torch)
        ious = [(mask & other).sum() / max(1, (mask | other).sum()) for other in clicked]
        assert max(ious) > 0.99


def test_background_encode_pauses_between_the_vit_blocks(backend, image, embedding):
    assert len(encoder_blocks(backend)) == 2  # transformers' SamHQVisionLayer modules
    calls = []
    with pausing(backend, lambda: calls.append(1)) as points:
        again = backend.encode(image)
    assert points > 2 and len(calls) >= 2
    torch.testing.assert_close(again.features["image_embed"], embedding.features["image_embed"],
                               rtol=0, atol=0)


def test_an_embedding_of_another_precision_is_refused(backend, embedding):
    foreign = dataclasses.replace(embedding, precision="bf16")
    with pytest.raises(SamBackendError, match="encode the image with this model"):
        backend.predict(foreign, PROMPTS["point"])


@pytest.mark.slow  # bf16 on a CPU without native bf16 is emulated: seconds per encode
def test_bf16_runs_and_stays_close_to_fp32(samhq_folder, backend, embedding, image):
    fast = create_backend(MODEL_ID, checkpoint=samhq_folder, device="cpu", precision="bf16")
    mask = fast.predict(fast.encode(image), PROMPTS["box"]).masks[0]
    exact = backend.predict(embedding, PROMPTS["box"]).masks[0]
    assert (mask & exact).sum() / (mask | exact).sum() > 0.8


# --- bad input ------------------------------------------------------------------------------


def test_corrupt_weights_are_a_typed_error(samhq_folder, tmp_path):
    broken = shutil.copytree(samhq_folder, tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointCorruptError, match="again from https://huggingface.co/syscv"):
        create_backend(MODEL_ID, checkpoint=broken, device="cpu", precision="fp32")


def test_weights_missing_a_tensor_are_refused(samhq_folder, tmp_path):
    from safetensors.torch import load_file, save_file

    partial = shutil.copytree(samhq_folder, tmp_path / "partial")
    state = load_file(str(partial / "model.safetensors"))
    del state["mask_decoder.hq_token.weight"]
    save_file(state, str(partial / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointCorruptError, match="1 missing .*hq_token"):
        create_backend(MODEL_ID, checkpoint=partial, device="cpu", precision="fp32")


def test_a_folder_without_config_says_what_to_give(tmp_path):
    with pytest.raises(CheckpointMissingError, match="config.json"):
        create_backend(MODEL_ID, checkpoint=tmp_path, device="cpu", precision="fp32")


# --- full size ------------------------------------------------------------------------------


@pytest.mark.slow
def test_full_size_vit_b_clicks(tmp_path):
    """The published ViT-B architecture, random weights, through the real loader: one click."""
    folder = write_random_samhq(tmp_path / "vit-b", full_samhq_config(MODEL_ID))
    backend = create_backend(MODEL_ID, checkpoint=folder, device="cpu", precision="fp32")
    rgb = (np.random.default_rng(1).random((480, 640, 3)) * 255).astype(np.uint8)
    embedding = backend.encode(rgb)
    assert tuple(embedding.features["image_embed"].shape) == (1, 256, 64, 64)
    assert tuple(embedding.features["vit_features"].shape) == (1, 64, 64, 768)
    prediction = backend.predict(embedding, Prompts(points=[(320.0, 240.0)], labels=[1]))
    assert prediction.masks.shape == (1, 480, 640)
    assert np.isfinite(prediction.scores).all()
