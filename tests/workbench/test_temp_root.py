"""Every temp file of a run lives under one folder that is removed at clean shutdown, and at
the next start when the process was killed; the folder has a byte bound."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from app_harness import ROOT, running_app
from PIL import Image

from workbench.config import AppConfig
from workbench.temp_root import TempRoot, usage

gradio_client = pytest.importorskip("gradio_client")

CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from workbench.temp_root import TempRoot
temp = TempRoot({parent!r})
(temp.folder("exports") / "left-behind.png").write_bytes(b"x" * 1000)
print(temp.path, flush=True)
time.sleep(60)
"""


def start_child(parent: Path) -> tuple[subprocess.Popen, Path]:
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT),
                                                                 parent=str(parent))],
                             stdout=subprocess.PIPE, text=True)
    line = child.stdout.readline().strip()
    assert line, "the child process did not start"
    return child, Path(line)


def test_a_killed_runs_folder_is_removed_at_the_next_start_a_live_ones_is_kept(tmp_path):
    child, child_root = start_child(tmp_path)
    try:
        mine = TempRoot(tmp_path)
        assert child_root.is_dir(), "a live run's folder must be left alone"
        mine.close()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert child_root.is_dir()  # killed: nothing cleaned up by itself
        again = TempRoot(tmp_path)
        assert not child_root.exists()
        assert [p.name for p in tmp_path.iterdir()] == [again.path.name]
        again.close()
    finally:
        child.kill()
        child.wait(10)


def test_close_removes_the_folder_and_everything_in_it(tmp_path):
    temp = TempRoot(tmp_path)
    (temp.folder("api") / "cutout.png").write_bytes(b"png")
    temp.gradio_dir.mkdir()
    (temp.gradio_dir / "upload.png").write_bytes(b"png")
    temp.close()
    temp.close()  # twice is fine
    assert list(tmp_path.iterdir()) == []


def test_the_bound_removes_the_oldest_files_first(tmp_path):
    temp = TempRoot(tmp_path, max_bytes=2500)
    folder = temp.folder("exports")
    for n in range(5):
        path = folder / f"file{n}.bin"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (time.time() - 2000 + n, time.time() - 2000 + n))
    freed = temp.enforce_bound()
    assert freed == 3000
    assert sorted(p.name for p in folder.iterdir()) == ["file3.bin", "file4.bin"]
    assert temp.usage().bytes <= 2500
    temp.close()


def test_the_janitor_never_deletes_a_file_that_may_be_in_use(tmp_path):
    temp = TempRoot(tmp_path, max_bytes=1500)
    folder = temp.folder("exports")
    old, fresh = folder / "old.bin", folder / "fresh.bin"
    old.write_bytes(b"x" * 1000)
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    fresh.write_bytes(b"x" * 1000)  # just written: a page may still show it
    assert temp.enforce_bound() == 1000
    assert fresh.exists() and not old.exists()
    (folder / "fresh2.bin").write_bytes(b"x" * 1000)
    assert temp.enforce_bound() == 0  # over the bound, but nothing old enough to go
    temp.close()


def test_a_write_that_would_pass_the_bound_is_refused_at_once(tmp_path):
    from workbench.errors import failure_of
    from workbench.temp_root import TempFullError

    temp = TempRoot(tmp_path, max_bytes=3000)
    temp.reserve(1000)
    (temp.folder("api") / "a.bin").write_bytes(b"x" * 1000)
    temp.reserve(1500)
    with pytest.raises(TempFullError, match="temporary storage is full") as full:
        temp.reserve(1000, "This upload")
    assert str(tmp_path) not in str(full.value)  # nothing of the server's paths
    failure = failure_of(full.value)
    assert (failure.status, failure.code) == (507, "storage_full")
    disk = failure_of(OSError(28, "No space left on device"))
    assert (disk.status, disk.code) == (507, "storage_full") and "disk is full" in disk.message
    temp.close()


