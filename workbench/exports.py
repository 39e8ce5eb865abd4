"""What users take away: cut-outs with alpha, binary masks and COCO JSON, named after the upload.

* cut-out: RGBA PNG at the original size, alpha 255 inside the mask and 0 outside (colour zeroed
  there too, so nothing of the background leaks through a viewer that ignores alpha);
* mask: 8-bit grayscale PNG, 255 = object, 0 = background;
* COCO: one image, one "object" category, one annotation per object with its RLE
  (``pycocotools``, counts as a UTF-8 string), bbox [x, y, w, h], area, score, model id and the
  prompts that produced it.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from sam_backends.masks import Box, coco_bbox, encode_rle, mask_box

CROP_MARGIN = 0.05  # cropped cut-outs: the mask's box plus 5 % of its size on each side


@dataclass(frozen=True)
class ExportObject:
    """One object to export: its id, H x W bool mask, score, model and prompts (API JSON form)."""

    object_id: int
    mask: np.ndarray
    score: float
    model_id: str
    prompts: dict[str, Any]
    name: str = ""  # the user's label; COCO category (empty: "object")


def safe_stem(filename: str | None) -> str:
    """A file-name stem safe for downloads: "My photo (1).JPG" -> "My_photo_1"."""
    stem = Path(filename or "").stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")
    return stem[:80] or "image"


def object_file_part(object_id: int, name: str = "") -> str:
    """An object's part of a download's file name: "object3", or "object3-red_car" for an
    object a person named "red car" (letters, digits, ``._-`` kept, at most 40 characters), so
    a folder of downloads says what each file holds. A name with nothing file-safe in it
    (e.g. "狗") leaves "object3"; the id keeps names unique either way."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", " ".join(str(name).split()))
    slug = slug.strip("._-")[:40].strip("._-")
    return f"object{int(object_id)}-{slug}" if slug else f"object{int(object_id)}"


def cutout_rgba(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """H x W x 4 uint8: the image where ``mask`` is True, fully transparent elsewhere."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match image {image.shape[:2]}")
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[mask, :3] = image[mask]
    rgba[mask, 3] = 255
    return rgba


def crop_box(mask: np.ndarray, margin: float = CROP_MARGIN) -> Box:
    """The mask's box (``sam_backends.masks.mask_box``, XYXY, exclusive max) grown by
    ``margin`` of its width and height on each side, within the image; the whole image for an
    empty mask. The one crop rule of cropped cut-outs (page downloads and REST alike)."""
    mask = np.asarray(mask, dtype=bool)
    height, width = mask.shape
    box = mask_box(mask)
    if box is None:
        return 0, 0, width, height
    x0, y0, x1, y1 = box
    grow_x, grow_y = round(margin * (x1 - x0)), round(margin * (y1 - y0))
    return (max(0, x0 - grow_x), max(0, y0 - grow_y),
            min(width, x1 + grow_x), min(height, y1 + grow_y))


def png_bytes(array: np.ndarray) -> bytes:
    """PNG encoding of an H x W (L), H x W x 3 (RGB) or H x W x 4 (RGBA) uint8 array."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def mask_png(mask: np.ndarray) -> bytes:
    return png_bytes(np.asarray(mask, dtype=bool).astype(np.uint8) * 255)


def mask_record(mask: np.ndarray, score: float) -> dict[str, Any]:
    """RLE, bbox [x, y, w, h] (COCO's form of ``mask_box``), area and score of one mask."""
    return {
        "segmentation": encode_rle(mask),
        "bbox": coco_bbox(mask_box(mask)),
        "area": int(np.count_nonzero(mask)),
        "score": round(float(score), 6),
    }


def coco_document(objects: Sequence[ExportObject], file_name: str,
                  size: tuple[int, int]) -> dict[str, Any]:
    """A COCO-format dict with one image and one annotation per object; categories are the
    objects' names (unnamed objects share the category "object")."""
    height, width = size
    annotations = []
    categories: dict[str, int] = {}
    for obj in objects:
        categories.setdefault(obj.name.strip() or "object", len(categories) + 1)
    for index, obj in enumerate(objects, start=1):
        record = mask_record(obj.mask, obj.score)
        annotations.append({
            "id": index,
            "image_id": 1,
            "category_id": categories[obj.name.strip() or "object"],
            "iscrowd": 0,
            **record,
            "object_id": obj.object_id,
            "model_id": obj.model_id,
            "prompts": obj.prompts,
        })
    return {
        "info": {"description": "Segment Anything Workbench export"},
        "images": [{"id": 1, "file_name": file_name, "height": int(height), "width": int(width)}],
        "categories": [{"id": i, "name": n, "supercategory": "object"}
                       for n, i in categories.items()] or
                      [{"id": 1, "name": "object", "supercategory": "object"}],
        "annotations": annotations,
    }


def union_mask(objects: Sequence[ExportObject], size: tuple[int, int]) -> np.ndarray:
    union = np.zeros(size, bool)
    for obj in objects:
        union |= obj.mask
    return union


def write_exports(folder: Path, stem: str, image: np.ndarray,
                  objects: Sequence[ExportObject], file_name: str) -> dict[str, Path]:
    """Write every download for the current objects into ``folder``.

    Returns a mapping from a short key ("cutout", "coco", "object1_cutout", "object1_mask", ...)
    to the written path. Files are named ``<stem>_<key>.<ext>``, where an object's key carries
    the name a person gave it (``object_file_part``: "object1-red_car_mask"); previous exports
    in the folder are removed first so the list never shows deleted objects.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*"):
        if old.is_file():
            old.unlink()
    size = image.shape[:2]
    paths: dict[str, Path] = {}

    def put(key: str, data: bytes, ext: str, part: str | None = None) -> None:
        path = folder / f"{stem}_{part or key}.{ext}"
        path.write_bytes(data)
        paths[key] = path

    put("cutout", png_bytes(cutout_rgba(image, union_mask(objects, size))), "png")
    document = coco_document(objects, file_name, size)
    put("coco", json.dumps(document, indent=1).encode("utf-8"), "json")
    for obj in objects:
        part = object_file_part(obj.object_id, obj.name)
        put(f"object{obj.object_id}_cutout", png_bytes(cutout_rgba(image, obj.mask)), "png",
            f"{part}_cutout")
        put(f"object{obj.object_id}_mask", mask_png(obj.mask), "png", f"{part}_mask")
    return paths


def write_kept(out_dir: Path, name: str, data: bytes, keep: int,
               reserve: Callable[[int, str], None] | None = None) -> Path:
    """Write ``data`` as ``out_dir/<random>/name`` for Gradio to serve, keeping only the newest
    ``keep`` such folders (older ones are deleted), so API outputs cannot pile up.

    ``reserve(nbytes, what)`` (the temp folder's ``TempRoot.reserve``) refuses the write first
    when it would pass the folder's byte bound (``TempFullError``)."""
    if reserve is not None:
        reserve(len(data), "The result file")
    folder = out_dir / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    path = folder / name
    path.write_bytes(data)
    old = sorted(out_dir.iterdir(), key=lambda p: p.stat().st_mtime)[:-keep]
    for stale in old:
        for file in stale.glob("*"):
            file.unlink(missing_ok=True)
        stale.rmdir()
    return path
