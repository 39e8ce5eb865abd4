"""Shapes and reference readers for the dataset-format tests and benchmarks/bench_export_roundtrip.

The readers follow each format's own reader, independent of ``workbench.projects.formats``:
pycocotools' ``COCO`` + ``annToMask``; for YOLO Ultralytics' documented label rules (integer
class, normalised coordinates in [0, 1], an even count, the polygon de-normalised, cast to
int32 and filled with ``cv2.fillPoly`` on the image size, as its ``polygon2mask``); for
LabelMe ``shape_to_mask``'s PIL polygon with outline, shapes merged by label and group id;
PIL for VOC palette PNGs and cut-outs.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np

from sam_backends.masks import encode_rle
from workbench.projects.model import LabelClass, LabelledImage, LabelledObject

# --- shapes (bool H x W) ----------------------------------------------------------------------


def disc(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def rect(h: int, w: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def blob(h: int, w: int, cx: float, cy: float, r: float, seed: int) -> np.ndarray:
    """A star-shaped random blob (one part, no hole) of mean radius ``r``."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    radii = r * rng.uniform(0.6, 1.2, size=angles.size)
    points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.rint(points).astype(np.int32)], 1)
    return mask.astype(bool)


def with_holes(h: int, w: int, cx: float, cy: float, r: float, holes: int = 2) -> np.ndarray:
    mask = disc(h, w, cx, cy, r)
    for k in range(holes):
        angle = 2 * np.pi * k / max(holes, 1)
        mask &= ~disc(h, w, cx + 0.45 * r * np.cos(angle), cy + 0.45 * r * np.sin(angle),
                      0.25 * r)
    return mask


def multi_part(h: int, w: int, r: float, gap: float, parts: int = 2) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    for k in range(parts):
        mask |= disc(h, w, r + 2 + k * (2 * r + gap), h / 2, r)
    return mask


def with_specks(h: int, w: int, r: float) -> np.ndarray:
    mask = disc(h, w, w / 2, h / 2, r)
    for x, y in ((2, 2), (w - 4, 3), (3, h - 3)):
        mask[y, x] = True
    mask[h - 4:h - 2, w - 3] = True  # a 2-pixel speck
    return mask


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def labelled(path: str, masks: list[np.ndarray], class_ids: list[int] | None = None,
             source: object = None, size: tuple[int, int] = (96, 160)) -> LabelledImage:
    """An image of ``size`` (H, W; the masks' size when there are masks)."""
    h, w = masks[0].shape if masks else size
    ids = class_ids or [1] * len(masks)
    objects = tuple(LabelledObject(c, encode_rle(m), instance_name=f"#{i}")
                    for i, (c, m) in enumerate(zip(ids, masks), start=1))
    return LabelledImage(path, w, h, objects, source)


CLASSES = (LabelClass(1, "car", "#4e79a7"), LabelClass(7, "big dog", "#f28e2b"),
           LabelClass(3, "größe 猫", "#e15759"))

# --- reference readers ------------------------------------------------------------------------


def read_coco(out_dir: Path) -> dict[str, list[tuple[int, int, np.ndarray]]]:
    """file_name -> [(category_id, iscrowd, mask)] through pycocotools' own COCO reader."""
    from pycocotools.coco import COCO

    coco = COCO(str(out_dir / "annotations.json"))
    out: dict[str, list] = {}
    for image in coco.dataset["images"]:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        out[image["file_name"]] = [(a["category_id"], a["iscrowd"], coco.annToMask(a) > 0)
                                   for a in anns]
    return out


def read_yolo_names(out_dir: Path) -> dict[int, str]:
    import yaml

    return yaml.safe_load((out_dir / "data.yaml").read_text(encoding="utf-8"))["names"]


def read_yolo(label_file: Path, width: int, height: int) -> list[tuple[int, np.ndarray]]:
    """Ultralytics' rules: each line ``class x y x y ...``; int32 cast, cv2.fillPoly."""
    out = []
    for line in label_file.read_text(encoding="utf-8").splitlines():
        values = line.split()
        assert values[0].isdigit(), line
        coords = np.array([float(v) for v in values[1:]])
        assert coords.size >= 6 and coords.size % 2 == 0, "a segment needs 3+ points"
        assert coords.min() >= 0 and coords.max() <= 1, "non-normalised coordinates"
        points = coords.reshape(-1, 2) * (width, height)
        mask = np.zeros((height, width), np.uint8)
        cv2.fillPoly(mask, [np.asarray(points, dtype=np.int32)], 1)
        out.append((int(values[0]), mask > 0))
    return out


def read_labelme(json_file: Path) -> list[tuple[str, np.ndarray]]:
    """labelme's shape_to_mask (PIL polygon, outline 1), shapes merged by (label, group)."""
    from PIL import Image, ImageDraw

    data = json.loads(json_file.read_text(encoding="utf-8"))
    assert data["imageData"] is None
    groups: dict[tuple, np.ndarray] = {}
    for number, shape in enumerate(data["shapes"]):
        assert shape["shape_type"] == "polygon" and len(shape["points"]) >= 3
        image = Image.new("L", (data["imageWidth"], data["imageHeight"]), 0)
        ImageDraw.Draw(image).polygon([tuple(p) for p in shape["points"]], outline=1, fill=1)
        key = (shape["label"], shape["group_id"] if shape["group_id"] is not None else -number)
        mask = np.asarray(image) > 0
        groups[key] = groups.get(key, np.zeros_like(mask)) | mask
    return [(label, mask) for (label, _), mask in groups.items()]


def read_palette_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        assert image.mode == "P"
        return np.asarray(image)


def read_cutouts(out_dir: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    out = {}
    with zipfile.ZipFile(out_dir / "cutouts.zip") as archive:
        for name in archive.namelist():
            with Image.open(io.BytesIO(archive.read(name))) as image:
                assert image.mode == "RGBA"
                out[name] = np.asarray(image)
    return out
