"""EdgeTAM through transformers: loading, exactness of image masks, prompts, bad folders.

A reduced-size random ``EdgeTamVideoConfig`` (a one-block-per-stage RepViT, 32-wide decoder) is
saved with ``save_pretrained`` and loaded through ``create_backend("edgetam", checkpoint=folder)``;
the reference is transformers' processor + ``EdgeTamModel`` + ``post_process_masks`` called the
documented way on the same folder, with the image itself (not our cached features).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam_backends import create_backend, get_spec
from sam_backends.errors import CheckpointCorruptError, CheckpointMissingError
from sam_backends.types import Prompts

IMAGE_HW = (90, 120)


@pytest.fixture(scope="module")
def backend(edgetam_small):
    return create_backend("edgetam", checkpoint=edgetam_small, device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def image():
    return (np.random.default_rng(0).random((*IMAGE_HW, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def embedding(backend, image):
    return backend.encode(image)


@pytest.fixture(scope="module")
def reference(edgetam_small):
    """transformers' EdgeTamModel and the folder's processor, loaded the documented way."""
    from transformers import AutoProcessor, EdgeTamModel

    model = EdgeTamModel.from_pretrained(str(edgetam_small)).eval()
    return model, AutoProcessor.from_pretrained(str(edgetam_small))


def _reference_masks(reference, image, prompts: Prompts, mask_input=None):
    model, processor = reference
    args = {}
    if prompts.points:
        args["input_points"] = [[[list(p) for p in prompts.points]]]
        args["input_labels"] = [[list(prompts.labels)]]
    if prompts.box is not None:
        args["input_boxes"] = [[list(prompts.box)]]
    inputs = processor(images=image, return_tensors="pt", **args)
    if mask_input is not None:
        inputs["input_masks"] = torch.from_numpy(np.array(mask_input))[None]
    with torch.inference_mode():
        out = model(**inputs, multimask_output=prompts.multimask)
    masks = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0]
    return masks[0].numpy(), out.iou_scores[0, 0].numpy(), out.pred_masks[0, 0].numpy()


PROMPTS = {
    "point": Prompts(points=[(30.0, 40.0)], labels=[1]),
    "background points": Prompts(points=[(30.0, 40.0), (100.5, 12.0)], labels=[1, 0]),
    "box": Prompts(box=(10, 8, 90, 70)),
    "box and points": Prompts(points=[(50.0, 33.0)], labels=[1], box=(10, 8, 90, 70)),
    "multimask": Prompts(points=[(60.0, 45.0)], labels=[1], multimask=True),
}


@pytest.mark.parametrize("name", list(PROMPTS))
def test_masks_equal_transformers_pixel_for_pixel(backend, embedding, reference, image, name):
    prompts = PROMPTS[name]
    prediction = backend.predict(embedding, prompts)
    masks, scores, low_res = _reference_masks(reference, image, prompts)
    assert prediction.masks.shape == (masks.shape[0], *IMAGE_HW)
    assert masks.any() and not masks.all()  # random weights still draw an edge
    np.testing.assert_array_equal(prediction.masks, masks)
    np.testing.assert_allclose(prediction.scores, scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(prediction.low_res_logits, low_res, rtol=1e-4, atol=1e-4)


def test_refinement_feeds_the_previous_logits_back(backend, embedding, reference, image):
    first = backend.predict(embedding, PROMPTS["point"])
    logits = first.low_res_logits[first.best_index: first.best_index + 1]
    prompts = Prompts(points=[(30.0, 40.0), (70.0, 60.0)], labels=[1, 1], mask_input=logits)
    refined = backend.predict(embedding, prompts)
    masks, _, _ = _reference_masks(reference, image, prompts, mask_input=logits)
    np.testing.assert_array_equal(refined.masks, masks)
    plain = backend.predict(embedding, Prompts(points=prompts.points, labels=prompts.labels))
    assert not np.array_equal(plain.low_res_logits, refined.low_res_logits)


def test_the_embedding_holds_the_decoder_inputs(backend, embedding):
    levels = embedding.features["image_embeddings"]
    assert [tuple(t.shape[-2:]) for t in levels] == [(256, 256), (128, 128), (64, 64)]
    assert embedding.input_size == (1024, 1024) and embedding.original_size == IMAGE_HW
    assert embedding.nbytes == sum(t.numel() * 4 for t in levels)


def test_catalogue_entry_and_capabilities():
    spec = get_spec("edgetam")
    assert spec.hf_repo == "yonigozlan/EdgeTAM-hf" and spec.license == "Apache-2.0"
    caps = spec.capabilities
    assert caps.points and caps.box and caps.mask_refinement and caps.multimask
    assert caps.everything and caps.video and not caps.text


def test_a_folder_without_config_is_reported(tmp_path):
    with pytest.raises(CheckpointMissingError, match="config.json"):
        create_backend("edgetam", checkpoint=tmp_path, device="cpu", precision="fp32")


def test_weights_that_do_not_fit_are_refused(edgetam_small, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "damaged"
    shutil.copytree(edgetam_small, folder)
    state = load_file(str(folder / "model.safetensors"))
    dropped = next(k for k in state if k.startswith("mask_decoder."))
    del state[dropped]
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointCorruptError, match="1 missing"):
        create_backend("edgetam", checkpoint=folder, device="cpu", precision="fp32")


def test_segment_everything_runs_point_by_point_through_predict(backend, embedding):
    from sam_backends.automatic import EverythingParams, segment_everything

    params = EverythingParams(points_per_side=2, pred_iou_thresh=0.0,
                              stability_score_thresh=0.0)
    found = segment_everything(backend, embedding, params)
    assert len(found.scores) >= 1 and found.masks.shape[1:] == IMAGE_HW
    first = backend.predict(embedding, Prompts(points=[(30.0, 22.5)], labels=[1],
                                               multimask=True))
    assert any(np.array_equal(mask, candidate) for mask in found.masks
               for candidate in first.masks)
