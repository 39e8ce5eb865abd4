"""Damaged weights give NaN/Inf: the backends refuse such output instead of serving it.

Before the check, a checkpoint with a NaN tensor loaded and ran: scores came back NaN (the API
served ``"score": null``) and every mask was empty.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from sam_backends import ModelOutputError, Prompts, SamBackendError, create_backend
from sam_backends.testing.random_models import poison_checkpoint, synthetic_image

# Where a NaN lands, per family: the image encoder (refused at encode), the IoU head (scores)
# and the hypernetwork MLPs (low-res logits), both refused at predict.
ENCODER = {"sam1": r"^image_encoder\.patch_embed\.proj\.weight$",
           "sam2": r"^image_encoder\.trunk\.patch_embed\.proj\.weight$"}
IOU_HEAD = {"sam1": r"^mask_decoder\.iou_prediction_head\.layers\.2\.",
            "sam2": r"^sam_mask_decoder\.iou_prediction_head\.layers\.2\."}
HYPERNETWORK = {"sam1": r"^mask_decoder\.output_hypernetworks_mlps\.\d+\.layers\.2\.weight$",
                "sam2": r"^sam_mask_decoder\.output_hypernetworks_mlps\.\d+\.layers\.2\.weight$"}

IMAGE = synthetic_image(96, 128)
PROMPTS = Prompts(points=[(60, 40)], labels=[1], multimask=True)


def _damaged(checkpoint, tmp_path, pattern: str, value: float = float("nan")):
    path = tmp_path / checkpoint.path.name
    shutil.copyfile(checkpoint.path, path)
    poison_checkpoint(checkpoint.spec, path, pattern, value)
    return path


def _checkpoint(family, sam1_small, sam2_small):
    return sam1_small if family == "sam1" else sam2_small


def _assert_clear(error: ModelOutputError, spec, stage: str) -> None:
    message = str(error)
    assert isinstance(error, SamBackendError)
    assert spec.display_name in message and "NaN/Inf" in message and stage in message
    assert f"python -m sam_backends download {spec.model_id} --force" in message


@pytest.mark.parametrize("family, precision", [("sam1", "fp32"), ("sam2", "fp32"),
                                               ("sam1", "bf16")])  # sam2 bf16 runs sam2's code
def test_nan_encoder_weights_are_refused_at_encode(family, precision, sam1_small, sam2_small,
                                                   tmp_path):
    checkpoint = _checkpoint(family, sam1_small, sam2_small)
    path = _damaged(checkpoint, tmp_path, ENCODER[family])
    backend = create_backend(checkpoint.spec, checkpoint=path, device="cpu", precision=precision)
    with pytest.raises(ModelOutputError) as info:
        backend.encode(IMAGE)
    _assert_clear(info.value, checkpoint.spec, "image embedding")
    if precision != "fp32":
        assert "fp32" in str(info.value)  # the reduced precision may be the cause


# fp32 for every case; the bf16 fast decoder (slow on CPU) for one case per family.
_PREDICT_CASES = [(family, "fp32", where, value) for family in ("sam1", "sam2")
                  for where, value in (("iou", float("nan")), ("logits", float("nan")),
                                       ("logits", float("inf")))]
_PREDICT_CASES += [("sam1", "bf16", "logits", float("nan")), ("sam2", "bf16", "iou", float("nan"))]


@pytest.mark.parametrize("family, precision, where, value", _PREDICT_CASES)
def test_nan_or_inf_decoder_output_is_refused_at_predict(family, precision, where, value,
                                                         sam1_small, sam2_small, tmp_path):
    checkpoint = _checkpoint(family, sam1_small, sam2_small)
    pattern = (IOU_HEAD if where == "iou" else HYPERNETWORK)[family]
    path = _damaged(checkpoint, tmp_path, pattern, value)
    backend = create_backend(checkpoint.spec, checkpoint=path, device="cpu", precision=precision)
    embedding = backend.encode(IMAGE)  # the encoder is intact
    with pytest.raises(ModelOutputError) as info:
        backend.predict(embedding, PROMPTS)
    _assert_clear(info.value, checkpoint.spec, "masks and scores")


@pytest.mark.parametrize("family", ["sam1", "sam2"])
def test_healthy_weights_pass_the_check(family, sam1_small, sam2_small):
    checkpoint = _checkpoint(family, sam1_small, sam2_small)
    backend = create_backend(checkpoint.spec, checkpoint=checkpoint.path, device="cpu",
                             precision="fp32")
    prediction = backend.predict(backend.encode(IMAGE), PROMPTS)
    assert np.isfinite(prediction.scores).all() and np.isfinite(prediction.low_res_logits).all()


def test_the_ui_names_the_problem():
    from workbench.errors import describe

    title, message, expected = describe(ModelOutputError("SAM ViT-B produced invalid numbers"))
    assert expected and title == "Model gave invalid output"
    assert "invalid numbers" in message
