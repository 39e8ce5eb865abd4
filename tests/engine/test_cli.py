"""``python -m sam_backends list`` and ``download``: run as a user would, in a subprocess."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from sam_backends import __main__ as cli
from sam_backends.registry import CATALOGUE, get_spec
from sam_backends.weights import checkpoints

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in (checkpoints.CHECKPOINT_DIR_ENV, *checkpoints.OFFLINE_ENVS)}
    return subprocess.run([sys.executable, "-m", "sam_backends", *args], cwd=ROOT,
                          env=clean | env, capture_output=True, text=True, timeout=120)


def table_rows(stdout: str) -> dict[str, str]:
    return {line.split()[0]: line for line in stdout.splitlines()[2:] if line.strip()}


def test_list_shows_every_model(tmp_path):
    spec = get_spec("sam2.1-tiny")
    (tmp_path / spec.checkpoint_file).write_bytes(b"x")
    result = run_cli("list", "--checkpoint-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"Checkpoints folder: {tmp_path}" in result.stdout
    rows = table_rows(result.stdout)
    assert list(rows) == [s.model_id for s in CATALOGUE]
    assert " present " in rows["sam2.1-tiny"] and "156.0 MB" in rows["sam2.1-tiny"]
    assert " absent " in rows["sam-vit-h"] and "2.6 GB" in rows["sam-vit-h"]
    assert "641.1M" in rows["sam-vit-h"] and "SAM ViT-H" in rows["sam-vit-h"]
    assert "not needed" in rows["grabcut"]
    assert " absent " in rows["sam3"]  # a Hugging Face model folder is weights too
    (tmp_path / "sam3").mkdir()
    (tmp_path / "sam3" / "config.json").write_text("{}")
    again = table_rows(run_cli("list", "--checkpoint-dir", str(tmp_path)).stdout)
    assert " present " in again["sam3"]
    assert "mask refinement" not in rows["grabcut"] and "box+points" in rows["grabcut"]
    assert rows["sam2.1-large"].rstrip().endswith("video")


def test_list_honours_the_environment_variable(tmp_path):
    (tmp_path / get_spec("sam-vit-b").checkpoint_file).write_bytes(b"x")
    result = run_cli("list", SAM_CHECKPOINT_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert " present " in table_rows(result.stdout)["sam-vit-b"]


def test_unknown_id_is_a_clear_one_line_error(tmp_path):
    result = run_cli("download", "sam-vit-b", "sam-vit-x", "--checkpoint-dir", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "Unknown model 'sam-vit-x'" in result.stderr and "sam2.1-tiny" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing started before the ids were checked


def test_offline_download_fails_with_the_fix(tmp_path):
    result = run_cli("download", "sam-vit-b", "grabcut", "--checkpoint-dir", str(tmp_path),
                     SAM_OFFLINE="1")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "sam_vit_b_01ec64.pth" in result.stderr
    assert "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth" in result.stderr
    assert "python -m sam_backends download sam-vit-b" in result.stderr
    assert "grabcut: needs no checkpoint." in result.stdout


def test_missing_command_is_a_usage_error():
    result = run_cli()
    assert result.returncode == 2 and "usage:" in result.stderr


DATA = bytes(range(256)) * 4096


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.server.hits += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(DATA)))
        self.end_headers()
        self.wfile.write(DATA)

    def log_message(self, *args):
        pass


@pytest.fixture
def local_catalogue(monkeypatch):
    """The CLI's id lookup answers sam-vit-b with a spec whose URL is a local server."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.hits = 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    spec = replace(get_spec("sam-vit-b"), url=f"http://127.0.0.1:{server.server_address[1]}/w",
                   sha256=hashlib.sha256(DATA).hexdigest(), size_bytes=len(DATA))
    monkeypatch.setattr(cli, "get_spec", lambda model_id: spec if model_id == "sam-vit-b"
                        else get_spec(model_id))
    for name in checkpoints.OFFLINE_ENVS:
        monkeypatch.delenv(name, raising=False)
    yield spec, server
    server.shutdown()
    server.server_close()


def test_download_command_fetches_and_then_reports_present(local_catalogue, tmp_path, capsys):
    spec, server = local_catalogue
    assert cli.main(["download", "sam-vit-b", "--checkpoint-dir", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / spec.checkpoint_file).read_bytes() == DATA
    assert "downloaded and verified" in capsys.readouterr().out
    assert cli.main(["download", "sam-vit-b", "--checkpoint-dir", str(tmp_path), "--quiet"]) == 0
    assert "already present" in capsys.readouterr().out
    assert server.hits == 1


def test_download_command_reports_a_bad_checksum(local_catalogue, tmp_path, capsys, monkeypatch):
    spec, _ = local_catalogue
    broken = replace(spec, sha256="f" * 64)
    monkeypatch.setattr(cli, "get_spec", lambda model_id: broken)
    assert cli.main(["download", "sam-vit-b", "--checkpoint-dir", str(tmp_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "SHA-256" in err and err.strip().count("\n") == 0
    assert not (tmp_path / spec.checkpoint_file).exists()
