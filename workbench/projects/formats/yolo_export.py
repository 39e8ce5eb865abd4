"""YOLO segmentation, as Ultralytics reads it: ``labels/<relative path>.txt`` and ``data.yaml``.

* One line per **object**: ``class x1 y1 x2 y2 ...``; ``class`` = the class's position in the
  classes (0-based, the order of ``names``); coordinates normalised by the image width and
  height, 6 decimals, in [0, 1]. A vertex is a boundary pixel's centre ((x + 0.5) / W), so
  Ultralytics' ``int32`` cast after de-normalising lands on the pixel.
* Several parts stay **one object**: the parts are joined into one polygon by zero-width
  bridges along a minimum spanning tree (``polygons.join_rings``); the filler paints each
  bridge, about one extra pixel per pixel of bridge length. Parts under ``SPECK_AREA`` pixels
  are dropped (never the object's largest part).
* Holes are kept by keyholes: bridges through the object itself, so nothing is lost.
* At least 3 vertices per line (a 1- or 2-pixel object repeats a vertex), so a line never
  reads as a 5-value box.
* An image without objects gets **no** ``.txt``: Ultralytics' convention for a background
  image ("no label file required"); it counts as background as long as the image is in
  ``images/``.
* ``data.yaml``: ``train``/``val`` = ``images`` and no ``path``, so Ultralytics resolves them
  next to ``data.yaml``; ``nc``; ``names`` as ``{index: name}``. Images are not copied: put
  them (or a link to the project folder) at ``images/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from workbench.projects.formats.checking import ImageToWrite
from workbench.projects.formats.naming import OutputNames
from workbench.projects.formats.polygons import SPECK_AREA, centre_rings, join_rings, mask_parts
from workbench.projects.formats.results import Tally
from workbench.projects.model import LabelClass

LABELS = "labels"
DATA_YAML = "data.yaml"


def write_yolo(images: Iterable[ImageToWrite], classes: Sequence[LabelClass], out_dir: Path,
               tally: Tally, polygons: bool = True) -> None:
    index = {c.class_id: i for i, c in enumerate(classes)}
    names = OutputNames()
    (out_dir / DATA_YAML).write_text(data_yaml(classes), encoding="utf-8")
    tally.files += 1
    for item in images:
        lines = [f"{index[obj.class_id]} {yolo_coordinates(mask)}"
                 for obj, mask in item.masks()]
        tally.images += 1
        if not lines:
            continue  # a background image: no label file (Ultralytics' convention)
        name = names.claim(item.relative, ".txt", strict=True)
        if name is None:
            tally.problems.add(item.image.path, "another image has the same path without its "
                               "extension; YOLO finds labels by that name, so it was skipped")
            continue
        target = out_dir / LABELS / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tally.objects += len(lines)
        tally.files += 1


def yolo_polygon(mask: np.ndarray) -> np.ndarray:
    """The one polygon of an object (int pixel vertices, N x 2, N >= 3): parts over the
    speck size (and always the largest), holes keyholed, all joined by bridges."""
    parts = mask_parts(mask)
    kept = parts[:1] + [p for p in parts[1:] if p.pixels >= SPECK_AREA]
    polygon = join_rings([ring for part in kept for ring in centre_rings(part)])
    while len(polygon) < 3:
        polygon = np.concatenate([polygon, polygon[-1:]])
    return polygon


def yolo_coordinates(mask: np.ndarray) -> str:
    """``x1 y1 x2 y2 ...`` of ``yolo_polygon``: pixel centres normalised, 6 decimals."""
    height, width = mask.shape
    polygon = (yolo_polygon(mask) + 0.5) / (width, height)
    return " ".join(f"{v:.6f}" for v in polygon.ravel())


def data_yaml(classes: Sequence[LabelClass]) -> str:
    """``data.yaml`` text; names are written as JSON strings (valid YAML double-quoted
    scalars), so spaces, colons and Unicode survive."""
    lines = ["# YOLO segmentation labels written by Segment Anything workbench.",
             "# Images are not copied: put them (or a link to the project folder) at images/,",
             "# so that images/<path> has its labels at labels/<path without extension>.txt.",
             "train: images", "val: images", f"nc: {len(classes)}",
             "names:" if classes else "names: {}"]
    lines += [f"  {i}: {json.dumps(c.name, ensure_ascii=False)}" for i, c in enumerate(classes)]
    return "\n".join(lines) + "\n"
