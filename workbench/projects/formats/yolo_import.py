"""YOLO segmentation labels -> objects: ``labels/**/*.txt`` and the ``names`` of ``data.yaml``.

``path`` is the dataset folder (with ``data.yaml`` and ``labels/``; a folder of .txt files
alone works too) or its ``data.yaml``. A label file ``labels/a/b.txt`` belongs to the project
image ``a/b.<ext>`` or ``images/a/b.<ext>`` (Ultralytics' suffixes, first match); without one
it is a listed problem. Each line is one object: ``class x1 y1 ...`` (3+ points) becomes the
polygon filled with ``cv2.fillPoly``, edges included, after ``floor(v * size)`` (as
Ultralytics' int32 cast); ``class cx cy w h`` (a detection box) becomes its rectangle. A line
with a class outside ``names``, an odd count, or a value outside [0, 1] by more than 0.001 is
listed and skipped (Ultralytics would reject the whole file; one bad line should not cost the
others); values within that slack are clipped. Without ``data.yaml`` classes are named by
their index ("0", "1", ...).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np

from workbench.projects.formats.importing import (
    BadLabel,
    Collector,
    class_name,
    is_integer,
    rle_from_mask,
)
from workbench.projects.formats.limits import (
    MAX_FILES,
    MAX_OBJECTS_PER_IMAGE,
    MAX_VERTICES,
    MAX_YAML_BYTES,
    MAX_YOLO_BYTES,
    TooLarge,
    read_bounded,
)
from workbench.projects.formats.naming import find_image, image_candidates, walk_files
from workbench.projects.formats.polygons import fill_pixel_polygons
from workbench.projects.formats.results import FormatError, ImportResult

SLACK = 1e-3  # normalised coordinates this far outside [0, 1] are clipped, further skipped


def import_yolo(path: Path, image_sizes: Callable[[str], tuple[int, int] | None]
                ) -> ImportResult:
    root, yaml_path = (path.parent, path) if path.is_file() else (path, path / "data.yaml")
    if not root.is_dir():
        raise FormatError(f"{path} is not a YOLO dataset folder or its data.yaml.")
    names, note = _names(yaml_path)
    collector = Collector("yolo", names.values())
    if note:
        collector.problems.add(yaml_path.name, note)
    labels = root / "labels" if (root / "labels").is_dir() else root
    files, notes = walk_files(labels, ".txt", MAX_FILES)
    for text in notes:
        collector.problems.add("", text)
    for file in files:
        relative = file.relative_to(labels).as_posix()
        stem = PurePosixPath(relative).with_suffix("")
        found = find_image([*image_candidates(stem), *image_candidates("images" / stem)],
                           image_sizes)
        if found is None:
            collector.problems.add(relative, "no project image has this name; skipped")
            continue
        try:
            lines = read_bounded(file, MAX_YOLO_BYTES).decode("utf-8-sig").splitlines()
        except TooLarge as exc:
            collector.problems.add(relative, f"{exc}; skipped")
            continue
        except UnicodeDecodeError:
            collector.problems.add(relative, "is not UTF-8 text; skipped")
            continue
        collector.files_read += 1
        image, (width, height) = found
        pending = collector.image(image, width, height)
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if number > MAX_OBJECTS_PER_IMAGE + 1:
                collector.problems.add(relative, "too many lines; the rest were not read")
                break
            try:
                label, mask = _line(line, names, width, height)
            except BadLabel as exc:
                collector.problems.add(relative, f"line {number} {exc}; skipped")
                continue
            collector.add(pending, label, rle_from_mask(mask))
    return collector.result()


def _names(yaml_path: Path) -> tuple[dict[int, str], str]:
    """Index -> class name from ``data.yaml``, and a note when it could not be used."""
    if not yaml_path.is_file():
        return {}, "no data.yaml; classes are named by their index"
    try:
        import yaml

        data = yaml.safe_load(read_bounded(yaml_path, MAX_YAML_BYTES).decode("utf-8-sig"))
    except (TooLarge, UnicodeDecodeError, ValueError) as exc:
        return {}, f"could not be read ({str(exc)[:120]}); classes are named by their index"
    except Exception as exc:  # yaml.YAMLError and its kin: a malformed file is one problem
        return {}, f"is not valid YAML ({str(exc)[:120]}); classes are named by their index"
    raw = data.get("names") if isinstance(data, dict) else None
    if isinstance(raw, list):
        raw = dict(enumerate(raw))
    if not isinstance(raw, dict):
        return {}, "has no names; classes are named by their index"
    names = {}
    for key, value in raw.items():
        try:
            if is_integer(key):
                names[int(key)] = class_name(str(value))
        except BadLabel:
            names[int(key)] = str(int(key))
    return names, ""


def _line(line: str, names: dict[int, str], width: int, height: int
          ) -> tuple[str, np.ndarray]:
    tokens = line.split()
    if len(tokens) > 2 * MAX_VERTICES + 1:
        raise BadLabel(f"has more than {MAX_VERTICES:,} points")
    try:
        values = np.array([float(t) for t in tokens], dtype=np.float64)
    except ValueError:
        raise BadLabel("has values that are not numbers") from None
    if not np.all(np.isfinite(values)) or not values[0].is_integer() or values[0] < 0:
        raise BadLabel("does not start with a class index")
    index = int(values[0])
    if names and index not in names:
        raise BadLabel(f"has class {index}, which data.yaml does not name")
    label = names.get(index, str(index))
    coords = values[1:]
    if coords.size != 4 and (coords.size < 6 or coords.size % 2):
        raise BadLabel("needs a box (4 values) or 3+ points (an even count of 6+)")
    if coords.min() < -SLACK or coords.max() > 1 + SLACK:
        raise BadLabel("has coordinates outside [0, 1] (not normalised?)")
    coords = np.clip(coords, 0.0, 1.0)
    if coords.size == 4:  # a box: the pixels it covers, its right and bottom edges exclusive
        cx, cy, w, h = coords * (width, height, width, height)
        mask = np.zeros((height, width), bool)
        x0, y0 = int(np.floor(cx - w / 2)), int(np.floor(cy - h / 2))
        x1, y1 = int(np.ceil(cx + w / 2)), int(np.ceil(cy + h / 2))
        mask[max(0, y0):y1, max(0, x0):x1] = True
        return label, mask
    polygon = coords.reshape(-1, 2) * (width, height)
    pixels = np.minimum(np.floor(polygon), (width - 1, height - 1)).astype(np.int32)
    return label, fill_pixel_polygons([pixels], height, width)
