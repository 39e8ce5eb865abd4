"""Loading SAM 1 / SAM 2.1 checkpoints: good files load exactly, bad files fail clearly.

A bad file (truncated, not a checkpoint, another model's, wrong layout) must raise
``CheckpointCorruptError`` naming the file, in a short message without a dump of keys, and must
never leave a half-loaded model behind.
"""

from __future__ import annotations

import sys

import pytest
import torch

from sam_backends import (
    BackendUnavailableError,
    CheckpointCorruptError,
    CheckpointMissingError,
    SamBackendError,
    create_backend,
)
from sam_backends.testing.random_models import (
    build_random_model,
    small_sam1_spec,
    small_sam2_spec,
    write_random_checkpoint,
)

MAX_MESSAGE = 800  # characters besides the file name: a few sentences, never a key dump
MAX_KEYS_SHOWN = 9  # checkpoint_loading names at most 3 keys per kind of mismatch


def _load(spec, path):
    return create_backend(spec, checkpoint=path, device="cpu", precision="fp32")


def _assert_clear_corrupt_error(excinfo, path):
    message = str(excinfo.value)
    assert str(path) in message
    assert len(message.replace(str(path), "")) < MAX_MESSAGE, message
    assert message.count("image_encoder.") <= MAX_KEYS_SHOWN, message
    assert "python -m sam_backends download" in message


@pytest.mark.parametrize("family", ["sam1", "sam2"])
def test_good_checkpoint_loads_every_weight(family, sam1_small, sam2_small):
    checkpoint = sam1_small if family == "sam1" else sam2_small
    backend = _load(checkpoint.spec, checkpoint.path)
    saved = torch.load(checkpoint.path, map_location="cpu", weights_only=True)
    saved = saved["model"] if family == "sam2" else saved
    loaded = backend.model.state_dict()
    assert set(loaded) == set(saved)
    for key, value in saved.items():
        assert torch.equal(loaded[key], value), key
    assert not backend.model.training
    assert backend.precision == "fp32" and backend.device == "cpu"


def test_random_checkpoints_are_deterministic_per_seed(tmp_path):
    spec = small_sam1_spec()
    first = write_random_checkpoint(spec, tmp_path / "a.pth", seed=3)
    again = write_random_checkpoint(spec, tmp_path / "b.pth", seed=3)
    other = build_random_model(spec, seed=4).state_dict()
    a = torch.load(first, weights_only=True)
    b = torch.load(again, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], other[k]) for k in a)


@pytest.mark.parametrize("family", ["sam1", "sam2"])
def test_truncated_file(family, sam1_small, sam2_small, tmp_path):
    checkpoint = sam1_small if family == "sam1" else sam2_small
    data = checkpoint.path.read_bytes()
    path = tmp_path / checkpoint.path.name
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointCorruptError) as excinfo:
        _load(checkpoint.spec, path)
    _assert_clear_corrupt_error(excinfo, path)


@pytest.mark.parametrize(
    "content",
    [b"<html>404 Not Found</html>\n", b"", b"\x89PNG\r\n\x1a\n" * 9],
    ids=["html", "empty", "png"],
)
def test_not_a_checkpoint(content, sam1_small, sam2_small, tmp_path):
    path = tmp_path / "downloaded.pth"
    path.write_bytes(content)
    for checkpoint in (sam1_small, sam2_small):
        with pytest.raises(CheckpointCorruptError) as excinfo:
            _load(checkpoint.spec, path)
        _assert_clear_corrupt_error(excinfo, path)


def test_sam2_checkpoint_for_sam1_model(sam1_small, sam2_small):
    with pytest.raises(CheckpointCorruptError) as excinfo:
        _load(sam1_small.spec, sam2_small.path)
    _assert_clear_corrupt_error(excinfo, sam2_small.path)


def test_sam1_checkpoint_for_sam2_model(sam1_small, sam2_small):
    with pytest.raises(CheckpointCorruptError, match="'model'") as excinfo:
        _load(sam2_small.spec, sam1_small.path)
    _assert_clear_corrupt_error(excinfo, sam1_small.path)


def test_sam2_checkpoint_without_model_key(sam2_small, tmp_path):
    bare = torch.load(sam2_small.path, weights_only=True)["model"]
    path = tmp_path / "bare-state-dict.pt"
    torch.save(bare, path)
    with pytest.raises(CheckpointCorruptError, match="no 'model' entry") as excinfo:
        _load(sam2_small.spec, path)
    _assert_clear_corrupt_error(excinfo, path)


@pytest.mark.parametrize(
    "spec, expected",
    [
        (small_sam1_spec("test-sam1-wide", encoder_embed_dim=32), "wrong shape"),
        (small_sam1_spec("test-sam1-deep", encoder_depth=3), "missing"),
        (
            small_sam1_spec("test-sam1-shallow", encoder_depth=1, encoder_global_attn_indexes=(0,)),
            "unexpected",
        ),
        (
            small_sam2_spec(
                "test-sam2-deep",
                (
                    "++model.image_encoder.trunk.stages=[1,1,3,1]",
                    "++model.image_encoder.trunk.global_att_blocks=[4]",
                ),
            ),
            "missing",
        ),
    ],
    ids=["sam1-other-width", "sam1-more-blocks", "sam1-fewer-blocks", "sam2-more-blocks"],
)
def test_checkpoint_of_another_architecture(spec, expected, sam1_small, sam2_small):
    checkpoint = sam1_small if spec.family == "sam1" else sam2_small
    with pytest.raises(CheckpointCorruptError, match=expected) as excinfo:
        _load(spec, checkpoint.path)
    _assert_clear_corrupt_error(excinfo, checkpoint.path)
    assert f"does not match the {spec.model_id} architecture" in str(excinfo.value)


def test_missing_file_names_the_file(sam1_small, tmp_path):
    path = tmp_path / "nowhere.pth"
    with pytest.raises(CheckpointMissingError, match="nowhere.pth"):
        _load(sam1_small.spec, path)


@pytest.mark.parametrize(
    "family, package, pip_name",
    [
        ("sam1", "segment_anything", "segment-anything"),
        ("sam2", "sam2", "sam2"),
    ],
)
def test_missing_package_says_how_to_install(
    family, package, pip_name, sam1_small, sam2_small, monkeypatch
):
    checkpoint = sam1_small if family == "sam1" else sam2_small
    for name in list(sys.modules):
        if name == package or name.startswith(package + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)  # makes ``import package`` fail
    with pytest.raises(BackendUnavailableError, match=f"pip install {pip_name}"):
        _load(checkpoint.spec, checkpoint.path)


@pytest.mark.parametrize("family", ["sam1", "sam2"])
def test_unknown_precision_is_refused_before_loading(family, sam1_small, sam2_small):
    from sam_backends.families import family_module

    module = family_module(family)
    checkpoint = sam1_small if family == "sam1" else sam2_small
    with pytest.raises(SamBackendError, match="Precision 'int3' is not available"):
        module.load(checkpoint.spec, checkpoint.path, "cpu", "int3")
