"""What an export or an import hands back: counts, the values read, and the problems met.

A problem is never fatal: one bad file (or object) is listed and the rest goes on. The list is
bounded (``MAX_PROBLEMS`` kept, the rest counted) so a hostile folder cannot flood memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workbench.projects.model import LabelledImage

MAX_PROBLEMS = 1000


class FormatError(ValueError):
    """The request cannot be served at all (unknown format, no such file); the message says
    what to do. Problems with single files or objects are listed instead (``Problem``)."""


@dataclass(frozen=True)
class Problem:
    """One thing that was skipped or changed: the file (relative) and why."""

    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}" if self.file else self.message


class ProblemList:
    """Collects problems up to ``MAX_PROBLEMS``; ``dropped`` counts the ones not kept."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.dropped = 0

    def add(self, file: str, message: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(Problem(file, message))
        else:
            self.dropped += 1

    def final(self) -> tuple[Problem, ...]:
        if self.dropped:
            return (*self.items, Problem("", f"... and {self.dropped} more problems"))
        return tuple(self.items)


@dataclass(frozen=True)
class ExportReport:
    """An export's outcome. ``images`` counts the images written (an image with no objects
    counts; where the format writes no file for it, e.g. YOLO, it still counts as exported),
    ``objects`` the objects written, ``files`` the files created under ``out_dir``."""

    fmt: str
    out_dir: Path
    images: int
    objects: int
    files: int
    seconds: float
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class ImportResult:
    """An import's outcome. Each object's ``class_id`` is an index into ``class_names`` (the
    store maps names to its own classes); ``class_names`` holds only the names objects use,
    in the file's own class order where it has one (COCO categories, YOLO ``names``), else in
    order of first use (LabelMe)."""

    fmt: str
    images: tuple[LabelledImage, ...]
    class_names: tuple[str, ...]
    problems: tuple[Problem, ...] = ()
    files_read: int = 0

    @property
    def objects(self) -> int:
        return sum(len(image.objects) for image in self.images)


@dataclass
class Tally:
    """The running counts of an export (mutable, one per export call)."""

    images: int = 0
    objects: int = 0
    files: int = 0
    problems: ProblemList = field(default_factory=ProblemList)
