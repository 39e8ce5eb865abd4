"""The project as a package: ``pyproject.toml`` agrees with requirements.txt, the wheel holds the
engine and the app, and installed outside the repository it imports, lists models and keeps its
checkpoints in the user's cache rather than in site-packages.

The wheel (``wheel``) and a venv it is installed in (``installed``) are tests/project/conftest.py's
session fixtures, shared with the README's runs (test_readme_runs.py); never the real
site-packages.
"""

from __future__ import annotations

import json
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
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
    result = installed.run([installed.python, "-c", code], elsewhere,
                           HOME=str(home), XDG_CACHE_HOME=str(cache))
    assert result.returncode == 0, result.stderr
    module, folder, shape, examples, has_host, built = result.stdout.split("\n")[-7:-1]
    assert Path(module).is_relative_to(installed.venv)
    assert Path(folder) == cache / "sam-workbench" / "checkpoints"
    assert shape == "(40, 60)"
    assert examples == "[]"  # example images stay in the repository
    assert (has_host, built) == ("True", "built")


def test_installed_cli_lists_models_with_the_home_cache_folder(installed, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    for args in ([installed.python, "-m", "sam_backends", "list"],
                 [installed.bin("samwb-models"), "list"]):
        result = installed.run(args, tmp_path, HOME=str(home))
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
    result = installed.run([installed.bin("samwb-keys"), "create", "--name", "me",
                            "--file", str(keys)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "samwb_" in result.stdout
    stored = json.loads(keys.read_text())
    assert "samwb_" not in keys.read_text() and stored  # only hashes are stored
