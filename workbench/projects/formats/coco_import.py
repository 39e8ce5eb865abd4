"""COCO JSON -> objects: compressed RLE, uncompressed RLE and polygons alike.

An image is matched by ``file_name`` (a relative path); one the project does not have, or
whose recorded size differs, is a listed problem. Annotations without a segmentation, with an
unknown category or unreadable geometry are listed and skipped; ``iscrowd`` regions are
imported as objects too (they are labelled pixels). Polygons are filled by pycocotools (pixel
i = [i, i + 1), as ``coco_export`` writes them), after clipping to the image: pycocotools
allocates one point per pixel of edge length, so a coordinate of 1e12 must never reach it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from workbench.projects.formats.importing import (
    BadLabel,
    Collector,
    check_compressed_counts,
    class_name,
    clip_points,
    finite_numbers,
    is_integer,
    parse_json,
    rle_from_mask,
)
from workbench.projects.formats.limits import COORD_SLACK, MAX_COCO_BYTES, TooLarge, read_bounded
from workbench.projects.formats.naming import safe_relative
from workbench.projects.formats.results import FormatError, ImportResult

MAX_POLYGONS = 1000  # polygons in one annotation


def import_coco(path: Path, image_sizes: Callable[[str], tuple[int, int] | None]
                ) -> ImportResult:
    if path.is_dir():
        found = sorted(path.glob("*.json"))
        if len(found) != 1:
            raise FormatError(f"{path} holds {len(found)} JSON files; name the COCO file.")
        path = found[0]
    name = path.name
    try:
        document = parse_json(read_bounded(path, MAX_COCO_BYTES))
    except TooLarge as exc:
        collector = Collector("coco")
        collector.problems.add(name, str(exc))
        return collector.result()
    except BadLabel as exc:
        collector = Collector("coco")
        collector.problems.add(name, str(exc))
        return collector.result()
    return _read_document(document, name, image_sizes)


def _read_document(document: object, name: str,
                   image_sizes: Callable[[str], tuple[int, int] | None]) -> ImportResult:
    if not isinstance(document, dict) or not isinstance(document.get("images"), list) \
            or not isinstance(document.get("annotations"), list):
        collector = Collector("coco")
        collector.problems.add(name, "is not a COCO file (no images and annotations lists)")
        return collector.result()
    categories = _categories(document.get("categories"), name)
    collector = Collector("coco", [n for _, n in sorted(categories.items())])
    collector.files_read = 1
    problems = collector.problems
    images = {}
    for entry in document["images"]:
        try:
            image_id, found = _image(entry, image_sizes)
        except BadLabel as exc:
            problems.add(name, f"image {_describe(entry)} {exc}")
            continue
        images[image_id] = collector.image(*found)
    for number, annotation in enumerate(document["annotations"], start=1):
        where = f"annotation {number}"
        try:
            if not isinstance(annotation, dict):
                raise BadLabel("is not an object")
            image_id = annotation.get("image_id")
            pending = images.get(image_id) if isinstance(image_id, (int, str)) else None
            if pending is None:
                raise BadLabel("belongs to an image that was not imported")
            category = annotation.get("category_id")
            if not is_integer(category) or int(category) not in categories:
                raise BadLabel(f"has an unknown category_id {category!r}")
            notes: list[str] = []
            rle = _segmentation(annotation.get("segmentation"), pending.height,
                                pending.width, notes)
            attributes = annotation.get("attributes")
            attributes = attributes if isinstance(attributes, dict) else {}
            instance = attributes.get("instance_name", "")
            collector.add(pending, categories[int(category)], rle,
                          instance if isinstance(instance, str) else "",
                          edited=attributes.get("edited") is True)
            for note in notes:
                problems.add(name, f"{where}: {note}")
        except BadLabel as exc:
            problems.add(name, f"{where} {exc}; skipped")
    return collector.result()


def _categories(value: object, name: str) -> dict[object, str]:
    out: dict[object, str] = {}
    for entry in value if isinstance(value, list) else []:
        if isinstance(entry, dict) and is_integer(entry.get("id")):
            try:
                out[int(entry["id"])] = class_name(entry.get("name"))
            except BadLabel:
                out[int(entry["id"])] = f"category {int(entry['id'])}"
    return out


def _describe(entry: object) -> str:
    if isinstance(entry, dict):
        return repr(str(entry.get("file_name", entry.get("id", "?")))[:120])
    return "?"


def _image(entry: object, image_sizes: Callable[[str], tuple[int, int] | None]
           ) -> tuple[object, tuple[str, int, int]]:
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), (int, str)):
        raise BadLabel("is not an image entry with an id")
    relative = safe_relative(entry.get("file_name"))
    if relative is None:
        raise BadLabel("has no relative file_name inside the project")
    size = image_sizes(str(relative))
    if size is None:
        raise BadLabel("is not in the project; its annotations were skipped")
    width, height = size
    if (entry.get("width"), entry.get("height")) not in ((width, height), (None, None)):
        raise BadLabel(f"is {entry.get('width')} x {entry.get('height')} in the file, "
                       f"{width} x {height} in the project; its annotations were skipped")
    return entry["id"], (str(relative), width, height)


def _segmentation(value: object, height: int, width: int, notes: list[str]) -> dict:
    from pycocotools import mask as mask_utils

    if isinstance(value, dict):
        if list(value.get("size", ())) != [height, width]:
            raise BadLabel(f"has an RLE of size {value.get('size')}, the image is "
                           f"[{height}, {width}]")
        counts = value.get("counts")
        if isinstance(counts, str):
            if not check_compressed_counts(counts, height * width):
                raise BadLabel("has an empty mask")
            return {"size": [height, width], "counts": counts}
        if isinstance(counts, list) and all(is_integer(c) and c >= 0 for c in counts):
            if sum(int(c) for c in counts) != height * width:
                raise BadLabel("has an uncompressed RLE that does not cover the image")
            if not any(counts[1::2]):
                raise BadLabel("has an empty mask")
            rle = mask_utils.frPyObjects({"size": [height, width],
                                          "counts": [int(c) for c in counts]}, height, width)
            return {"size": [height, width], "counts": rle["counts"].decode("ascii")}
        raise BadLabel("has an RLE whose counts are neither a string nor whole numbers")
    if isinstance(value, list) and value:
        if len(value) > MAX_POLYGONS:
            raise BadLabel(f"has more than {MAX_POLYGONS} polygons")
        polygons = []
        for polygon in value:
            array = finite_numbers(polygon, "polygon")
            if len(array) < 6 or len(array) % 2:
                raise BadLabel("has a polygon with fewer than 3 points or an odd count")
            points = clip_points(array.reshape(-1, 2), width, height, COORD_SLACK, notes)
            polygons.append(points.ravel().tolist())
        rles = mask_utils.frPyObjects(polygons, height, width)
        mask = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
        return rle_from_mask(mask)
    raise BadLabel("has no segmentation (a box alone is not a mask)")
