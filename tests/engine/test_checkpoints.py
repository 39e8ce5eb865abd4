"""Where checkpoints are looked for, and what a missing one tells the user."""

from __future__ import annotations

import hashlib

import pytest

from sam_backends.errors import CheckpointHashMismatchError, CheckpointMissingError
from sam_backends.registry import get_spec
from sam_backends.weights import checkpoints


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(checkpoints.CHECKPOINT_DIR_ENV, raising=False)


def test_default_folder_is_checkpoints_at_the_project_root():
    root = checkpoints.PROJECT_ROOT
    assert (root / "sam_backends" / "weights" / "checkpoints.py").is_file()
    assert checkpoints.checkpoint_dir() == root / "checkpoints"


def test_environment_overrides_default_and_argument_overrides_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(checkpoints.CHECKPOINT_DIR_ENV, str(tmp_path / "from-env"))
    assert checkpoints.checkpoint_dir() == tmp_path / "from-env"
    assert checkpoints.checkpoint_dir(tmp_path / "explicit") == tmp_path / "explicit"
    spec = get_spec("sam2.1-small")
    assert checkpoints.checkpoint_path(spec) == tmp_path / "from-env" / "sam2.1_hiera_small.pt"


def test_home_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert checkpoints.checkpoint_dir("~/weights") == tmp_path / "weights"


def test_checkpoint_path_uses_the_catalogue_file_name(tmp_path):
    for model_id, name in [("sam-vit-h", "sam_vit_h_4b8939.pth"),
                           ("sam2.1-large", "sam2.1_hiera_large.pt")]:
        assert checkpoints.checkpoint_path(get_spec(model_id), tmp_path) == tmp_path / name


def test_grabcut_needs_no_checkpoint(tmp_path):
    spec = get_spec("grabcut")
    assert checkpoints.checkpoint_path(spec, tmp_path) is None
    assert checkpoints.is_present(spec, tmp_path)
    with pytest.raises(ValueError, match="needs no checkpoint"):
        checkpoints.ensure_checkpoint(spec, tmp_path)


def test_present_when_the_file_exists(tmp_path):
    spec = get_spec("sam-vit-b")
    assert not checkpoints.is_present(spec, tmp_path)
    (tmp_path / spec.checkpoint_file).write_bytes(b"weights")
    assert checkpoints.is_present(spec, tmp_path)  # presence is by name (cheap)
    path = checkpoints.ensure_checkpoint(spec, tmp_path, verify=False)
    assert path == tmp_path / spec.checkpoint_file
    with pytest.raises(CheckpointHashMismatchError):  # loading checks it is the official file
        checkpoints.ensure_checkpoint(spec, tmp_path)


def test_missing_checkpoint_message(tmp_path):
    spec = get_spec("sam-vit-l")
    with pytest.raises(CheckpointMissingError) as info:
        checkpoints.ensure_checkpoint(spec, tmp_path)
    message = str(info.value)
    assert str(tmp_path / "sam_vit_l_0b3195.pth") in message
    assert "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth" in message
    assert "python -m sam_backends download sam-vit-l" in message
    assert isinstance(info.value, FileNotFoundError)  # callers may catch the builtin too


def test_offline_flags(monkeypatch):
    for name in checkpoints.OFFLINE_ENVS:
        monkeypatch.delenv(name, raising=False)
    assert not checkpoints.is_offline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not checkpoints.is_offline()
    monkeypatch.setenv("SAM_OFFLINE", "true")
    assert checkpoints.is_offline()


def test_sha256_file(tmp_path):
    data = bytes(range(256)) * 5000
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert checkpoints.sha256_file(path) == hashlib.sha256(data).hexdigest()
