"""``python app.py``: flags, HF Space defaults, and no heavy work at import time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_flag():
    out = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for flag in ("--host", "--port", "--share", "--models", "--device", "--precision",
                 "--checkpoint-dir", "--cache-bytes", "--max-file-size"):
        assert flag in out.stdout


def test_import_and_build_do_not_load_torch_or_models():
    code = (
        "import sys, app\n"
        "assert 'demo' not in vars(app)\n"
        "from workbench.config import AppConfig\n"
        "demo = app.build_demo(AppConfig(models=('grabcut', 'sam2.1-tiny')))\n"
        "assert demo.ctx.pool.loaded_ids() == []\n"
        "assert 'torch' not in sys.modules, 'UI code imported torch'\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SPACE_ID"}
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_flags_become_the_config(tmp_path, monkeypatch):
    import app

    monkeypatch.delenv("SPACE_ID", raising=False)
    config = app.config_from_args([
        "--port", "9000", "--models", "grabcut,sam-vit-b", "--device", "cpu",
        "--precision", "fp32", "--checkpoint-dir", str(tmp_path), "--cache-bytes", "512MiB",
        "--max-file-size", "5mb",
    ])
    assert (config.host, config.port) == ("127.0.0.1", 9000)
    assert config.models == ("grabcut", "sam-vit-b")
    assert (config.device, config.precision) == ("cpu", "fp32")
    assert config.checkpoint_dir == tmp_path and config.cache_bytes == "512MiB"
    assert config.max_file_size == "5mb" and not config.fetch_default_on_start
    assert app.config_from_args(["--device", "auto"]).device is None
    with pytest.raises(SystemExit):
        app.config_from_args(["--device", "tpu"])


def test_space_binds_everywhere_and_prefetches(monkeypatch):
    import app

    monkeypatch.setenv("SPACE_ID", "someone/sam-workbench")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7861")
    config = app.config_from_args([])
    assert (config.host, config.port) == ("0.0.0.0", 7861)
    assert config.fetch_default_on_start and config.default_model == "sam2.1-tiny"
    assert config.device is None  # automatic: the Space's GPU when it has one


def test_prefetch_reports_failure_on_the_page(tmp_path, monkeypatch):
    import app
    from workbench.config import AppConfig
    from workbench.context import AppContext

    monkeypatch.setenv("SAM_OFFLINE", "1")
    ctx = AppContext(AppConfig(models=("sam2.1-tiny", "grabcut"), checkpoint_dir=tmp_path))
    thread = app.start_prefetch(ctx, "sam2.1-tiny")
    thread.join(30)
    assert ctx.startup_note.startswith("Could not fetch SAM 2.1 Tiny at start-up")
    assert app.start_prefetch(ctx, "grabcut") is None  # nothing to fetch


def test_the_protection_flags_reach_the_config(tmp_path):
    from app import config_from_args

    config = config_from_args([
        "--models", "grabcut", "--default-model", "grabcut", "--max-body-bytes", "5MiB",
        "--queue-max-size", "9", "--api-max-waiting", "3", "--request-timeout", "30",
        "--temp-dir", str(tmp_path), "--temp-max-bytes", "100MiB", "--no-operator-details",
        "--frame-ancestors", "'self' https://example.org", "--analytics"])
    assert config.body_limit == 5 << 20
    assert (config.queue_max_size, config.api_max_waiting, config.request_timeout_s) == (9, 3, 30)
    assert config.temp_dir == tmp_path and config.temp_max_bytes == 100 << 20
    assert config.shows_operator_details is False and config.analytics is True
    assert config.frame_policy == "'self' https://example.org"


def test_protection_defaults_when_no_flag_is_given(monkeypatch):
    from app import config_from_args

    monkeypatch.delenv("SPACE_ID", raising=False)
    config = config_from_args(["--models", "grabcut", "--default-model", "grabcut"])
    assert config.body_limit == 25_000_000 + (1 << 20)
    assert config.analytics is False and config.shows_operator_details is True
    assert config.frame_policy == "'self'"


def test_ui_auth_from_the_flag_or_the_environment(monkeypatch):
    from app import config_from_args

    base = ["--models", "grabcut", "--default-model", "grabcut"]
    monkeypatch.delenv("SAMWB_UI_AUTH", raising=False)
    assert config_from_args(base).ui_auth == ()
    flagged = config_from_args(base + ["--ui-auth", "ann:pa:ss", "--ui-auth", "bo:x"])
    assert flagged.ui_auth == (("ann", "pa:ss"), ("bo", "x"))
    monkeypatch.setenv("SAMWB_UI_AUTH", "cy:word")
    assert config_from_args(base).ui_auth == (("cy", "word"),)
    with pytest.raises(SystemExit, match="USER:PASSWORD"):
        config_from_args(base + ["--ui-auth", "nopassword"])


def test_examples_dir_flag_points_at_an_operators_folder_or_none(tmp_path, capsys):
    from app import config_from_args
    from ui.segment.view import list_examples
    from workbench.config import ASSETS_DIR

    base = ["--models", "grabcut", "--default-model", "grabcut"]
    (tmp_path / "b.png").write_bytes(b"")
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "folder.jpg").mkdir()
    assert config_from_args(base).examples_dir == ASSETS_DIR
    chosen = config_from_args(base + ["--examples-dir", str(tmp_path)]).examples_dir
    assert [p.name for p in list_examples(chosen)] == ["a.jpg", "b.png"]
    assert config_from_args(base + ["--examples-dir", "none"]).examples_dir is None
    with pytest.raises(SystemExit):
        config_from_args(base + ["--examples-dir", str(tmp_path / "missing")])
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT"])
def test_sigterm_cleans_up_like_ctrl_c(tmp_path, stop):
    """``docker stop`` and systemd send SIGTERM: the run's temp folder goes, as with Ctrl-C."""
    import signal
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "SPACE_ID"}
    env.update(GRADIO_ANALYTICS_ENABLED="False", SAM_OFFLINE="1")
    child = subprocess.Popen(
        [sys.executable, "app.py", "--models", "grabcut", "--host", "127.0.0.1", "--port",
         str(port), "--temp-dir", str(tmp_path)], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        assert child.poll() is None, child.stderr.read()[-2000:]
        runs = [p for p in tmp_path.rglob("run-*") if p.is_dir()]
        assert runs, f"no run folder under {tmp_path}"
        child.send_signal(getattr(signal, stop))
        child.wait(60)
        assert [p for p in runs if p.exists()] == [], "the run's temp folder was left behind"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)


