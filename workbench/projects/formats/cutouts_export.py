"""A ZIP of transparent cut-outs: ``cutouts.zip``, one RGBA PNG per object.

* Entry ``<folder of the image>/<image stem>_<class>_<n>.png``: ``n`` counts the image's
  objects of that class from 1; class names keep spaces and Unicode (path separators and
  control characters become ``_``).
* The PNG is the mask's tight box (``sam_backends.masks.mask_box``) of the image as the app
  shows it (EXIF orientation applied, ``sam_backends.images.load_image``), alpha 255 inside
  the mask and 0 outside, colour zeroed outside (``workbench.exports.cutout_rgba``).
* Pixels come from ``LabelledImage.source``; an image that is missing, unreadable or not the
  size the project recorded is listed as a problem and left out. PNGs are stored, not
  deflated again.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from sam_backends.errors import ImageError
from sam_backends.images import load_image
from sam_backends.masks import mask_box
from workbench.exports import cutout_rgba, png_bytes
from workbench.projects.formats.checking import ImageToWrite
from workbench.projects.formats.naming import name_piece
from workbench.projects.formats.results import Tally
from workbench.projects.model import LabelClass

FILE_NAME = "cutouts.zip"


def write_cutouts(images: Iterable[ImageToWrite], classes: Sequence[LabelClass],
                  out_dir: Path, tally: Tally, polygons: bool = True) -> None:
    class_names = {c.class_id: name_piece(c.name) for c in classes}
    partial = out_dir / (FILE_NAME + ".part")
    taken: set[str] = set()
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED,
                             allowZip64=True) as archive:
            for item in images:
                tally.images += 1
                if not item.objects:
                    continue
                pixels = _pixels(item, tally)
                if pixels is None:
                    continue
                counters: dict[int, int] = {}
                folder = "" if str(item.relative.parent) == "." else f"{item.relative.parent}/"
                for obj, mask in item.masks():
                    counters[obj.class_id] = counters.get(obj.class_id, 0) + 1
                    x0, y0, x1, y1 = mask_box(mask)
                    crop = cutout_rgba(pixels[y0:y1, x0:x1], mask[y0:y1, x0:x1])
                    stem = (f"{folder}{name_piece(item.relative.stem)}_"
                            f"{class_names[obj.class_id]}_{counters[obj.class_id]}")
                    entry = stem + ".png"
                    while entry.casefold() in taken:  # a.jpg and a.png in one folder
                        stem += "_"
                        entry = stem + ".png"
                    taken.add(entry.casefold())
                    archive.writestr(entry, png_bytes(crop))
                    tally.objects += 1
        partial.replace(out_dir / FILE_NAME)
        tally.files += 1
    finally:
        partial.unlink(missing_ok=True)


def _pixels(item: ImageToWrite, tally: Tally):
    source = item.image.source
    if source is None:
        tally.problems.add(item.image.path, "no image file to cut from; skipped")
        return None
    try:
        pixels = load_image(source)
    except ImageError as exc:
        tally.problems.add(item.image.path, f"{exc}; skipped")
        return None
    if pixels.shape[:2] != (item.image.height, item.image.width):
        tally.problems.add(item.image.path, f"the image is {pixels.shape[1]} x "
                           f"{pixels.shape[0]}, the project recorded {item.image.width} x "
                           f"{item.image.height}; skipped")
        return None
    return pixels
