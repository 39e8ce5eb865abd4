"""A model family's facts live in its folder: nothing outside ``sam_backends/families/``
compares family names (issue 18). Ask ``sam_backends.families.get_family(name)`` instead."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("sam_backends", "workbench", "server", "ui", "benchmarks")
# `spec.family == "sam1"`, `family != 'sam2'`, `.family in (...)`, a dict keyed by family names
COMPARISON = re.compile(r"""\bfamily\s*(==|!=|not\s+in\b|in\b)\s*[("'{\[]"""
                        r"""|["'](sam1|sam2|grabcut|sam3)["']\s*==\s*\w*family""")
FAMILY_DICT = re.compile(r"""\{\s*["'](sam1|sam2|grabcut)["']\s*:""")


def test_no_family_comparison_outside_the_families_folder():
    found = []
    for room in ROOMS:
        for path in (ROOT / room).rglob("*.py"):
            if "families" in path.relative_to(ROOT).parts[:2]:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if COMPARISON.search(line) or FAMILY_DICT.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "ask the family (sam_backends.families.get_family):\n" + "\n".join(found)
