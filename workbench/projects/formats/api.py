"""The two entrances: ``export_project`` and ``import_labels``, over a table of formats."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from workbench.projects.formats.checking import checked_images
from workbench.projects.formats.coco_export import write_coco
from workbench.projects.formats.coco_import import import_coco
from workbench.projects.formats.cutouts_export import write_cutouts
from workbench.projects.formats.labelme_export import write_labelme
from workbench.projects.formats.labelme_import import import_labelme
from workbench.projects.formats.results import ExportReport, FormatError, ImportResult, Tally
from workbench.projects.formats.voc_export import write_voc
from workbench.projects.formats.yolo_export import write_yolo
from workbench.projects.formats.yolo_import import import_yolo
from workbench.projects.model import LabelClass, LabelledImage

FORMATS = ("coco", "yolo", "labelme", "voc", "cutouts")
IMPORT_FORMATS = ("coco", "yolo", "labelme")
_WRITERS = {"coco": write_coco, "yolo": write_yolo, "labelme": write_labelme,
            "voc": write_voc, "cutouts": write_cutouts}
_READERS = {"coco": import_coco, "yolo": import_yolo, "labelme": import_labelme}


def export_project(fmt: str, images: Iterable[LabelledImage], classes: Sequence[LabelClass],
                   out_dir: Path, *, polygons: bool = False) -> ExportReport:
    """Write ``images`` (streamed: one image's masks in memory at a time) into ``out_dir`` in
    format ``fmt`` (one of ``FORMATS``; FORMATS.md says what each writes).

    ``classes`` gives names, ids and order (COCO category ids are the class ids; YOLO and VOC
    indices follow this order). ``polygons`` only changes COCO (polygons instead of RLE).
    Objects of unknown classes, wrong-sized or empty masks and unsafe paths are skipped and
    listed in ``ExportReport.problems``; an unknown format raises ``FormatError``."""
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise FormatError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tally = Tally()
    started = time.perf_counter()
    writer(checked_images(images, classes, tally), classes, out_dir, tally, polygons=polygons)
    return ExportReport(fmt, out_dir, tally.images, tally.objects, tally.files,
                        time.perf_counter() - started, tally.problems.final())


def import_labels(fmt: str, path: Path,
                  image_sizes: Callable[[str], tuple[int, int] | None]) -> ImportResult:
    """Read labels in format ``fmt`` (one of ``IMPORT_FORMATS``) from ``path``.

    ``image_sizes(relative_path)`` returns the project image's ``(width, height)``, or None
    when the project has no such image; labels for unknown images are listed, not imported.
    Every file is read within a bound (``limits``); one bad file, line or shape is a listed
    problem in ``ImportResult.problems``, never an exception. Raises ``FormatError`` only for
    an unknown format or a ``path`` that does not exist."""
    reader = _READERS.get(fmt)
    if reader is None:
        raise FormatError(f"Unknown import format {fmt!r}; choose one of "
                          f"{', '.join(IMPORT_FORMATS)}.")
    path = Path(path)
    if not path.exists():
        raise FormatError(f"{path} does not exist.")
    return reader(path, image_sizes)
