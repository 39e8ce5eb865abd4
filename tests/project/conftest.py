"""The project built and installed once per test session, outside the repository.

    def test_something(installed, tmp_path):
        result = installed.run([installed.python, "-m", "sam_backends", "list"], cwd=tmp_path)

``wheel`` is what ``pip wheel`` builds from a copy of the sources (an in-tree build would leave
``build/`` and ``*.egg-info`` in the shared checkout). ``installed`` is that wheel installed with
``--no-deps`` into a fresh ``python -m venv --system-site-packages`` (torch, gradio and the other
dependencies come from this Python; nothing is downloaded), so the repository is on no path when
its commands and README's snippets run there. Both are built on first use, a few seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "app.py", "sam_backends", "workbench", "server", "ui")
# Settings of the caller's shell that would point an installed copy back at other files.
DROPPED_ENV = ("PYTHONPATH", "SAM_CHECKPOINT_DIR", "XDG_CACHE_HOME", "SPACE_ID",
               "GRADIO_SERVER_PORT", "GRADIO_MCP_SERVER")
DROPPED_ENV_PREFIXES = ("SAM_CHECKPOINT_", "SAMWB_")


def copy_sources(dest: Path) -> Path:
    """The files ``pip install .`` reads, copied into ``dest``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyi")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        else:
            shutil.copy2(source, dest / name)
    return dest


@dataclass(frozen=True)
class InstalledProject:
    """A virtual environment holding the installed project (``venv``), and a way to run in it."""

    venv: Path

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def bin(self, name: str) -> str:
        """The path of a console script (``samwb``, ``samwb-models``, ``samwb-keys``)."""
        return str(self.venv / "bin" / name)

    def env(self, **extra: str) -> dict[str, str]:
        """This process's environment without the project's settings, offline, with the venv's
        ``bin`` first on ``PATH`` (as after ``source venv/bin/activate``), plus ``extra``."""
        environ = {k: v for k, v in os.environ.items()
                   if k not in DROPPED_ENV and not k.startswith(DROPPED_ENV_PREFIXES)}
        environ.update(PATH=f"{self.venv / 'bin'}{os.pathsep}{environ.get('PATH', '')}",
                       VIRTUAL_ENV=str(self.venv), SAM_OFFLINE="1", HF_HUB_OFFLINE="1",
                       GRADIO_ANALYTICS_ENABLED="False", **extra)
        return environ

    def run(self, args: list[str] | str, cwd: Path, timeout: float = 180, **extra: str
            ) -> subprocess.CompletedProcess:
        """Run ``args`` (a string: through ``bash -c``) in ``cwd`` with ``env(**extra)``."""
        if isinstance(args, str):
            args = ["bash", "-c", args]
        return subprocess.run(args, cwd=cwd, env=self.env(**extra), capture_output=True,
                              text=True, timeout=timeout)


@pytest.fixture(scope="session")
def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files of the project a clone would hold for ``pip install .`` (not to be changed)."""
    return copy_sources(tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="session")
def wheel(source_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip wheel`` builds from ``source_copy`` (a few seconds)."""
    src = source_copy
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-q", str(src), "-w", str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("segment_anything_workbench-0.1.0-*.whl")
    return built


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> InstalledProject:
    """``wheel`` installed (``--no-deps``) into a fresh venv that sees this Python's packages.

    The venv has no pip of its own (``--without-pip`` saves installing one): this Python's pip,
    run by the venv's interpreter, installs into the venv."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    "--clear", str(venv)], check=True, capture_output=True, timeout=120)
    project = InstalledProject(venv)
    result = subprocess.run(
        [project.python, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
         "-q", str(wheel)], capture_output=True, text=True, timeout=300, env=project.env())
    assert result.returncode == 0, result.stderr
    return project
