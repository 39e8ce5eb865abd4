"""Bounds on what an import reads, and the one bounded file reader.

Label files come from anywhere: a file is read only if it is a regular file within its bound,
so a 50 GB "annotations.json", a FIFO or a link to ``/dev/zero`` is a listed problem, not a
hang or an out-of-memory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_COCO_BYTES = 256 * 2**20  # one COCO JSON (a 20,000-image project with RLE is ~50 MB)
MAX_LABELME_BYTES = 64 * 2**20  # one LabelMe JSON (imageData may embed the image)
MAX_YOLO_BYTES = 8 * 2**20  # one YOLO .txt
MAX_YAML_BYTES = 1 * 2**20  # data.yaml
MAX_FILES = 200_000  # label files walked in one import folder
MAX_VERTICES = 100_000  # vertices of one polygon
MAX_OBJECTS_PER_IMAGE = 10_000
COORD_SLACK = 1.0  # pixels (YOLO: 1e-3 of the size) a coordinate may lie outside the image


class TooLarge(Exception):
    """A file over its bound, or not a regular file; the message says which."""


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, refusing more than ``limit`` bytes."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise TooLarge(f"cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise TooLarge("is not a regular file")
    if info.st_size > limit:
        raise TooLarge(f"is {info.st_size:,} bytes, over the limit of {limit:,}")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise TooLarge(f"cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise TooLarge(f"is over the limit of {limit:,} bytes")
    return data
