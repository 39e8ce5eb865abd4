"""Exports and imports of a whole project: the one use case the Projects view and
``samwb export`` / ``samwb import`` share (formats in ``workbench.projects.formats``).
"""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.projects.model import ProjectError


@dataclass(frozen=True)
class ExportDone:
    """Where the export went and what it holds."""

    folder: Path
    images: int
    objects: int
    problems: tuple[str, ...] = ()


def export_store(store: Any, fmt: str, out_dir: Path, *, polygons: bool = False,
                 status: str | None = None) -> ExportDone:
    """Write ``store``'s labelled images in ``fmt`` into ``out_dir`` (streamed image by image).

    ``status``: only images with this status (None: every image that has a known size)."""
    from workbench.projects.formats import FORMATS, FormatError, export_project

    if fmt not in FORMATS:
        raise ProjectError(f"Unknown format {fmt!r}; pick one of: {', '.join(FORMATS)}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        report = export_project(fmt, store.iter_labelled(status=status), store.classes(),
                                out_dir, polygons=polygons)
    except FormatError as exc:
        raise ProjectError(str(exc)) from exc
    return ExportDone(out_dir, report.images, report.objects,
                      tuple(str(p) for p in report.problems))


def zip_folder(folder: Path, target: Path) -> Path:
    """``folder``'s files in one ZIP (paths relative to ``folder``)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return target


def export_zip(store: Any, fmt: str, work_dir: Path, *, polygons: bool = False) -> Path:
    """An export as one ZIP for a download (the folder is removed once zipped)."""
    folder = Path(work_dir) / f"{fmt}-export"
    if folder.exists():
        shutil.rmtree(folder)
    export_store(store, fmt, folder, polygons=polygons)
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in store.name) or "project"
    target = zip_folder(folder, Path(work_dir) / f"{stem}-{fmt}.zip")
    shutil.rmtree(folder, ignore_errors=True)
    return target


def import_into(store: Any, fmt: str, path: Path, work_dir: Path | None = None) -> Any:
    """Read labels in ``fmt`` from ``path`` (a file, a folder, or a ZIP of either, unpacked
    into ``work_dir`` within bounds) and add them to ``store`` as objects to review."""
    from workbench.projects.formats import FormatError, import_labels

    path = Path(path)
    if path.suffix.lower() == ".zip":
        from workbench.projects.archive import extract_labels_zip

        unpacked = extract_labels_zip(path, Path(work_dir or path.parent) / "labels-import")
        try:
            return import_into(store, fmt, _label_root(unpacked, fmt))
        finally:
            shutil.rmtree(unpacked, ignore_errors=True)

    def size_of(relative: str) -> tuple[int, int] | None:
        return store.image_size(relative)

    try:
        result = import_labels(fmt, Path(path), size_of)
    except FormatError as exc:
        raise ProjectError(str(exc)) from exc
    report = store.import_objects(result.images, result.class_names, source="model")
    return result, report


def _label_root(folder: Path, fmt: str) -> Path:
    """The folder (or file) inside an unpacked ZIP the reader should start from: a ZIP often
    wraps everything in one top folder."""
    entries = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir():
        folder = entries[0]
    if fmt == "coco":
        jsons = sorted(folder.rglob("*.json"))
        if len(jsons) == 1:
            return jsons[0]
    return folder
