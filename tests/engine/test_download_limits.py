"""Downloads never hang, leave no partial files behind, and end up readable (mode 0644).

Against a loopback server (127.0.0.1 only) that drips, stalls or trickles; the limits are tiny
(``DownloadLimits``) so each case ends in about a second. Before the limits, the drip case ran
until the whole file had arrived (one byte per read never trips a per-read timeout).
"""

from __future__ import annotations

import hashlib
import http.server
import multiprocessing
import os
import signal
import stat
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sam_backends.errors import DownloadError
from sam_backends.registry import get_spec
from sam_backends.weights import checkpoint_verification, checkpoints
from sam_backends.weights.checkpoints import DownloadLimits

PAYLOAD = np.random.default_rng(1).integers(0, 256, 3 * 1024**2 + 7, dtype=np.uint8).tobytes()
SHA = hashlib.sha256(PAYLOAD).hexdigest()
# A window of half a second wanting 4 KiB; a dripping server sends ~50 bytes/s.
TINY = DownloadLimits(read_timeout_s=5.0, window_s=0.5, min_window_bytes=4096, min_total_s=30.0)
BOUND_S = 5.0  # every failing case must end well within this


class _Handler(http.server.BaseHTTPRequestHandler):
    """/file: the payload at once; /drip: one byte per 20 ms; /stall: 1000 bytes, then silence;
    /steady: 64 KiB per 50 ms (about 2.4 s for the payload). Handlers stop at teardown."""

    def do_GET(self):  # the http.server API
        stop: threading.Event = self.server.stop
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        try:
            if self.path == "/file":
                self.wfile.write(PAYLOAD)
            elif self.path == "/drip":
                for i in range(len(PAYLOAD)):
                    self.wfile.write(PAYLOAD[i:i + 1])
                    if stop.wait(0.02):
                        return
            elif self.path == "/stall":
                self.wfile.write(PAYLOAD[:1000])
                stop.wait(30)
            elif self.path == "/steady":
                for start in range(0, len(PAYLOAD), 64 * 1024):
                    self.wfile.write(PAYLOAD[start:start + 64 * 1024])
                    if stop.wait(0.05):
                        return
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up, as it should

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.stop = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.stop.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def online(monkeypatch):
    for name in checkpoints.OFFLINE_ENVS:
        monkeypatch.delenv(name, raising=False)


def spec_for(server, path: str):
    url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    return replace(get_spec("sam-vit-b"), url=url, sha256=SHA, size_bytes=len(PAYLOAD))


def partial_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def _timed_failure(spec, folder, limits=TINY) -> tuple[str, float]:
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        checkpoints.download(spec, folder, progress=False, limits=limits)
    return str(info.value), time.monotonic() - start


def test_dripping_server_is_given_up(server, tmp_path):
    spec = spec_for(server, "/drip")
    message, elapsed = _timed_failure(spec, tmp_path)
    assert elapsed < BOUND_S
    assert "too slow" in message and "bytes arrived in the last 0.5 s" in message
    assert "less than the minimum of 4,096 bytes" in message
    assert spec.url in message and "python -m sam_backends download sam-vit-b" in message
    assert partial_files(tmp_path) == [] and not (tmp_path / spec.checkpoint_file).exists()


def test_silent_server_is_given_up_within_the_window(server, tmp_path):
    spec = spec_for(server, "/stall")
    message, elapsed = _timed_failure(spec, tmp_path)
    assert elapsed < BOUND_S
    assert "no data arrived for 0.5 s" in message or "too slow" in message
    assert partial_files(tmp_path) == []


def test_overall_deadline(server, tmp_path):
    """A steady 1.3 MB/s passes the rate rule but not a 0.5 s deadline for 3 MB."""
    spec = spec_for(server, "/steady")
    limits = replace(TINY, min_window_bytes=1024, min_total_s=0.5, floor_bytes_per_s=1e12)
    message, elapsed = _timed_failure(spec, tmp_path, limits)
    assert elapsed < BOUND_S
    assert "did not finish within 0.5 s" in message and f"of {len(PAYLOAD):,} bytes" in message
    assert partial_files(tmp_path) == []


def test_default_limits_scale_with_the_file():
    limits = checkpoints.DEFAULT_DOWNLOAD_LIMITS
    assert limits.total_deadline_s(1_000_000) == 600  # small files: 10 minutes
    big = get_spec("sam-vit-h").size_bytes
    assert limits.total_deadline_s(big) == pytest.approx(big / (256 * 1024))
    assert limits.total_deadline_s(0) is None  # unknown size: the rate rule only
    assert limits.window_s == 60 and limits.read_timeout_s <= limits.window_s


def test_module_default_limits_apply(server, tmp_path, monkeypatch):
    """Callers that pass no limits (the app, the CLI) get ``DEFAULT_DOWNLOAD_LIMITS``."""
    monkeypatch.setattr(checkpoints, "DEFAULT_DOWNLOAD_LIMITS", TINY)
    start = time.monotonic()
    with pytest.raises(DownloadError, match="too slow"):
        checkpoints.ensure_checkpoint(spec_for(server, "/drip"), tmp_path, download=True,
                                      progress=False)
    assert time.monotonic() - start < BOUND_S


def test_stale_partial_files_are_removed_at_the_next_attempt(server, tmp_path):
    spec = spec_for(server, "/file")
    name = spec.checkpoint_file
    for stale in (f".{name}.k1ll3d.part", f".{name}.0ld.part"):
        (tmp_path / stale).write_bytes(b"half a download")
    other = tmp_path / ".sam_vit_l_0b3195.pth.x.part"  # another checkpoint's: not ours to touch
    other.write_bytes(b"x")
    path = checkpoints.download(spec, tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert partial_files(tmp_path) == [other.name]


def _download_forever(spec, folder):
    generous = DownloadLimits(window_s=60, min_window_bytes=1, min_total_s=600)
    checkpoints.download(spec, folder, progress=False, limits=generous)


def test_killed_download_leaves_a_part_file_that_the_next_one_removes(server, tmp_path):
    context = multiprocessing.get_context("fork")
    process = context.Process(target=_download_forever, args=(spec_for(server, "/drip"), tmp_path))
    process.start()
    try:
        deadline = time.monotonic() + 20
        while not partial_files(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert partial_files(tmp_path), "the download never started"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.join(10)
    assert len(partial_files(tmp_path)) == 1  # what a kill leaves behind
    path = checkpoints.download(spec_for(server, "/file"), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD and partial_files(tmp_path) == []


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_downloaded_file_mode_follows_the_umask(server, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = checkpoints.download(spec_for(server, "/file"), tmp_path, progress=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_download_remembers_the_hash_it_verified(server, tmp_path, monkeypatch):
    spec = spec_for(server, "/file")
    checkpoints.download(spec, tmp_path, progress=False)
    calls = []
    monkeypatch.setattr(checkpoint_verification, "sha256_file", lambda p: calls.append(p))
    assert checkpoints.ensure_checkpoint(spec, tmp_path).read_bytes() == PAYLOAD
    assert calls == []  # the first load after a download does not read the file again
