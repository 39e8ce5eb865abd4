"""Checkpoint downloads against a local HTTP server: verified, atomic, never done twice."""

from __future__ import annotations

import hashlib
import http.server
import multiprocessing
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sam_backends.errors import CheckpointMissingError, DownloadError
from sam_backends.registry import get_spec
from sam_backends.weights import checkpoints
from sam_backends.weights.checkpoint_verification import RECORD_FILE

PAYLOAD = np.random.default_rng(0).integers(0, 256, 3 * 1024**2 + 123, dtype=np.uint8).tobytes()
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """/file: the payload; /slow: the payload, trickled; /drop: half of it, then the connection
    closes; anything else: 404. Every GET is counted per path."""

    def do_GET(self):  # noqa: N802 (the http.server API)
        self.server.hits.append(self.path)
        if self.path not in ("/file", "/slow", "/drop"):
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        body = PAYLOAD[: len(PAYLOAD) // 2] if self.path == "/drop" else PAYLOAD
        step = 64 * 1024
        for start in range(0, len(body), step):
            try:
                self.wfile.write(body[start:start + step])
            except (BrokenPipeError, ConnectionResetError):
                return
            if self.path == "/slow":
                time.sleep(0.02)
        self.close_connection = True

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.hits = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def online(monkeypatch):
    for name in checkpoints.OFFLINE_ENVS:
        monkeypatch.delenv(name, raising=False)


def spec_for(server, path: str = "/file", **changes):
    base = f"http://127.0.0.1:{server.server_address[1]}"
    fields = {"url": base + path, "sha256": SHA, "size_bytes": len(PAYLOAD)} | changes
    return replace(get_spec("sam-vit-b"), **fields)


def hits(server, path: str) -> int:
    return sum(1 for hit in server.hits if hit == path)


def leftovers(folder: Path) -> list[str]:
    """Files other than the lock file and the record of verified hashes."""
    return sorted(p.name for p in folder.iterdir()
                  if not p.name.endswith(".lock") and p.name != RECORD_FILE)


def test_download_success_with_progress(server, tmp_path):
    spec = spec_for(server)
    seen = []
    path = checkpoints.download(spec, tmp_path, progress=False,
                                on_progress=lambda done, total: seen.append((done, total)))
    assert path == tmp_path / spec.checkpoint_file
    assert path.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == [spec.checkpoint_file]  # no temporary file left
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert checkpoints.is_present(spec, tmp_path)


def test_present_file_is_not_downloaded_again(server, tmp_path):
    spec = spec_for(server)
    checkpoints.download(spec, tmp_path, progress=False)
    before = hits(server, "/file")
    assert checkpoints.download(spec, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert checkpoints.ensure_checkpoint(spec, tmp_path, download=True).is_file()
    assert hits(server, "/file") == before


def test_wrong_size_file_under_the_final_name_is_replaced(server, tmp_path):
    spec = spec_for(server)
    (tmp_path / spec.checkpoint_file).write_bytes(PAYLOAD[:1000])
    path = checkpoints.download(spec, tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    spec = spec_for(server, sha256="0" * 64)
    with pytest.raises(DownloadError, match="SHA-256") as info:
        checkpoints.download(spec, tmp_path, progress=False)
    assert SHA in str(info.value) and spec.checkpoint_file in str(info.value)
    assert leftovers(tmp_path) == []


def test_announced_size_mismatch_is_refused(server, tmp_path):
    spec = spec_for(server, size_bytes=len(PAYLOAD) + 1)
    with pytest.raises(DownloadError, match="catalogue expects"):
        checkpoints.download(spec, tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_dropped_connection_leaves_no_final_file(server, tmp_path):
    spec = spec_for(server, "/drop")
    with pytest.raises(DownloadError) as info:
        checkpoints.download(spec, tmp_path, progress=False)
    message = str(info.value)
    assert "connection lost" in message or "cut short" in message
    assert spec.url in message and "python -m sam_backends download sam-vit-b" in message
    assert leftovers(tmp_path) == []
    assert not checkpoints.is_present(spec, tmp_path)


def test_interrupted_download_leaves_no_final_file(server, tmp_path):
    """Ctrl-C half way: the temporary file is removed and the final name never appears."""
    spec = spec_for(server)

    def interrupt(done, total):
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        checkpoints.download(spec, tmp_path, progress=False, on_progress=interrupt)
    assert leftovers(tmp_path) == []


def test_stale_temporary_file_is_not_a_checkpoint(server, tmp_path):
    spec = spec_for(server)
    (tmp_path / f".{spec.checkpoint_file}.abc123.part").write_bytes(PAYLOAD)
    assert not checkpoints.is_present(spec, tmp_path)
    with pytest.raises(CheckpointMissingError):
        checkpoints.ensure_checkpoint(spec, tmp_path)


def test_http_error(server, tmp_path):
    spec = spec_for(server, "/gone")
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        checkpoints.download(spec, tmp_path, progress=False)
    assert spec.url in str(info.value)
    assert leftovers(tmp_path) == []


def test_no_network_message_names_file_url_and_command(tmp_path):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = replace(get_spec("sam2.1-tiny"), url=f"http://127.0.0.1:{port}/x.pt")
    with pytest.raises(DownloadError) as info:
        checkpoints.ensure_checkpoint(spec, tmp_path, download=True, progress=False)
    message = str(info.value)
    assert "sam2.1_hiera_tiny.pt" in message
    assert spec.url in message
    assert "python -m sam_backends download sam2.1-tiny" in message
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("variable", checkpoints.OFFLINE_ENVS)
def test_offline_mode_never_touches_the_network(server, tmp_path, monkeypatch, variable):
    monkeypatch.setenv(variable, "1")
    spec = spec_for(server, "/offline-probe")
    with pytest.raises(DownloadError, match="offline") as info:
        checkpoints.download(spec, tmp_path, progress=False)
    message = str(info.value)
    assert spec.checkpoint_file in message and spec.url in message
    assert "python -m sam_backends download sam-vit-b" in message
    assert hits(server, "/offline-probe") == 0


def test_missing_without_download(server, tmp_path):
    spec = spec_for(server)
    with pytest.raises(CheckpointMissingError) as info:
        checkpoints.ensure_checkpoint(spec, tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / spec.checkpoint_file) in message
    assert spec.url in message and "python -m sam_backends download sam-vit-b" in message


def test_ensure_checkpoint_downloads_when_asked(server, tmp_path):
    spec = spec_for(server)
    path = checkpoints.ensure_checkpoint(spec, tmp_path / "new" / "folder", download=True,
                                         progress=False)
    assert path.read_bytes() == PAYLOAD


def _download_after_barrier(spec, folder, barrier):
    barrier.wait(30)
    checkpoints.download(spec, folder, progress=False)


def test_two_processes_download_once(server, tmp_path):
    """Two processes ask for the same file at the same moment; the server sees one request."""
    spec = spec_for(server, "/slow")  # trickled over ~1 s, so the two requests overlap
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    processes = [
        context.Process(target=_download_after_barrier, args=(spec, tmp_path, barrier))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0, 0]
    assert hits(server, "/slow") == 1
    assert (tmp_path / spec.checkpoint_file).read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == [spec.checkpoint_file]


def test_two_threads_download_once(server, tmp_path):
    spec = spec_for(server, "/slow")
    before = hits(server, "/slow")
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(checkpoints.download(spec, tmp_path, progress=False))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 2 and results[0] == results[1]
    assert hits(server, "/slow") == before + 1
