"""File names: where each image's label file goes, and which image a label file belongs to.

Exports mirror the image's relative path (``a/b c.jpg`` -> ``labels/a/b c.txt``), so images
with the same stem in different folders never collide. Two images that differ only in their
extension (or in letter case, which some file systems ignore) would: the first keeps the plain
name, later ones get the extension in the stem (``b c.png.json``), except in YOLO, where
Ultralytics finds a label by stem and a second label cannot be told apart (a listed problem).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

# Ultralytics' image suffixes (and the upper-case ones cameras write); the order is the search
# order when a label file names only a stem.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".dng", ".mpo",
                  ".heic", ".pfm")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def safe_relative(path: str) -> PurePosixPath | None:
    """``path`` as a relative POSIX path inside its folder, or None when it is absolute,
    empty or climbs out (``..``)."""
    if not isinstance(path, str) or not path or "\x00" in path:
        return None
    pure = PurePosixPath(path.replace("\\", "/"))
    parts = [p for p in pure.parts if p not in ("", ".")]
    if pure.is_absolute() or not parts or ".." in parts:
        return None
    return PurePosixPath(*parts)


def name_piece(text: str) -> str:
    """``text`` usable inside a file name: path separators and control characters become
    ``_``; spaces and Unicode stay."""
    return _UNSAFE.sub("_", text).strip() or "_"


class OutputNames:
    """Claims output paths so that no two images write the same file."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, relative: PurePosixPath, suffix: str, *, strict: bool = False) -> str | None:
        """``relative`` with ``suffix`` instead of the image's, unique among those claimed;
        None when ``strict`` and the plain name is taken."""
        plain = str(relative.with_suffix(suffix))
        candidates = [plain]
        if not strict:
            candidates.append(str(relative.with_name(relative.name + suffix)))
        for candidate in candidates:
            key = candidate.casefold()
            if key not in self._taken:
                self._taken.add(key)
                return candidate
        return None


def image_candidates(stem: PurePosixPath) -> Iterator[str]:
    """Relative image paths a label file named ``stem`` (no suffix) may belong to."""
    for suffix in IMAGE_SUFFIXES:
        yield str(stem) + suffix
        yield str(stem) + suffix.upper()


def find_image(candidates: Iterator[str] | list[str],
               image_sizes: Callable[[str], tuple[int, int] | None]
               ) -> tuple[str, tuple[int, int]] | None:
    """The first candidate the project knows, with its (width, height)."""
    for candidate in candidates:
        size = image_sizes(candidate)
        if size is not None:
            return candidate, size
    return None


def walk_files(root: Path, suffix: str, limit: int) -> tuple[list[Path], list[str]]:
    """Regular files under ``root`` ending in ``suffix`` (sorted, at most ``limit``), and
    notes on what was left out: links that lead out of ``root``, and files over the limit."""
    root_real = os.path.realpath(root)
    found: list[Path] = []
    notes: list[str] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if not name.lower().endswith(suffix):
                continue
            path = Path(folder) / name
            real = os.path.realpath(path)
            if os.path.commonpath([root_real, real]) != root_real:
                notes.append(f"{path.relative_to(root)}: a link that leads out of the folder; "
                             "skipped")
                continue
            if len(found) >= limit:
                notes.append(f"more than {limit:,} {suffix} files; the rest were not read")
                return found, notes
            found.append(path)
    return found, notes
