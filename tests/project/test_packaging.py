"""The project as a package: ``pyproject.toml`` agrees with requirements.txt, the wheel holds the
engine and the app, and installed outside the repository it imports, lists models and keeps its
checkpoints in the user's cache rather than in site-packages.

The wheel is built from a copy of the sources (an in-tree build would leave ``build/`` and
``*.egg-info`` in the shared checkout) and installed with ``--target`` into a temporary folder,
never into the real site-packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
SOURCES = ("pyproject.toml", "README.md", "app.py", "sam_backends", "workbench", "server", "ui")
PACKAGES = ("sam_backends", "workbench", "server", "ui")


def requirement_lines(path: Path) -> list[str]:
    """The requirement specifiers in a requirements file (comments and blank lines dropped)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def test_every_requirement_is_a_project_dependency_and_back():
    pinned = requirement_lines(ROOT / "requirements.txt")
    assert set(pinned) <= set(PROJECT["dependencies"]), "add these to [project] dependencies"
    assert set(PROJECT["dependencies"]) == set(pinned), "requirements.txt misses some of these"


def test_dev_extra_is_the_test_requirements():
    assert set(PROJECT["optional-dependencies"]["dev"]) == set(
        requirement_lines(ROOT / "tests" / "requirements.txt"))


def test_extras_and_console_scripts_are_declared():
    extras = PROJECT["optional-dependencies"]
    assert {"dev", "video", "text", "mcp", "zerogpu"} <= set(extras)
    assert extras["zerogpu"] == ["spaces==0.51.3"]
    assert PROJECT["scripts"] == {"samwb": "app:main",
                                  "samwb-models": "sam_backends.__main__:main",
                                  "samwb-keys": "server.security.keys:main"}
    import app
    import sam_backends.__main__ as cli

    assert callable(app.main) and callable(cli.main)


def _copy_sources(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyi")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        else:
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel ``pip wheel`` builds from a copy of the sources (a few seconds)."""
    src = _copy_sources(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-q", str(src), "-w", str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("segment_anything_workbench-0.1.0-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed with ``--target`` (no dependencies: those come from this Python)."""
    target = tmp_path_factory.mktemp("target")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
         "-q", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return target


def test_wheel_holds_the_app_the_engine_and_the_ui_subpackages(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "app.py" in names
    for package in PACKAGES:
        for module in (ROOT / package).rglob("*.py"):
            relative = module.relative_to(ROOT).as_posix()
            assert relative in names, f"{relative} is missing from the wheel"
    assert {"server/__init__.py", "workbench/__init__.py", "sam_backends/__main__.py"} <= names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "checkpoints/"))]
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "samwb = app:main" in text
    assert "samwb-models = sam_backends.__main__:main" in text
    assert "samwb-keys = server.security.keys:main" in text


def _run_installed(target: Path, cwd: Path, args: list[str], **env: str
                   ) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("SAM_CHECKPOINT_DIR", "XDG_CACHE_HOME", "PYTHONPATH")}
    environ.update(PYTHONPATH=str(target), SAM_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
                   **env)
    return subprocess.run(args, cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=180)


def test_installed_engine_and_app_work_outside_the_repository(installed, tmp_path):
    home, cache, elsewhere = tmp_path / "home", tmp_path / "xdg", tmp_path / "elsewhere"
    for folder in (home, cache, elsewhere):
        folder.mkdir()
    code = """
import numpy as np
import sam_backends, app
from sam_backends import Prompts, create_backend
from sam_backends.weights import checkpoints
from workbench.config import ASSETS_DIR, AppConfig
from ui.segment.view import list_examples
backend = create_backend("grabcut")
image = np.zeros((40, 60, 3), np.uint8)
image[10:30, 20:40] = 200
prediction = backend.predict(backend.encode(image), Prompts(box=(18, 8, 42, 32)))
print(sam_backends.__file__)
print(checkpoints.checkpoint_dir())
print(prediction.mask(prediction.best_index).shape)
print(list_examples(ASSETS_DIR))
print("--host" in app.build_parser().format_help())
app.build_demo(AppConfig(models=("grabcut",), default_model="grabcut")).ctx.close()
print("built")
"""
    result = _run_installed(installed, elsewhere, [sys.executable, "-c", code],
                            HOME=str(home), XDG_CACHE_HOME=str(cache))
    assert result.returncode == 0, result.stderr
    module, folder, shape, examples, has_host, built = result.stdout.split("\n")[-7:-1]
    assert Path(module).is_relative_to(installed)
    assert Path(folder) == cache / "sam-workbench" / "checkpoints"
    assert shape == "(40, 60)"
    assert examples == "[]"  # example images stay in the repository
    assert (has_host, built) == ("True", "built")


def test_installed_cli_lists_models_with_the_home_cache_folder(installed, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    for args in ([sys.executable, "-m", "sam_backends", "list"],
                 [sys.executable, str(installed / "bin" / "samwb-models"), "list"]):
        result = _run_installed(installed, tmp_path, args, HOME=str(home))
        assert result.returncode == 0, result.stderr
        assert str(home / ".cache" / "sam-workbench" / "checkpoints") in result.stdout
        assert "sam2.1-tiny" in result.stdout and "grabcut" in result.stdout


def test_source_checkout_keeps_checkpoints_in_the_project_folder(monkeypatch):
    from sam_backends.weights import checkpoints

    monkeypatch.delenv(checkpoints.CHECKPOINT_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/nowhere")
    assert checkpoints.checkpoint_dir() == ROOT / "checkpoints"


def test_installed_keys_command_creates_a_key_file(installed, tmp_path):
    """``samwb-keys`` (README, SECURITY.md) works from anywhere once installed."""
    keys = tmp_path / "keys.json"
    result = _run_installed(installed, tmp_path, [str(installed / "bin" / "samwb-keys"),
                                                  "create", "--name", "me", "--file", str(keys)])
    assert result.returncode == 0, result.stderr
    assert "samwb_" in result.stdout
    stored = json.loads(keys.read_text())
    assert "samwb_" not in keys.read_text() and stored  # only hashes are stored