def test_uploads_past_the_temp_bound_are_refused_when_they_are_made(tmp_path):
    """--temp-max-bytes acts at the upload: 507 with a reason, earlier files kept."""
    import httpx

    config = AppConfig(models=("grabcut",), default_model="grabcut", temp_dir=tmp_path,
                       temp_max_bytes=5 << 20, max_file_size="3mb")
    data = os.urandom(2 << 20)
    with running_app(config) as running:
        kept, refused = [], []
        for n in range(4):
            response = httpx.post(running.url + "gradio_api/upload",
                                  files={"files": (f"f{n}.bin", data)}, timeout=60)
            if response.status_code == 200:
                kept.append(Path(response.json()[0]))
            else:
                refused.append(response)
        assert len(kept) == 2 and [r.status_code for r in refused] == [507, 507]
        assert "temporary storage is full" in refused[0].json()["error"]["message"]
        # Chunked (no Content-Length): counted as it streams. 100 KB still fits; 2 MiB does not.
        small = chunked_upload(running.url, os.urandom(100_000))
        assert small.status == 200, small.body
        big = chunked_upload(running.url, data)
        assert big.status == 507, big.body
        assert "temporary storage is full" in json.loads(big.body)["error"]["message"]
        assert all(path.exists() for path in kept)  # nothing in use was deleted
        running.ctx.temp.enforce_bound()
        assert all(path.exists() for path in kept)


def chunked_upload(url: str, data: bytes, chunk: int = 64 * 1024):
    """POST ``data`` to Gradio's upload route as a multipart file in a chunked body (no
    Content-Length), over a raw loopback socket."""
    from http_raw import raw_request

    body = (b'--b\r\nContent-Disposition: form-data; name="files"; filename="c.bin"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--b--\r\n")
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + chunk]), body[i:i + chunk])
                      for i in range(0, len(body), chunk))
    head = (b"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    return raw_request(url, head + chunks + b"0\r\n\r\n", timeout=30)


def test_the_apps_uploads_outputs_and_exports_live_in_its_temp_folder(tmp_path):
    parent = tmp_path / "temp"
    image = tmp_path / "scene.png"
    pixels = np.full((120, 160, 3), 30, np.uint8)
    pixels[30:90, 40:120] = (230, 210, 20)
    Image.fromarray(pixels).save(image)
    config = AppConfig(models=("grabcut",), default_model="grabcut", temp_dir=parent)
    with running_app(config) as running:
        root = running.ctx.temp.path
        assert root.parent == parent and os.environ["GRADIO_TEMP_DIR"] == str(root / "gradio")
        client = gradio_client.Client(running.url, verbose=False)
        _, cutout = client.predict(gradio_client.handle_file(str(image)), "grabcut",
                                   json.dumps({"box": [40, 30, 120, 90]}), api_name="/segment")
        served = [p for p in root.rglob("*") if p.is_file() and p.name != ".lock"]
        assert any(p.name == "scene_cutout.png" for p in served)  # our API output
        assert any(p.suffix == ".png" and "gradio" in p.parts for p in served)  # Gradio's cache
        assert usage(root).files >= 2
    assert not root.exists(), "a clean shutdown removes the run's temp folder"


def test_the_default_parent_is_private_to_this_user(tmp_path, monkeypatch):
    import tempfile as tempfile_module

    from workbench import temp_root

    monkeypatch.setattr(tempfile_module, "tempdir", str(tmp_path))
    temp = TempRoot()
    assert temp.parent == tmp_path / f"samwb-{os.getuid()}"
    assert temp.parent.stat().st_mode & 0o777 == 0o700
    temp.close()
    planted = tmp_path / "elsewhere"
    planted.mkdir()
    temp.parent.rmdir()
    temp.parent.symlink_to(planted)  # a link planted under our name is refused
    with pytest.raises(PermissionError, match="--temp-dir"):
        TempRoot()
    temp.parent.unlink()
    temp.parent.mkdir(mode=0o777)
    temp.parent.chmod(0o777)  # open to others: refused too
    with pytest.raises(PermissionError, match="not a private folder"):
        temp_root.TempRoot()
