"""COCO instance segmentation: one ``annotations.json`` that ``pycocotools.coco.COCO`` reads.

* ``categories``: the classes, ``id`` = the class id, in the classes' order.
* ``images``: ``id`` from 1 in export order, ``file_name`` = the relative path, width, height.
* ``annotations``: one per object, ``iscrowd`` = 0 always (holes and several parts included:
  COCO evaluation ignores crowd regions, so a crowd flag would hide the object);
  ``segmentation`` = compressed RLE ``{"size": [H, W], "counts": str}`` (lossless), or with
  ``polygons=True`` a list of polygons, one per part, holes joined in by keyholes, vertices on
  pixel edges (``polygons.edge_rings``: pycocotools gives the mask back exactly);
  ``area`` = the mask's pixel count, ``bbox`` = ``[x, y, w, h]`` of the tight box;
  ``attributes`` = the instance name, source and ``edited`` (a person changed the mask by
  hand: the mask written is the edited one), ``score`` where a model gave one.

Written as a stream: image entries go straight to the file, annotations to a side file that is
appended at the end, so no more than one image's masks are ever in memory.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from sam_backends.masks import coco_bbox, encode_rle, mask_box
from workbench.projects.formats.checking import ImageToWrite
from workbench.projects.formats.polygons import edge_rings, join_rings, mask_parts
from workbench.projects.formats.results import Tally
from workbench.projects.model import LabelClass

FILE_NAME = "annotations.json"


def write_coco(images: Iterable[ImageToWrite], classes: Sequence[LabelClass], out_dir: Path,
               tally: Tally, polygons: bool = False) -> None:
    final = out_dir / FILE_NAME
    partial = out_dir / (FILE_NAME + ".part")
    side = out_dir / (FILE_NAME + ".annotations.part")
    categories = [{"id": c.class_id, "name": c.name, "supercategory": ""} for c in classes]
    head = {"info": {"description": "Segment Anything workbench export", "version": "1.0"},
            "licenses": [], "categories": categories}
    annotation_id = 0
    try:
        with open(partial, "w", encoding="utf-8") as out, \
                open(side, "w", encoding="utf-8") as notes:
            out.write(_dumps(head)[:-1] + ', "images": [\n')
            for image_id, item in enumerate(images, start=1):
                image = item.image
                entry = {"id": image_id, "file_name": str(item.relative),
                         "width": image.width, "height": image.height}
                out.write(("" if image_id == 1 else ",\n") + _dumps(entry))
                for obj, mask in item.masks():
                    annotation_id += 1
                    record = {
                        "id": annotation_id, "image_id": image_id, "category_id": obj.class_id,
                        "iscrowd": 0,
                        "segmentation": _polygons(mask) if polygons else _rle(obj.rle, mask),
                        "area": int(np.count_nonzero(mask)),
                        "bbox": coco_bbox(mask_box(mask)),
                        "attributes": {"instance_name": obj.instance_name,
                                       "source": obj.source, "edited": obj.edited},
                    }
                    if obj.score is not None:
                        record["score"] = round(float(obj.score), 6)
                    notes.write(("" if annotation_id == 1 else ",\n") + _dumps(record))
                    tally.objects += 1
                tally.images += 1
            out.write('\n], "annotations": [\n')
            notes.flush()
            with open(side, encoding="utf-8") as back:
                shutil.copyfileobj(back, out)
            out.write("\n]}\n")
        os.replace(partial, final)
        tally.files += 1
    finally:
        for leftover in (partial, side):
            leftover.unlink(missing_ok=True)


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _rle(stored: dict, mask: np.ndarray) -> dict:
    counts = stored.get("counts")
    if isinstance(counts, str):
        return {"size": list(stored["size"]), "counts": counts}
    return encode_rle(mask)  # bytes or a list: re-encode into the one JSON form


def _polygons(mask: np.ndarray) -> list[list[float]]:
    """COCO polygons: one per part (holes keyholed in), pixel-edge vertices, 3 decimals."""
    out = []
    for part in mask_parts(mask):
        polygon = join_rings(edge_rings(part))
        out.append([round(float(v), 3) for v in polygon.ravel()])
    return out
