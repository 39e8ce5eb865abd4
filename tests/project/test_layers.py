"""The layer rule, checked on every run: app -> ui | server -> workbench -> sam_backends.

The contracts live in pyproject.toml (``[tool.importlinter]``); import-linter reads the real
import graph, lazy imports inside functions included. The second test plants a violation in a
copy of the tree, so a contract that stopped checking anything would fail here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ui", "server", "workbench", "sam_backends")

pytest.importorskip("importlinter", reason="import-linter is in tests/requirements.txt")


def lint_imports(folder: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on ``folder`` (its pyproject.toml and packages), without a cache."""
    env = {**os.environ, "PYTHONPATH": str(folder)}
    script = "import sys; from importlinter.cli import lint_imports_command; " \
             "sys.exit(lint_imports_command(['--no-cache']))"
    return subprocess.run([sys.executable, "-c", script], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)


def copy_of_tree(target: Path) -> Path:
    shutil.copy2(ROOT / "pyproject.toml", target / "pyproject.toml")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, target / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def test_the_tree_keeps_every_layer_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("workbench/lanes.py", "import ui.api", "nothing looks up"),
        ("ui/feedback.py", "import server.middleware", "nothing looks up"),
        ("sam_backends/types.py", "import workbench.objects", "nothing looks up"),
        ("workbench/objects.py", "import gradio", "no Gradio and no HTTP"),
    ],
)
def test_a_planted_upward_import_breaks_the_contract(tmp_path, module, planted, contract):
    tree = copy_of_tree(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{planted}  # planted by the test\n")
    result = lint_imports(tree)
    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken), result.stdout
