"""Pascal VOC-style segmentation PNGs: class and instance masks with a palette.

* ``SegmentationClass/<relative path>.png``: 8-bit palette PNG, index 0 = background, index
  i = the i-th class (1-based, the classes' order, at most 254), 255 = void: pixels that
  objects of *different* classes both claim (training ignores them; neither class is right).
* ``SegmentationObject/<relative path>.png``: index k = the image's k-th written object
  (1..254), 0 = background, 255 = void where objects overlap. Objects after the 254th are
  painted void and listed as a problem.
* ``labelmap.txt`` (``name:r,g,b::``, the class colours, background first, as CVAT reads
  it) and ``ImageSets/Segmentation/default.txt`` (the exported paths without extension).
* Palettes: class colours from the classes; instance colours VOC's bit-spread colour map;
  void is VOC's (224, 224, 192). Every image gets both PNGs, an image without objects
  all-background ones.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from workbench.projects.formats.checking import ImageToWrite
from workbench.projects.formats.naming import OutputNames
from workbench.projects.formats.results import Tally
from workbench.projects.model import LabelClass

VOID = 255
MAX_INDEX = 254
VOID_COLOR = (224, 224, 192)


def write_voc(images: Iterable[ImageToWrite], classes: Sequence[LabelClass], out_dir: Path,
              tally: Tally, polygons: bool = True) -> None:
    if len(classes) > MAX_INDEX:
        tally.problems.add("", f"{len(classes)} classes: a VOC class PNG holds {MAX_INDEX}; "
                           "objects of the later classes are painted void")
    index = {c.class_id: i for i, c in enumerate(classes, start=1)}
    class_palette = _palette([(0, 0, 0)] + [_rgb(c.color) for c in classes[:MAX_INDEX]])
    object_palette = _palette(voc_colormap())
    names = OutputNames()
    listing = out_dir / "ImageSets" / "Segmentation" / "default.txt"
    listing.parent.mkdir(parents=True, exist_ok=True)
    with open(listing, "w", encoding="utf-8") as stems:
        for item in images:
            name = names.claim(item.relative, ".png")
            if name is None:  # pragma: no cover - non-strict claims always find a name
                continue
            by_class, by_object = _paint(item, index, tally)
            for folder, pixels, palette in (("SegmentationClass", by_class, class_palette),
                                            ("SegmentationObject", by_object, object_palette)):
                target = out_dir / folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(_palette_png(pixels, palette))
                tally.files += 1
            stems.write(name[: -len(".png")] + "\n")
            tally.images += 1
    tally.files += 1  # default.txt
    (out_dir / "labelmap.txt").write_text(labelmap(classes), encoding="utf-8")
    tally.files += 1


def _paint(item: ImageToWrite, index: dict[int, int], tally: Tally
           ) -> tuple[np.ndarray, np.ndarray]:
    """The class and object index images of one item (uint8 H x W each)."""
    shape = (item.image.height, item.image.width)
    by_class = np.zeros(shape, np.uint8)
    by_object = np.zeros(shape, np.uint8)
    number = 0
    for obj, mask in item.masks():
        number += 1
        value = index[obj.class_id]
        value = value if value <= MAX_INDEX else VOID
        clash = mask & (by_class != 0) & (by_class != value)
        by_class[mask & (by_class == 0)] = value
        by_class[clash] = VOID
        if number > MAX_INDEX:
            if number == MAX_INDEX + 1:
                tally.problems.add(item.image.path, f"more than {MAX_INDEX} objects: the "
                                   "later ones are void in SegmentationObject")
            by_object[mask] = VOID
        else:
            overlap = mask & (by_object != 0)
            by_object[mask & ~overlap] = number
            by_object[overlap] = VOID
        tally.objects += 1
    return by_class, by_object


def labelmap(classes: Sequence[LabelClass]) -> str:
    lines = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
    for c in classes[:MAX_INDEX]:
        name = c.name.replace(":", " ")  # the file's separator
        lines.append(f"{name}:{','.join(str(v) for v in _rgb(c.color))}::")
    return "\n".join(lines) + "\n"


def voc_colormap(count: int = 256) -> list[tuple[int, int, int]]:
    """VOC's colour map: the bits of an index spread over R, G and B from the top bit down;
    the last entry is VOC's void colour."""
    colors = []
    for i in range(count):
        r = g = b = 0
        value = i
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colors.append((r, g, b))
    colors[VOID] = VOID_COLOR
    return colors


def _palette(colors: list[tuple[int, int, int]]) -> list[int]:
    full = list(colors[:256]) + [(0, 0, 0)] * (256 - len(colors))
    full[VOID] = VOID_COLOR
    return [v for rgb in full for v in rgb]


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _palette_png(pixels: np.ndarray, palette: list[int]) -> bytes:
    from PIL import Image

    height, width = pixels.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(pixels).tobytes())
    image.putpalette(palette)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()
