"""The values of a project, shared by the store, the formats, the views and the batch runs.

Coordinates and masks follow ``sam_backends.masks``: masks are COCO RLE dicts
(``{"size": [H, W], "counts": str}``) at the image's original size, boxes XYXY with an
exclusive max. Nothing here touches the disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam_backends.masks import decode_rle

# Image statuses, in the order an annotator's day moves them. "auto" = auto-labelled (a batch
# run proposed objects that a person has not reviewed yet).
STATUSES = ("new", "auto", "review", "done", "skipped")
STATUS_LABELS = {"new": "New", "auto": "Auto-labelled", "review": "In review", "done": "Done",
                 "skipped": "Skipped"}
UNFINISHED = ("new", "auto", "review")  # what "next unfinished" looks for
SOURCES = ("person", "model")  # who made an object: a person's prompts/edits, or a batch run

MAX_CLASS_NAME = 60
MAX_CLASSES = 1000
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
# Distinct class colours (Tableau 10 then a second, shifted set); more classes cycle with a
# brightness change (``default_color``).
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#d62728", "#2ca02c", "#9467bd",
           "#8c564b", "#e377c2", "#17becf", "#bcbd22")


class ProjectError(Exception):
    """A project cannot be opened or changed; the message says why and what to do."""


def default_color(index: int) -> str:
    """The colour of the ``index``-th class (0-based): the palette, darker on each cycle."""
    base = PALETTE[index % len(PALETTE)]
    cycle = index // len(PALETTE)
    if cycle == 0:
        return base
    factor = max(0.35, 1.0 - 0.2 * cycle)
    rgb = [int(base[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{int(c * factor):02x}" for c in rgb)


def clean_class_name(name: Any) -> str:
    """A class name as stored: text, single-spaced, 1..MAX_CLASS_NAME characters."""
    if not isinstance(name, str):
        raise ProjectError("A class name is text, e.g. \"car\".")
    name = " ".join(name.split())[:MAX_CLASS_NAME]
    if not name:
        raise ProjectError("A class needs a name, e.g. \"car\".")
    return name


@dataclass(frozen=True)
class LabelClass:
    """One class of the project: a stable id (never reused), a unique name and a colour."""

    class_id: int
    name: str
    color: str

    def __post_init__(self) -> None:
        if not COLOR_RE.match(self.color):
            raise ProjectError(f"A class colour is written #RRGGBB, not {self.color!r}.")


@dataclass(frozen=True)
class ImageEntry:
    """One image of the project, as the navigation lists it.

    ``path`` is relative to the project folder, with ``/`` separators; the image file itself is
    never copied or changed. ``width``/``height`` are None until the image was first read;
    ``error`` says why an image could not be read (it is then skipped by runs and exports).
    """

    image_id: int
    path: str
    status: str = "new"
    width: int | None = None
    height: int | None = None
    object_count: int = 0
    error: str = ""


@dataclass(frozen=True)
class StoredEdits:
    """An object's hand edits (brush, eraser, polygon) kept as a layer, not only baked in.

    So that a reopened object's next click re-predicts the model's mask and puts the same
    corrections on top (``workbench.objects.MaskEdits``) instead of dropping them. COCO RLE
    dicts at the image's size: ``add`` the pixels painted in, ``remove`` those erased (never
    both on one pixel), ``model`` the model's own mask under them (None: the model made none,
    the mask was painted from nothing).
    """

    add: dict = field(repr=False)
    remove: dict = field(repr=False)
    model: dict | None = field(default=None, repr=False)


@dataclass(frozen=True)
class StoredObject:
    """One object of one image, as stored.

    ``local_id`` is the object's number within its image (the workspace's object id on the
    canvas), unique per image. ``run_key`` marks objects a batch run made (e.g.
    ``"text:car:3"``), so that running it again replaces its own objects instead of
    duplicating them; it is empty for a person's objects. ``prompts`` is the API's prompt JSON
    (points, labels, box); ``edited`` is True once a person changed the mask by hand.
    ``rle`` is the mask as shown (edits included: what exports write); ``edits`` the layer
    that made it from the model's mask, None when there is none (or it predates schema 2).
    ``hidden`` and ``locked`` are the object list's flags (``workbench.objects.SegObject``):
    how the page shows it, not what it is, so exports ignore them.
    """

    image_id: int
    local_id: int
    class_id: int
    rle: dict = field(repr=False)
    instance_name: str = ""
    source: str = "person"
    model_id: str = ""
    prompts: dict = field(default_factory=dict)
    score: float | None = None
    run_key: str = ""
    edited: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0
    edits: StoredEdits | None = None
    hidden: bool = False
    locked: bool = False

    def mask(self) -> np.ndarray:
        """The H x W bool mask."""
        return decode_rle(self.rle)


@dataclass(frozen=True)
class LabelledObject:
    """What the formats write and read: one object's class, mask (RLE) and optional extras."""

    class_id: int
    rle: dict = field(repr=False)
    instance_name: str = ""
    score: float | None = None
    source: str = "person"
    edited: bool = False  # a person changed the mask by hand (COCO attributes carry it)

    def mask(self) -> np.ndarray:
        return decode_rle(self.rle)


@dataclass(frozen=True)
class LabelledImage:
    """One image with its objects, for the formats. ``path`` is relative (``/`` separators);
    ``source`` is the absolute file to read pixels from (cut-outs), None when not needed."""

    path: str
    width: int
    height: int
    objects: tuple[LabelledObject, ...] = ()
    source: Any = None
