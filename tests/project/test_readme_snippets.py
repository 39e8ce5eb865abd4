"""README's Python snippets compile, import only what exists, and use no name they do not
define (a snippet that raised ``NameError: Prompts`` when copied is what this guards against).

A quick check for the default run; test_readme_runs.py (slow) runs every snippet as written,
installed, on random-weight models.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import re
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


class Names(ast.NodeVisitor):
    """Names a snippet binds (imports, assignments, defs, loops, with, comprehensions) and
    the names it reads."""

    def __init__(self) -> None:
        self.bound: set[str] = set(dir(builtins))
        self.read: list[tuple[str, int]] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.bound.add((alias.asname or alias.name).split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.bound.add(alias.asname or alias.name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.bound.add(node.id)
        else:
            self.read.append((node.id, node.lineno))

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.bound.add(node.name)
        self.bound.update(a.arg for a in node.args.args + node.args.kwonlyargs)
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        self.bound.add(node.arg)


def test_readme_has_python_snippets():
    assert len(SNIPPETS) >= 3


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_a_readme_snippet_defines_every_name_it_uses(snippet):
    tree = ast.parse(snippet)
    names = Names()
    names.visit(tree)
    undefined = sorted({f"{name} (line {line})" for name, line in names.read
                        if name not in names.bound})
    assert not undefined, f"README snippet uses names it never defines: {undefined}"


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_a_readme_snippet_imports_what_the_project_has(snippet):
    for node in ast.walk(ast.parse(snippet)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in (
                "sam_backends", "workbench", "server", "ui"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(
                    f"{node.module}.{alias.name}") is not None, (node.module, alias.name)


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_a_readme_snippet_uses_only_what_its_project_modules_have(snippet):
    """``exports.write_overlay_mp4`` where ``exports`` is a project module: the attribute exists."""
    tree = ast.parse(snippet)
    modules = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in (
                "sam_backends", "workbench", "server", "ui"):
            parent = importlib.import_module(node.module)
            for alias in node.names:
                value = getattr(parent, alias.name, None)
                if value is None and hasattr(parent, "__path__"):  # a submodule not yet imported
                    value = importlib.import_module(f"{node.module}.{alias.name}")
                if isinstance(value, types.ModuleType):
                    modules[alias.asname or alias.name] = value
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            module = modules[node.value.id]
            assert hasattr(module, node.attr), f"{module.__name__} has no {node.attr}"
