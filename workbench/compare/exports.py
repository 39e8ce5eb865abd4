"""The compare view's downloads: the comparison table as CSV, and every cut-out and mask as a ZIP.

ZIP layout (``<stem>`` is the uploaded file's safe stem, ``<model>`` the model id)::

    <stem>_compare/comparison.csv
    <stem>_compare/disagreement.png                 (when at least two models have masks)
    <stem>_compare/<model>/cutout.png               all objects, RGBA, transparent outside
    <stem>_compare/<model>/mask.png                 all objects, 255 = object
    <stem>_compare/<model>/object<N>_cutout.png
    <stem>_compare/<model>/object<N>_mask.png

Everything is at the image's full resolution.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from typing import Mapping

from workbench.compare.state import CompareSession
from workbench.compare.values import agreement_matrix, disagreement_image, model_rows
from workbench.exports import cutout_rgba, mask_png, png_bytes, safe_stem

CSV_COLUMNS = (
    "model_id", "model", "objects", "score", "scores", "area_px", "area_percent",
    "encode_seconds", "encode_cached", "encode_wait_seconds", "decode_ms", "iou_vs_ground_truth",
    "boundary_f_vs_ground_truth", "error",
)  # fmt: skip


def _number(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def comparison_csv(session: CompareSession, names: Mapping[str, str]) -> str:
    """The table as CSV text: ``CSV_COLUMNS`` then one ``iou_vs_<model>`` column per model.

    ``score`` is the mean of the objects' predicted scores (``scores`` lists them); areas and
    IoUs are of each model's union of objects.
    """
    rows = model_rows(session, names)
    matrix = agreement_matrix(session)
    pair_ids = session.models
    iou: dict[tuple[str, str], float] = {}
    if matrix is not None:
        ids, values = matrix
        iou = {(a, b): float(values[i, j]) for i, a in enumerate(ids) for j, b in enumerate(ids)}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(CSV_COLUMNS) + [f"iou_vs_{m}" for m in pair_ids])
    for row in rows:
        writer.writerow([
            row.model_id, row.name, row.objects, _number(row.mean_score),
            ";".join(f"{s:.4f}" for s in row.scores),
            "" if row.area_px is None else row.area_px,
            _number(None if row.area_share is None else 100 * row.area_share, 3),
            _number(row.encode_seconds, 3), "" if row.encode_seconds is None else row.cached,
            _number(row.encode_wait_seconds, 3),
            _number(None if row.decode_seconds is None else 1000 * row.decode_seconds, 1),
            _number(row.iou_gt), _number(row.boundary_f_gt), row.error or "",
        ] + [_number(iou.get((row.model_id, other))) for other in pair_ids])  # fmt: skip
    return buffer.getvalue()


def _folder_name(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_id) or "model"


def write_compare_downloads(folder: Path, session: CompareSession,
                            names: Mapping[str, str]) -> dict[str, Path]:
    """Write ``<stem>_comparison.csv`` and ``<stem>_compare.zip`` into ``folder`` (previous
    compare downloads there are replaced). Returns {"csv": path, "zip": path}."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = safe_stem(session.image_name)
    for old in folder.glob("*_compar*.*"):
        old.unlink(missing_ok=True)
    table = comparison_csv(session, names)
    csv_path = folder / f"{stem}_comparison.csv"
    csv_path.write_text(table, encoding="utf-8")
    zip_path = folder / f"{stem}_compare.zip"
    root = f"{stem}_compare"
    image = session.image
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{root}/comparison.csv", table)
        unions = []
        for model_id in session.models:
            union = session.union_mask(model_id)
            if union is None:
                continue
            unions.append(union)
            base = f"{root}/{_folder_name(model_id)}"
            archive.writestr(f"{base}/cutout.png", png_bytes(cutout_rgba(image, union)))
            archive.writestr(f"{base}/mask.png", mask_png(union))
            for object_id, mask, _ in session.masks_of(model_id):
                archive.writestr(f"{base}/object{object_id}_cutout.png",
                                 png_bytes(cutout_rgba(image, mask)))
                archive.writestr(f"{base}/object{object_id}_mask.png", mask_png(mask))
        if len(unions) >= 2:
            full_side = max(image.shape[:2])
            archive.writestr(f"{root}/disagreement.png",
                             png_bytes(disagreement_image(image, unions, side=full_side)))
    return {"csv": csv_path, "zip": zip_path}
