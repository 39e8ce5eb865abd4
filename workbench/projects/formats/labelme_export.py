"""LabelMe JSON: one ``<relative path>.json`` per image, as labelme (5.x) opens it.

* ``version`` "5.5.0", ``flags`` {}, ``imagePath`` = the image's file name (labelme looks for
  it next to the JSON: put the exported tree over the image tree), ``imageData`` null,
  ``imageHeight``/``imageWidth``.
* ``shapes``: one ``polygon`` per **part** of an object; ``label`` = the class name; the parts
  of one object share a ``group_id`` (the object's number in the image; labelme's own
  converters merge shapes with the same label and group id into one instance); a one-part
  object has ``group_id`` null. ``description`` = the instance name.
* Holes are joined into their part by keyholes (zero-width bridges through the object).
* Vertices are the boundary pixels (integer x, y): labelme's ``shape_to_mask`` (PIL polygon
  with outline) paints exactly the part back. Nothing is simplified or dropped: a part of 1 or
  2 pixels is a polygon that repeats a vertex to reach 3 points.
* Every image gets a file, an image without objects one with no shapes (it was looked at).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from workbench.projects.formats.checking import ImageToWrite
from workbench.projects.formats.naming import OutputNames
from workbench.projects.formats.polygons import centre_rings, join_rings, mask_parts
from workbench.projects.formats.results import Tally
from workbench.projects.model import LabelClass

LABELME_VERSION = "5.5.0"


def write_labelme(images: Iterable[ImageToWrite], classes: Sequence[LabelClass],
                  out_dir: Path, tally: Tally, polygons: bool = True) -> None:
    class_names = {c.class_id: c.name for c in classes}
    names = OutputNames()
    for item in images:
        name = names.claim(item.relative, ".json")
        if name is None:  # pragma: no cover - non-strict claims always find a name
            continue
        shapes = []
        for number, (obj, mask) in enumerate(item.masks(), start=1):
            parts = part_polygons(mask)
            group = number if len(parts) > 1 else None
            shapes += [_shape(class_names[obj.class_id], points, group, obj.instance_name)
                       for points in parts]
            tally.objects += 1
        document = {"version": LABELME_VERSION, "flags": {}, "shapes": shapes,
                    "imagePath": item.relative.name, "imageData": None,
                    "imageHeight": item.image.height, "imageWidth": item.image.width}
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
        tally.images += 1
        tally.files += 1


def part_polygons(mask: np.ndarray) -> list[list[list[int]]]:
    """One polygon per part, holes keyholed, as ``[[x, y], ...]`` pixel vertices (>= 3)."""
    out = []
    for part in mask_parts(mask):
        polygon = join_rings(centre_rings(part)).astype(int).tolist()
        while len(polygon) < 3:
            polygon.append(polygon[-1])
        out.append(polygon)
    return out


def _shape(label: str, points: list[list[int]], group: int | None, description: str) -> dict:
    return {"label": label, "points": points, "group_id": group, "description": description,
            "shape_type": "polygon", "flags": {}, "mask": None}
