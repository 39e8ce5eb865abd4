"""Files under official names are checked against the catalogue's SHA-256 (once, remembered);
the user's own checkpoints (argument, env var, app flag) load as given and are shown as custom.

The "official" file here is a small random-weight checkpoint whose spec carries its real size
and hash (``random_models.with_official_hash``), so it takes the path catalogue files take.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from sam_backends import (
    CheckpointCorruptError,
    CheckpointHashMismatchError,
    CheckpointMissingError,
    create_backend,
    list_models,
)
from sam_backends import __main__ as cli
from sam_backends.testing.random_models import with_official_hash, write_random_checkpoint
from sam_backends.weights import checkpoint_verification, checkpoints
from sam_backends.weights.checkpoint_verification import RECORD_FILE, checkpoint_env_var

ENV_VIT_B = "SAM_CHECKPOINT_SAM_VIT_B"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    prefix = checkpoint_verification.CHECKPOINT_ENV_PREFIX
    for name in [n for n in os.environ if n.startswith(prefix) and n != "SAM_CHECKPOINT_DIR"]:
        monkeypatch.delenv(name)
    for name in checkpoints.OFFLINE_ENVS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def hash_calls(monkeypatch):
    """Counts (and performs) every SHA-256 of a whole file made while checking checkpoints."""
    calls: list[Path] = []
    real = checkpoint_verification.sha256_file

    def counting(path):
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(checkpoint_verification, "sha256_file", counting)
    return calls


@pytest.fixture
def official(sam1_small, tmp_path):
    """(spec with the file's hash as catalogue data, checkpoints folder holding the file)."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    path = folder / sam1_small.spec.checkpoint_file
    shutil.copyfile(sam1_small.path, path)
    return with_official_hash(sam1_small.spec, path), folder


@pytest.fixture(scope="module")
def finetuned(sam1_small, tmp_path_factory):
    """Valid weights for the same architecture that are not the official file (another seed)."""
    folder = tmp_path_factory.mktemp("finetuned")
    return write_random_checkpoint(sam1_small.spec, folder / "vit_b_medical.pth", seed=1)


def _load(spec, **kwargs):
    return create_backend(spec, device="cpu", precision="fp32", **kwargs)


def _flip_bytes(path: Path) -> None:
    """1 MiB (at most a quarter of the file) of inverted bytes in the middle; size unchanged."""
    data = bytearray(path.read_bytes())
    count = min(1 << 20, len(data) // 4)
    start = len(data) // 2 - count // 2
    data[start:start + count] = bytes(255 - b for b in data[start:start + count])
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


# -- official files: hashed once, remembered, mismatches refused ---------------------------------

def test_official_file_is_hashed_once_and_remembered(official, hash_calls):
    spec, folder = official
    _load(spec, checkpoint_dir=folder)
    assert len(hash_calls) == 1
    record = json.loads((folder / RECORD_FILE).read_text())
    entry = record["files"][spec.checkpoint_file]
    assert entry["sha256"] == spec.sha256 and entry["size"] == spec.size_bytes
    _load(spec, checkpoint_dir=folder)  # a restart reads the record, not the file
    checkpoints.ensure_checkpoint(spec, folder)
    assert len(hash_calls) == 1


def test_touched_file_is_hashed_again(official, hash_calls):
    spec, folder = official
    path = folder / spec.checkpoint_file
    checkpoints.ensure_checkpoint(spec, folder)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    checkpoints.ensure_checkpoint(spec, folder)
    assert len(hash_calls) == 2


def test_flipped_bytes_under_the_official_name_are_refused(official, hash_calls):
    spec, folder = official
    path = folder / spec.checkpoint_file
    checkpoints.ensure_checkpoint(spec, folder)  # verified and remembered while intact
    _flip_bytes(path)
    with pytest.raises(CheckpointHashMismatchError) as info:
        _load(spec, checkpoint_dir=folder)
    assert isinstance(info.value, CheckpointCorruptError)  # callers catching the old type
    message = str(info.value)
    assert str(path) in message and "SHA-256" in message and "not the official" in message
    assert f"python -m sam_backends download {spec.model_id} --force" in message
    assert checkpoint_env_var(spec.model_id) in message and "checkpoint=" in message
    assert f"--checkpoint {spec.model_id}=" in message
    assert len(hash_calls) == 2
    with pytest.raises(CheckpointHashMismatchError):  # the bad digest is remembered too
        checkpoints.ensure_checkpoint(spec, folder)
    assert len(hash_calls) == 2


def test_wrong_size_is_refused_without_hashing(official, hash_calls):
    spec, folder = official
    with open(folder / spec.checkpoint_file, "ab") as handle:
        handle.write(b"extra")
    with pytest.raises(CheckpointHashMismatchError, match="size"):
        checkpoints.ensure_checkpoint(spec, folder)
    assert hash_calls == []


def test_corrupt_record_means_hashing_again(official, hash_calls):
    spec, folder = official
    (folder / RECORD_FILE).write_text("{not json")
    checkpoints.ensure_checkpoint(spec, folder)
    assert len(hash_calls) == 1
    assert json.loads((folder / RECORD_FILE).read_text())["files"]  # rewritten, valid


def test_unwritable_record_means_hashing_every_time(official, hash_calls):
    spec, folder = official
    (folder / RECORD_FILE).mkdir()  # neither readable nor replaceable as a file
    checkpoints.ensure_checkpoint(spec, folder)
    checkpoints.ensure_checkpoint(spec, folder)
    assert len(hash_calls) == 2
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_specs_without_a_hash_are_not_checked(sam1_small, tmp_path, hash_calls):
    path = tmp_path / sam1_small.spec.checkpoint_file
    path.write_bytes(b"anything")
    assert sam1_small.spec.sha256 is None
    assert checkpoints.ensure_checkpoint(sam1_small.spec, tmp_path) == path
    assert hash_calls == []


# -- re-downloading a damaged file: download --force ---------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # the http.server API
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.payload)))
        self.end_headers()
        self.wfile.write(self.server.payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def served(official):
    """The official spec with a URL on a loopback server that serves the official bytes."""
    spec, folder = official
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.payload = (folder / spec.checkpoint_file).read_bytes()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield replace(spec, url=f"http://127.0.0.1:{server.server_address[1]}/w"), folder
    server.shutdown()
    server.server_close()


def test_download_refuses_a_damaged_file_and_force_replaces_it(served, monkeypatch, capsys,
                                                               hash_calls):
    spec, folder = served
    path = folder / spec.checkpoint_file
    _flip_bytes(path)
    with pytest.raises(CheckpointHashMismatchError, match="--force"):
        checkpoints.download(spec, folder, progress=False)
    monkeypatch.setattr(cli, "get_spec", lambda model_id: spec)
    argv = ["download", spec.model_id, "--checkpoint-dir", str(folder), "--quiet"]
    assert cli.main(argv) == 1
    assert "--force" in capsys.readouterr().err
    assert cli.main([*argv, "--force"]) == 0
    assert "downloaded and verified" in capsys.readouterr().out
    calls = len(hash_calls)
    _load(spec, checkpoint_dir=folder)  # the download recorded its hash: no re-hash to load
    assert len(hash_calls) == calls


# -- custom checkpoints: never hash-checked, shown as custom -------------------------------------

def test_explicit_checkpoint_is_not_hash_checked(official, finetuned, hash_calls):
    spec, _ = official
    backend = _load(spec, checkpoint=finetuned)
    assert backend.model_id == spec.model_id
    assert hash_calls == []


def test_environment_variable_names_a_custom_checkpoint(official, finetuned, hash_calls,
                                                        monkeypatch, tmp_path):
    spec, folder = official
    _flip_bytes(folder / spec.checkpoint_file)  # the official name is damaged and not used
    variable = checkpoint_env_var(spec.model_id)
    assert variable == "SAM_CHECKPOINT_TEST_SAM1_SMALL"
    monkeypatch.setenv(variable, str(finetuned))
    _load(spec, checkpoint_dir=folder)
    assert checkpoints.resolve_checkpoint(spec, None, folder) == finetuned
    assert hash_calls == []


def test_env_var_names_follow_the_model_id():
    assert checkpoint_env_var("sam-vit-b") == ENV_VIT_B
    assert checkpoint_env_var("sam2.1-base-plus") == "SAM_CHECKPOINT_SAM2_1_BASE_PLUS"


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_missing_custom_checkpoint_is_a_clear_error(official, how, monkeypatch, tmp_path):
    spec, folder = official
    missing = tmp_path / "nowhere" / "ft.pth"
    kwargs = {"checkpoint": missing} if how == "argument" else {}
    if how == "environment":
        monkeypatch.setenv(checkpoint_env_var(spec.model_id), str(missing))
    with pytest.raises(CheckpointMissingError) as info:
        _load(spec, checkpoint_dir=folder, **kwargs)
    message = str(info.value)
    assert "Custom checkpoint" in message and str(missing) in message
    if how == "environment":
        assert checkpoint_env_var(spec.model_id) in message


def test_list_shows_custom_from_the_environment(monkeypatch, capsys, finetuned, tmp_path):
    monkeypatch.setenv(ENV_VIT_B, str(finetuned))
    monkeypatch.setenv("SAM_CHECKPOINT_SAM_VIT_L", str(tmp_path / "missing.pth"))
    rows = {row.model_id: row for row in list_models(tmp_path)}
    assert rows["sam-vit-b"].custom and rows["sam-vit-b"].present
    assert rows["sam-vit-b"].checkpoint_path == str(finetuned)
    assert rows["sam-vit-l"].custom and not rows["sam-vit-l"].present
    assert not rows["sam-vit-h"].custom
    assert cli.main(["list", "--checkpoint-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    table = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert " custom " in table["sam-vit-b"] and "custom (missing)" in table["sam-vit-l"]
    assert " absent " in table["sam-vit-h"]
    assert f"env {ENV_VIT_B}" in out and str(finetuned) in out


# -- the app: --checkpoint ID=PATH ---------------------------------------------------------------

def test_app_flag_is_parsed_into_the_config(finetuned):
    import app

    config = app.config_from_args(["--models", "sam-vit-b,grabcut",
                                   "--checkpoint", f"sam-vit-b={finetuned}"])
    assert config.custom_checkpoints == (("sam-vit-b", finetuned),)
    assert app.config_from_args([]).custom_checkpoints == ()


@pytest.mark.parametrize("value, why", [
    ("sam-vit-b", "ID=PATH"),
    ("sam-vit-x={file}", "not a model with weights"),
    ("grabcut={file}", "not a model with weights"),
    ("sam-vit-b={missing}", "not found"),
])
def test_app_flag_errors_are_usage_errors(value, why, finetuned, tmp_path, capsys):
    import app

    text = value.format(file=finetuned, missing=tmp_path / "missing.pth")
    with pytest.raises(SystemExit) as info:
        app.config_from_args(["--checkpoint", text])
    assert info.value.code == 2
    assert why in capsys.readouterr().err


def test_app_flag_for_a_model_not_offered_is_refused(finetuned, capsys):
    import app

    with pytest.raises(SystemExit):
        app.config_from_args(["--models", "grabcut", "--checkpoint", f"sam-vit-b={finetuned}"])
    assert "--models" in capsys.readouterr().err


@pytest.fixture
def small_vit_b(official, monkeypatch):
    """The app's catalogue answers sam-vit-b with the small architecture and the "official"
    file's hash, so a custom checkpoint for it can really be loaded here."""
    import workbench.context

    spec, folder = official
    small = replace(spec, model_id="sam-vit-b", display_name="SAM ViT-B")
    real = workbench.context.get_spec
    monkeypatch.setattr(workbench.context, "get_spec",
                        lambda model_id: small if model_id == "sam-vit-b" else real(model_id))
    return small, folder


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_app_loads_and_shows_a_custom_checkpoint(how, small_vit_b, finetuned, hash_calls,
                                                 monkeypatch):
    import app
    from ui.api import SegmentApi
    from ui.widgets import models_panel
    from workbench.context import AppContext

    _, folder = small_vit_b
    argv = ["--models", "sam-vit-b,grabcut", "--checkpoint-dir", str(folder), "--device", "cpu",
            "--precision", "fp32"]
    if how == "flag":
        argv += ["--checkpoint", f"sam-vit-b={finetuned}"]
    else:
        monkeypatch.setenv(ENV_VIT_B, str(finetuned))
    ctx = AppContext(app.config_from_args(argv))
    try:
        status = ctx.status("sam-vit-b")
        assert status.custom and status.present and status.download_command is None
        assert not ctx.status("grabcut").custom
        assert ctx.checkpoint_file("sam-vit-b") == finetuned
        labels = {model_id: label for label, model_id in models_panel.choices(ctx)}
        assert "custom" in labels["sam-vit-b"] and "custom" not in labels["grabcut"]
        assert "custom checkpoint" in models_panel.status_markdown(ctx, "sam-vit-b")
        rows = {row["model_id"]: row for row in SegmentApi(ctx).models()}
        assert rows["sam-vit-b"]["custom"] is True and rows["grabcut"]["custom"] is False
        assert ctx.backend("sam-vit-b").model_id == "sam-vit-b"
        assert hash_calls == []  # the custom file was loaded as given
    finally:
        getattr(ctx, "close", lambda: None)()


def test_app_without_custom_checkpoint_verifies_the_official_file(small_vit_b, hash_calls):
    from workbench.config import AppConfig
    from workbench.context import AppContext

    _, folder = small_vit_b
    ctx = AppContext(AppConfig(models=("sam-vit-b",), checkpoint_dir=folder, device="cpu",
                               precision="fp32"))
    try:
        assert not ctx.status("sam-vit-b").custom
        ctx.backend("sam-vit-b")
        assert len(hash_calls) == 1
    finally:
        getattr(ctx, "close", lambda: None)()
