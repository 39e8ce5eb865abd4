"""Choosing a model that is not on disk downloads it with progress, served here by a local
HTTP server (no internet), then the model loads and encodes."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import threading

import pytest

from sam_backends.testing.random_models import synthetic_image
from ui.widgets import models_panel
from workbench.config import AppConfig, ExtraModel
from workbench.context import AppContext


@pytest.fixture()
def served(sam2_small, tmp_path):
    """A local URL serving the small SAM 2 checkpoint, and its catalogue-style spec."""
    data = sam2_small.path.read_bytes()
    folder = tmp_path / "www"
    folder.mkdir()
    (folder / "weights.pt").write_bytes(data)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    spec = dataclasses.replace(
        sam2_small.spec, model_id="test-download", display_name="Test download",
        checkpoint_file="test-download.pt",
        url=f"http://127.0.0.1:{server.server_address[1]}/weights.pt",
        sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    yield spec
    server.shutdown()


def test_missing_model_downloads_with_progress_then_runs(served, tmp_path, monkeypatch):
    monkeypatch.delenv("SAM_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    ctx = AppContext(AppConfig(models=("grabcut",), extra_models=(ExtraModel(served),),
                               checkpoint_dir=tmp_path / "ckpt", device="cpu",
                               precision="fp32"))
    assert models_panel.needs_download(ctx, "test-download")
    assert ("Test download · not downloaded", "test-download") in models_panel.choices(ctx)
    assert "not downloaded" in models_panel.status_markdown(ctx, "test-download")
    calls = []
    models_panel.download_with_progress(ctx, "test-download",
                                        lambda value, desc: calls.append((value, desc)))
    assert calls[0][0] == 0 and calls[-1][0] == pytest.approx(1.0)
    assert all(b[0] >= a[0] for a, b in zip(calls, calls[1:]))
    assert calls[-1][1].startswith("Downloading Test download:") and "MB" in calls[-1][1]
    assert (tmp_path / "ckpt" / "test-download.pt").stat().st_size == served.size_bytes
    assert not models_panel.needs_download(ctx, "test-download")
    assert ("Test download", "test-download") in models_panel.choices(ctx)
    assert "is ready" in models_panel.status_markdown(ctx, "test-download")
    encoded = ctx.encode("test-download", synthetic_image(64, 80))
    assert encoded.embedding.model_id == "test-download" and not encoded.cached


def test_offline_nothing_starts_a_download_and_the_page_says_why(served, tmp_path, monkeypatch):
    """With SAM_OFFLINE=1 an absent model offers no download, its status and the canvas say
    in the page's terms that this server does not download models, and choosing it tries no
    download (no "Download failed (offline?)" warning)."""
    from types import SimpleNamespace

    from ui.segment.handlers import SegmentHandlers

    monkeypatch.setenv("SAM_OFFLINE", "1")
    ctx = AppContext(AppConfig(models=("grabcut",), extra_models=(ExtraModel(served),),
                               checkpoint_dir=tmp_path / "ckpt", device="cpu",
                               precision="fp32", default_model="grabcut"))
    assert ctx.offline and not models_panel.needs_download(ctx, "test-download")
    assert models_panel.missing_choices(ctx) == []
    status = models_panel.status_markdown(ctx, "test-download")
    assert "does not download models" in status and "Download model" not in status
    monkeypatch.setattr(ctx, "download", lambda *a, **k: pytest.fail("a download started"))
    handlers = SegmentHandlers(ctx, [])
    request = SimpleNamespace(session_hash="offline", client=None, headers={})
    view = handlers._change_model(None, "test-download", request)
    session, canvas = view[0], view[1]
    assert session.model_id == "test-download"
    assert "not on this server" in str(canvas) and "Segmenting" not in str(canvas)
    button = view[-1]
    assert button["visible"] is False