def test_a_hugging_face_model_takes_a_folder_as_its_custom_checkpoint(tmp_path, monkeypatch):
    """README: ``--checkpoint sam3=FOLDER`` names a folder written by save_pretrained."""
    import app
    from workbench.context import AppContext

    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("SAM_CHECKPOINT_SAM3", raising=False)
    folder = tmp_path / "my-sam3"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    config = app.config_from_args(["--models", "grabcut,sam3", "--checkpoint",
                                   f"sam3={folder}", "--checkpoint-dir", str(tmp_path / "none")])
    assert dict(config.custom_checkpoints)["sam3"] == folder
    ctx = AppContext(config)
    try:
        assert ctx.status("sam3").present and ctx.status("sam3").custom
    finally:
        ctx.close()
    with pytest.raises(SystemExit):  # not a model folder: refused at start, with the reason
        app.config_from_args(["--models", "sam3", "--checkpoint", f"sam3={tmp_path}"])


def test_an_absent_hugging_face_model_is_not_shown_as_present(tmp_path, monkeypatch):
    from workbench.config import AppConfig
    from workbench.context import AppContext

    monkeypatch.delenv("SAM_CHECKPOINT_SAM3", raising=False)
    ctx = AppContext(AppConfig(models=("grabcut", "sam3"), checkpoint_dir=tmp_path))
    try:
        assert not ctx.status("sam3").present
        assert ctx.default_model() == "grabcut"
    finally:
        ctx.close()
