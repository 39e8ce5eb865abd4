"""The checks every export makes, once: a safe relative path, known classes, masks that match
the image size and are not empty. Masks are decoded one at a time, when a writer asks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from workbench.projects.formats.naming import safe_relative
from workbench.projects.formats.results import Tally
from workbench.projects.model import LabelClass, LabelledImage, LabelledObject


@dataclass(frozen=True)
class ImageToWrite:
    """One image that passed the checks, with the objects whose class and size are right."""

    image: LabelledImage
    relative: PurePosixPath
    objects: tuple[LabelledObject, ...]
    tally: Tally

    def masks(self) -> Iterator[tuple[LabelledObject, np.ndarray]]:
        """Each object with its bool H x W mask, decoded one at a time; empty masks are
        listed as problems and skipped."""
        for number, obj in enumerate(self.objects, start=1):
            mask = obj.mask()
            if not mask.any():
                self.tally.problems.add(self.image.path, f"object {number} has an empty mask; "
                                        "not written")
                continue
            yield obj, mask


def checked_images(images: Iterable[LabelledImage], classes: Sequence[LabelClass],
                   tally: Tally) -> Iterator[ImageToWrite]:
    """The images worth writing, one at a time; what is skipped goes to ``tally.problems``."""
    known = {c.class_id for c in classes}
    for image in images:
        relative = safe_relative(image.path)
        if relative is None:
            tally.problems.add(str(image.path), "not a relative path inside the project; "
                               "skipped")
            continue
        if image.width <= 0 or image.height <= 0:
            tally.problems.add(image.path, "the image size is unknown; skipped")
            continue
        kept = []
        for number, obj in enumerate(image.objects, start=1):
            size = list(obj.rle.get("size", ())) if isinstance(obj.rle, dict) else []
            if obj.class_id not in known:
                tally.problems.add(image.path, f"object {number} has class id {obj.class_id}, "
                                   "which is not among the classes; not written")
            elif size != [image.height, image.width]:
                tally.problems.add(image.path, f"object {number}'s mask is {size} (H, W), the "
                                   f"image {image.height} x {image.width}; not written")
            else:
                kept.append(obj)
        yield ImageToWrite(image, relative, tuple(kept), tally)
