"""LabelMe JSON -> objects: polygons, rectangles, circles and masks.

``path`` is a folder (every ``*.json`` under it) or one JSON file. The image is the JSON's
folder joined with ``imagePath`` (relative to the import folder), else the JSON's own name
with an image suffix; one the project does not have, or whose recorded size differs from
``imageWidth``/``imageHeight``, is a listed problem. Shapes with the same label and a
``group_id`` are one object (labelme's rule); others are one object each. Polygons are
filled with edges included after rounding the vertices (labelme's ``shape_to_mask``);
``rectangle`` is its two corners, ``circle`` centre and rim, ``mask`` a base64 PNG placed at
its first point. Points, lines and line strips hold no area: listed and skipped.
"""

from __future__ import annotations

import base64
import binascii
import io
import posixpath
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from workbench.projects.formats.importing import (
    BadLabel,
    Collector,
    class_name,
    clip_points,
    finite_numbers,
    is_integer,
    parse_json,
    rle_from_mask,
)
from workbench.projects.formats.limits import (
    COORD_SLACK,
    MAX_FILES,
    MAX_LABELME_BYTES,
    MAX_OBJECTS_PER_IMAGE,
    TooLarge,
    read_bounded,
)
from workbench.projects.formats.naming import (
    find_image,
    image_candidates,
    safe_relative,
    walk_files,
)
from workbench.projects.formats.polygons import fill_pixel_polygons
from workbench.projects.formats.results import FormatError, ImportResult

AREA_SHAPES = ("polygon", "rectangle", "circle", "mask")


def import_labelme(path: Path, image_sizes: Callable[[str], tuple[int, int] | None]
                   ) -> ImportResult:
    if path.is_file():
        root, files, notes = path.parent, [path], []
    elif path.is_dir():
        root = path
        files, notes = walk_files(path, ".json", MAX_FILES)
    else:
        raise FormatError(f"{path} is neither a LabelMe JSON file nor a folder of them.")
    collector = Collector("labelme")
    for text in notes:
        collector.problems.add("", text)
    for file in files:
        relative = file.relative_to(root).as_posix()
        try:
            document = parse_json(read_bounded(file, MAX_LABELME_BYTES))
            _read(document, PurePosixPath(relative), image_sizes, collector)
            collector.files_read += 1
        except (TooLarge, BadLabel) as exc:
            collector.problems.add(relative, f"{exc}; skipped")
    return collector.result()


def _read(document: object, relative: PurePosixPath,
          image_sizes: Callable[[str], tuple[int, int] | None], collector: Collector) -> None:
    if not isinstance(document, dict) or not isinstance(document.get("shapes"), list):
        raise BadLabel("is not a LabelMe file (no shapes list)")
    candidates = []
    image_path = document.get("imagePath")
    if isinstance(image_path, str):
        joined = safe_relative(posixpath.normpath(
            posixpath.join(str(relative.parent), image_path.replace("\\", "/"))))
        if joined is not None:
            candidates.append(str(joined))
    candidates += list(image_candidates(relative.with_suffix("")))
    found = find_image(candidates, image_sizes)
    if found is None:
        raise BadLabel(f"is for an image the project does not have ({image_path!r})")
    image, (width, height) = found
    stated = (document.get("imageWidth"), document.get("imageHeight"))
    if stated != (width, height) and stated != (None, None):
        raise BadLabel(f"is for a {stated[0]} x {stated[1]} image; the project's is "
                       f"{width} x {height}")
    pending = collector.image(image, width, height)
    groups: dict[tuple[str, object], tuple[np.ndarray, str]] = {}
    name = str(relative)
    for number, shape in enumerate(document["shapes"], start=1):
        if number > MAX_OBJECTS_PER_IMAGE:
            collector.problems.add(name, "too many shapes; the rest were not read")
            break
        try:
            label, mask, group, description = _shape(shape, width, height, collector, name)
        except BadLabel as exc:
            collector.problems.add(name, f"shape {number} {exc}; skipped")
            continue
        key = (label, group if group is not None else ("shape", number))
        if key in groups:
            union, text = groups[key]
            groups[key] = (union | mask, text or description)
        else:
            groups[key] = (mask, description)
    for (label, _), (mask, description) in groups.items():
        try:
            collector.add(pending, label, rle_from_mask(mask), description)
        except BadLabel as exc:
            collector.problems.add(name, f"a {label!r} object {exc}; skipped")


def _shape(shape: object, width: int, height: int, collector: Collector, name: str
           ) -> tuple[str, np.ndarray, object, str]:
    if not isinstance(shape, dict):
        raise BadLabel("is not an object")
    label = class_name(shape.get("label"))
    kind = shape.get("shape_type") or "polygon"
    if kind not in AREA_SHAPES:
        raise BadLabel(f"is a {kind!r}, which holds no area")
    group = shape.get("group_id")
    group = int(group) if is_integer(group) else None
    description = shape.get("description")
    description = description if isinstance(description, str) else ""
    raw = shape.get("points")
    flat = [v for point in raw for v in point] if isinstance(raw, list) and all(
        isinstance(p, list) and len(p) == 2 for p in raw) else None
    if flat is None:
        raise BadLabel("has points that are not [x, y] pairs")
    notes: list[str] = []
    points = clip_points(finite_numbers(flat, "point list").reshape(-1, 2), width, height,
                         COORD_SLACK, notes)
    for note in notes:
        collector.problems.add(name, f"a {label!r} shape: {note}")
    mask = np.zeros((height, width), np.uint8)
    corner = np.minimum(np.rint(points), (width - 1, height - 1)).astype(np.int32)
    if kind == "polygon":
        if len(points) < 3:
            raise BadLabel("is a polygon with fewer than 3 points")
        return label, fill_pixel_polygons([corner], height, width), group, description
    if len(points) < (1 if kind == "mask" else 2):
        raise BadLabel(f"is a {kind} without its points")
    if kind == "rectangle":
        cv2.rectangle(mask, tuple(map(int, corner[0])), tuple(map(int, corner[1])), 1, -1)
    elif kind == "circle":
        radius = int(round(float(np.hypot(*(points[1] - points[0])))))
        cv2.circle(mask, tuple(map(int, corner[0])), radius, 1, -1)
    else:
        _paste_mask(mask, shape.get("mask"), corner[0])
    return label, mask.astype(bool), group, description


def _paste_mask(mask: np.ndarray, data: object, corner: np.ndarray) -> None:
    from PIL import Image, UnidentifiedImageError

    if not isinstance(data, str):
        raise BadLabel("is a mask shape without its base64 PNG")
    try:
        with Image.open(io.BytesIO(base64.b64decode(data, validate=True))) as image:
            if image.width * image.height > mask.size:
                raise BadLabel("has a mask larger than the image")
            piece = np.asarray(image.convert("L")) > 0
    except (binascii.Error, ValueError, OSError, UnidentifiedImageError,
            Image.DecompressionBombError):
        raise BadLabel("has a mask that is not a base64 PNG") from None
    x, y = int(corner[0]), int(corner[1])
    h, w = mask[y:, x:].shape
    mask[y:y + h, x:x + w] |= piece[:h, :w]
