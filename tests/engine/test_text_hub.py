"""Model folders and gated downloads: each failure says what to do (hub functions patched)."""

from __future__ import annotations

import httpx2
import huggingface_hub
import pytest
from huggingface_hub import errors as hub_errors

from sam_backends import create_backend, get_spec, list_models
from sam_backends.errors import CheckpointMissingError, DownloadError
from sam_backends.text import hub


def _response(status: int) -> httpx2.Response:
    request = httpx2.Request("GET", "https://huggingface.co/api/models/facebook/sam3")
    return httpx2.Response(status, request=request)


@pytest.fixture
def online(monkeypatch, tmp_path):
    """Not offline, a token present, the checkpoints folder in tmp_path."""
    for name in ("SAM_OFFLINE", "HF_HUB_OFFLINE", "SAM_CHECKPOINT_SAM3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SAM_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_test")
    return tmp_path


def _raise(exc):
    def fake(*args, **kwargs):
        raise exc
    return fake


def test_absent_folder_says_how_to_get_it(online):
    with pytest.raises(CheckpointMissingError) as info:
        create_backend("sam3", device="cpu", precision="fp32")
    message = str(info.value)
    assert "https://huggingface.co/facebook/sam3" in message and "SAM License" in message
    assert "HF_TOKEN" in message and "download=True" in message
    assert str(online / "sam3") in message


def test_no_token_for_the_gated_repo(online, monkeypatch):
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    called = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: called.append(1))
    with pytest.raises(DownloadError, match="no Hugging Face token.*Request access at "
                       "https://huggingface.co/facebook/sam3.*HF_TOKEN.*hf auth login"):
        create_backend("sam3", device="cpu", precision="fp32", download=True)
    assert not called  # refused before any network access


@pytest.mark.parametrize("status", [401, 403])
def test_access_not_granted(online, monkeypatch, status):
    error = hub_errors.GatedRepoError("gated", response=_response(status))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _raise(error))
    with pytest.raises(DownloadError, match="not been granted access to facebook/sam3.*"
                       "Request access at https://huggingface.co/facebook/sam3"):
        create_backend("sam3", device="cpu", precision="fp32", download=True)


def test_invalid_token(online, monkeypatch):
    error = hub_errors.RepositoryNotFoundError("401", response=_response(401))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _raise(error))
    with pytest.raises(DownloadError, match="token is invalid.*settings/tokens"):
        hub.resolve_folder(hub.SAM3, download=True)


def test_no_network(online, monkeypatch):
    error = hub_errors.LocalEntryNotFoundError("cannot reach the Hub")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _raise(error))
    with pytest.raises(DownloadError, match="Cannot reach huggingface.co.*copy the model folder"):
        hub.resolve_folder(hub.SAM3, download=True)


def test_offline_mode_refuses_without_network(online, monkeypatch):
    monkeypatch.setenv("SAM_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _raise(AssertionError("network")))
    with pytest.raises(DownloadError, match="offline mode is on.*SAM_OFFLINE"):
        create_backend("sam3", device="cpu", precision="fp32", download=True)


def test_other_http_errors_and_disk_errors(online, monkeypatch):
    error = hub_errors.HfHubHTTPError("500 Server Error", response=_response(500))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _raise(error))
    with pytest.raises(DownloadError, match="500 Server Error.*Try again later"):
        hub.resolve_folder(hub.SAM3, download=True)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _raise(OSError("disk full")))
    with pytest.raises(DownloadError, match="disk full.*disk space"):
        hub.resolve_folder(hub.SAM3, download=True)


def test_download_lands_in_the_checkpoints_folder(online, monkeypatch):
    calls = {}

    def fake(repo_id, local_dir, token, allow_patterns):
        calls.update(repo_id=repo_id, token=token)
        (online / "sam3").mkdir(exist_ok=True)
        (online / "sam3" / "config.json").write_text("{}")
        return local_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    assert hub.resolve_folder(hub.SAM3, download=True) == online / "sam3"
    assert calls == {"repo_id": "facebook/sam3", "token": "hf_test"}
    assert {r.model_id: r.present for r in list_models()}["sam3"]


def test_a_folder_without_config_is_refused(tmp_path):
    with pytest.raises(CheckpointMissingError, match="no config.json"):
        hub.resolve_folder(hub.SAM3, tmp_path)


def test_listing_reports_the_folder(online):
    row = {r.model_id: r for r in list_models()}["sam3"]
    assert not row.present and row.checkpoint_path == str(online / "sam3" / "config.json")
    assert hub.for_spec(get_spec("sam3")) == hub.SAM3
