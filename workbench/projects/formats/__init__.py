"""Dataset formats: a project's labels out to the files trainers read, and back in.

``export_project`` writes COCO, YOLO segmentation, LabelMe, Pascal VOC-style PNGs or a ZIP of
cut-outs; ``import_labels`` reads COCO, YOLO and LabelMe. The rules (what each format keeps of
holes, parts and specks) and their measured round-trip figures are in FORMATS.md; the
mask <-> polygon conversions are in ``polygons``. Independent of the store: the values are
``workbench.projects.model``'s.
"""

from workbench.projects.formats.api import FORMATS, IMPORT_FORMATS, export_project, import_labels
from workbench.projects.formats.results import ExportReport, FormatError, ImportResult, Problem

__all__ = ["FORMATS", "IMPORT_FORMATS", "ExportReport", "FormatError", "ImportResult",
           "Problem", "export_project", "import_labels"]
