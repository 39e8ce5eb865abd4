"""The example images a view offers, and the opaque address the page loads them from.

A visitor's browser gets ``EXAMPLES_ROUTE/<file name>`` for each example, never the file's
path on the server nor the path of Gradio's cached copy (issue 19, item 8): the name is all
it needs, and ``server.examples_route`` maps it back to the one listed file of that name.
"""

from __future__ import annotations

from pathlib import Path

EXAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
EXAMPLES_ROUTE = "/samwb/examples"


def list_examples(folder: Path | None) -> list[Path]:
    """The example images in ``folder`` (by suffix, sorted by name); none when it is None or
    not a folder."""
    if folder is None or not Path(folder).is_dir():
        return []
    return sorted(p for p in Path(folder).iterdir()
                  if p.suffix.lower() in EXAMPLE_SUFFIXES and p.is_file())


def example_url(path: Path) -> str:
    """The page-relative address of one listed example: its name, no folder."""
    return f"{EXAMPLES_ROUTE}/{path.name}"


def find_example(folder: Path | None, name: str) -> Path | None:
    """The listed example called exactly ``name``, or None (no path is built from ``name``)."""
    for path in list_examples(folder):
        if path.name == name:
            return path
    return None
