"""What every importer shares: checked JSON reading, class names, the collected images, and
the checks on RLE and coordinates that keep ``pycocotools`` from reading past its buffers."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sam_backends.masks import encode_rle
from workbench.projects.formats.limits import MAX_OBJECTS_PER_IMAGE, MAX_VERTICES
from workbench.projects.formats.results import ImportResult, ProblemList
from workbench.projects.model import LabelledImage, LabelledObject, ProjectError, clean_class_name


class BadLabel(ValueError):
    """One label (file, annotation, line or shape) that cannot be read; the message says why."""


def parse_json(data: bytes) -> object:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise BadLabel("is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise BadLabel(f"is not valid JSON ({str(exc)[:120]})") from None


def class_name(value: object) -> str:
    try:
        return clean_class_name(value)
    except ProjectError as exc:
        raise BadLabel(str(exc)) from None


@dataclass
class _Pending:
    path: str
    width: int
    height: int
    objects: list[tuple[str, dict, str, bool]] = field(default_factory=list)


class Collector:
    """Images and objects as an importer finds them, with class names in the file's order."""

    def __init__(self, fmt: str, declared: Iterable[str] = ()) -> None:
        self.fmt = fmt
        self.order: dict[str, int] = {}
        for name in declared:
            self.order.setdefault(name, len(self.order))
        self.images: dict[str, _Pending] = {}
        self.problems = ProblemList()
        self.files_read = 0

    def image(self, path: str, width: int, height: int) -> _Pending:
        return self.images.setdefault(path, _Pending(path, width, height))

    def add(self, pending: _Pending, name: str, rle: dict, instance_name: str = "",
            edited: bool = False) -> bool:
        """Add one object (``edited``: the file says a person changed it by hand); False (and
        a problem) past ``MAX_OBJECTS_PER_IMAGE``."""
        if len(pending.objects) >= MAX_OBJECTS_PER_IMAGE:
            if len(pending.objects) == MAX_OBJECTS_PER_IMAGE:
                self.problems.add(pending.path, f"more than {MAX_OBJECTS_PER_IMAGE:,} objects; "
                                  "the rest were not imported")
                pending.objects.append(("", {}, "", False))  # marks the note as given
            return False
        self.order.setdefault(name, len(self.order))
        pending.objects.append((name, rle, instance_name, bool(edited)))
        return True

    def result(self) -> ImportResult:
        used = {name for p in self.images.values() for name, rle, *_ in p.objects if rle}
        names = [n for n in sorted(self.order, key=self.order.__getitem__) if n in used]
        index = {n: i for i, n in enumerate(names)}
        images = tuple(
            LabelledImage(p.path, p.width, p.height, tuple(
                LabelledObject(index[name], rle, instance_name=instance, source="person",
                               edited=edited)
                for name, rle, instance, edited in p.objects if rle))
            for p in self.images.values())
        return ImportResult(self.fmt, images, tuple(names), self.problems.final(),
                            self.files_read)


# --- masks from what files hold ---------------------------------------------------------------


def rle_from_mask(mask: np.ndarray) -> dict:
    if not mask.any():
        raise BadLabel("covers no pixel of the image")
    return encode_rle(mask)


def check_compressed_counts(counts: str, total: int) -> bool:
    """Whether the mask has any pixel. Raises ``BadLabel`` unless ``counts`` (COCO's
    compressed RLE string) decodes to non-negative runs that add up to ``total`` pixels:
    pycocotools does not check this, and writes past its buffer when they add up to more."""
    runs: list[int] = []
    position, length = 0, len(counts)
    while position < length:
        value, shift, more = 0, 0, True
        while more:
            if position >= length or shift > 60:
                raise BadLabel("has a truncated or malformed RLE string")
            code = ord(counts[position]) - 48
            if not 0 <= code < 64:
                raise BadLabel("has characters that are not COCO RLE")
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            position += 1
            shift += 5
            if not more and code & 0x10:
                value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise BadLabel("has a negative run in its RLE")
        runs.append(value)
    if sum(runs) != total:
        raise BadLabel(f"has an RLE of {sum(runs):,} pixels for an image of {total:,}")
    return any(runs[1::2])


def finite_numbers(values: object, what: str) -> np.ndarray:
    """A float array of ``values`` (a list of numbers), or ``BadLabel``."""
    if not isinstance(values, list) or len(values) > 2 * MAX_VERTICES:
        raise BadLabel(f"has a {what} that is not a list of at most {MAX_VERTICES:,} points")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise BadLabel(f"has a {what} with values that are not numbers")
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise BadLabel(f"has a {what} with values that are not finite")
    return array


def clip_points(points: np.ndarray, width: float, height: float, slack: float,
                notes: list[str]) -> np.ndarray:
    """``points`` (N x 2, x y) clipped to [0, width] x [0, height]; points further out than
    ``slack`` leave a note (the label is kept, clipped)."""
    low = points.min(axis=0) if len(points) else np.zeros(2)
    high = points.max(axis=0) if len(points) else np.zeros(2)
    if low.min() < -slack or high[0] > width + slack or high[1] > height + slack:
        notes.append("coordinates outside the image were clipped")
    return np.clip(points, 0, [width, height])


def is_integer(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and math.isfinite(value) and value.is_integer())


def sequence_of(value: object, kind: type) -> Sequence:
    return value if isinstance(value, list) and all(isinstance(v, kind) for v in value) else []
