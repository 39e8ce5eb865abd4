"""The Dockerfile refers to real things: files it copies, pins it reads from requirements.txt,
flags of ``app.py``, the health route and the checkpoints variable. Docker itself does not run
here, so the install step's shell script runs with a stand-in ``pip`` that records its calls.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sam_backends.weights import checkpoints
from workbench.config import DEFAULT_PORT

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
PINS = {line.split("==")[0]: line for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")}
TORCH = f"{PINS['torch']} {PINS['torchvision']}"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in joined]


def values(name: str) -> list[str]:
    return [args for instruction, args in instructions() if instruction == name]


def test_copied_files_exist_and_are_not_docker_ignored():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore, ".dockerignore starts from nothing and lets the copied paths back in"
    for args in values("COPY"):
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        for source in words[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert f"!{source.rstrip('/')}" in {p.rstrip("/") for p in ignore}, (
                f"{source} is excluded by .dockerignore")


def test_cmd_runs_the_app_on_all_interfaces_with_real_flags():
    (cmd,) = values("CMD")
    argv = json.loads(cmd)
    assert argv[:2] == ["python", "app.py"] and (ROOT / "app.py").is_file()
    result = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for flag in (a for a in argv[2:] if a.startswith("--")):
        assert flag in result.stdout, f"app.py has no {flag}"
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert values("EXPOSE") == [str(DEFAULT_PORT)]


def test_checkpoints_volume_is_the_folder_the_engine_reads():
    env = " ".join(values("ENV"))
    match = re.search(rf"{checkpoints.CHECKPOINT_DIR_ENV}=(\S+)", env)
    assert match, f"ENV does not set {checkpoints.CHECKPOINT_DIR_ENV}"
    assert values("VOLUME") == [match.group(1)]


def test_healthcheck_asks_the_health_route_with_python_only():
    (check,) = values("HEALTHCHECK")
    argv = json.loads(check.split("CMD", 1)[1])
    assert argv[:2] == ["python", "-c"]
    compile(argv[2], "healthcheck", "exec")
    assert f"127.0.0.1:{DEFAULT_PORT}/healthz" in argv[2]
    routes = "".join(p.read_text() for p in (ROOT / "server").rglob("*.py"))
    assert re.search(r"""Route\(\s*["']/healthz["']""", routes), "no /healthz route in server/"


def test_runs_as_a_non_root_user():
    (user,) = values("USER")
    assert user not in ("root", "0")
    assert any("useradd" in run and user in run for run in values("RUN"))


def _install_script() -> str:
    (script,) = [run for run in values("RUN") if "VARIANT" in run]
    return script


@pytest.fixture
def fake_pip(tmp_path) -> Path:
    """A folder with requirements.txt and a ``pip`` on PATH that logs each call as
    ``<SAM2_BUILD_CUDA>|<arguments>``."""
    (tmp_path / "requirements.txt").write_text((ROOT / "requirements.txt").read_text())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pip = bin_dir / "pip"
    pip.write_text('#!/bin/sh\necho "${SAM2_BUILD_CUDA:-}|$*" >> "$PIP_LOG"\n')
    pip.chmod(pip.stat().st_mode | stat.S_IEXEC)
    return tmp_path


def _run_install(folder: Path, variant: str) -> tuple[int, list[str], str]:
    log = folder / f"pip-{variant}.log"
    env = dict(os.environ, PATH=f"{folder / 'bin'}:{os.environ['PATH']}", VARIANT=variant,
               PIP_LOG=str(log))
    result = subprocess.run(["sh", "-c", _install_script()], cwd=folder, env=env,
                            capture_output=True, text=True, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return result.returncode, calls, result.stderr


def test_install_step_takes_torch_from_the_cpu_index_for_cpu(fake_pip):
    rc, calls, err = _run_install(fake_pip, "cpu")
    assert rc == 0, err
    assert calls[0] == f"|install {TORCH} --index-url https://download.pytorch.org/whl/cpu"
    assert calls[2] == f"0|install --no-build-isolation {PINS['sam2']}"
    assert calls[-1] == "|install -r requirements.txt"


def test_install_step_takes_pypi_torch_for_cuda_and_refuses_other_variants(fake_pip):
    rc, calls, err = _run_install(fake_pip, "cuda")
    assert rc == 0, err
    assert calls[0] == f"|install {TORCH}"
    rc, calls, err = _run_install(fake_pip, "rocm")
    assert rc == 1 and calls == [] and "VARIANT must be cpu or cuda" in err


def test_pins_read_by_the_dockerfile_are_in_requirements():
    assert {"torch", "torchvision", "sam2"} <= set(PINS)
