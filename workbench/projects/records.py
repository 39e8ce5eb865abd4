"""Objects between their dataclass (``model.StoredObject``) and their table row, checked.

A mask is stored as its COCO compressed RLE: ``rle_h``, ``rle_w`` and the ``counts`` text
(``sam_backends.masks.encode_rle``); the hand edits' layer (``model.StoredEdits``) as three
more counts of the same size. Checks made before anything is written: the RLEs' shape and
alphabet (COCO's counts use the characters ``0``..``o``), the source, prompts that are JSON,
and a finite score.

``edited`` only ever goes from 0 to 1 on an update: "a person changed it by hand" stays true
when the edit is undone or the object is saved again from a page that no longer has the layer
(a row from before schema 2), so a batch run keeps off it for good.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Mapping

from .model import SOURCES, LabelledObject, ProjectError, StoredEdits, StoredObject

OBJECT_COLUMNS = ("image_id, local_id, class_id, instance_name, rle_h, rle_w, rle_counts, "
                  "source, model_id, prompts, score, run_key, edited, created_at, updated_at, "
                  "edit_add, edit_remove, model_counts, hidden, locked")
_COUNTS = re.compile(r"[0-o]*")
_UPSERT = (f"INSERT INTO objects ({OBJECT_COLUMNS}) VALUES ({', '.join('?' * 20)}) "
           "ON CONFLICT (image_id, local_id) DO UPDATE SET class_id = excluded.class_id, "
           "instance_name = excluded.instance_name, rle_h = excluded.rle_h, "
           "rle_w = excluded.rle_w, rle_counts = excluded.rle_counts, source = excluded.source, "
           "model_id = excluded.model_id, prompts = excluded.prompts, score = excluded.score, "
           "run_key = excluded.run_key, edited = MAX(edited, excluded.edited), "
           "updated_at = excluded.updated_at, edit_add = excluded.edit_add, "
           "edit_remove = excluded.edit_remove, model_counts = excluded.model_counts, "
           "hidden = excluded.hidden, locked = excluded.locked")


def check_rle(rle: object) -> tuple[int, int, str]:
    """(height, width, counts) of a COCO compressed RLE dict, or ProjectError."""
    hint = "masks are stored as COCO compressed RLE (sam_backends.masks.encode_rle)"
    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise ProjectError(f"A mask must be {{'size': [H, W], 'counts': ...}}: {hint}.")
    size, counts = rle["size"], rle["counts"]
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, int) and v > 0 for v in size)):
        raise ProjectError(f"A mask's size must be [H, W] in pixels, got {size!r}.")
    if isinstance(counts, bytes):
        counts = counts.decode("ascii", "replace")
    if not isinstance(counts, str) or not _COUNTS.fullmatch(counts):
        raise ProjectError(f"A mask's counts are not compressed RLE text: {hint}.")
    return int(size[0]), int(size[1]), counts


def _score(score: object) -> float | None:
    if score is None:
        return None
    try:
        value = float(score)
    except (TypeError, ValueError):
        raise ProjectError(f"An object's score must be a number, got {score!r}.") from None
    return value if math.isfinite(value) else None


def _prompts(prompts: object) -> str:
    try:
        return json.dumps(prompts if prompts is not None else {}, allow_nan=False,
                          separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ProjectError(f"An object's prompts must be plain JSON data ({exc}).") from None


def _edit_counts(edits: StoredEdits | None, size: tuple[int, int]
                 ) -> tuple[str | None, str | None, str | None]:
    """(edit_add, edit_remove, model_counts) of a layer, each checked to be ``size``."""
    if edits is None:
        return None, None, None
    counts = []
    for rle in (edits.add, edits.remove, edits.model):
        if rle is None:
            counts.append(None)
            continue
        h, w, text = check_rle(rle)
        if (h, w) != size:
            raise ProjectError(f"An object's edit masks are {h} x {w}, its mask {size[0]} x "
                               f"{size[1]}: the edits must be of the image's size.")
        counts.append(text)
    if counts[0] is None or counts[1] is None:
        raise ProjectError("An object's edits need both masks, 'add' and 'remove'.")
    return counts[0], counts[1], counts[2]


def object_params(obj: StoredObject, image_id: int, local_id: int, now: float) -> tuple:
    """The row of ``obj`` (checked), with its ``created_at`` defaulting to ``now``."""
    if obj.source not in SOURCES:
        raise ProjectError(f"An object's source is one of {SOURCES}, got {obj.source!r}.")
    if not isinstance(local_id, int) or local_id < 1:
        raise ProjectError(f"An object's local id is a whole number >= 1, got {local_id!r}.")
    h, w, counts = check_rle(obj.rle)
    return (int(image_id), local_id, int(obj.class_id), str(obj.instance_name or ""), h, w,
            counts, obj.source, str(obj.model_id or ""), _prompts(obj.prompts),
            _score(obj.score), str(obj.run_key or ""),
            int(bool(obj.edited) or obj.edits is not None), float(obj.created_at or now), now,
            *_edit_counts(obj.edits, (h, w)), int(bool(obj.hidden)), int(bool(obj.locked)))


def upsert(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    conn.executemany(_UPSERT, rows)


def stored_from_row(row: tuple) -> StoredObject:
    (image_id, local_id, class_id, instance_name, h, w, counts, source, model_id, prompts,
     score, run_key, edited, created_at, updated_at, edit_add, edit_remove, model_counts,
     hidden, locked) = row
    edits = None
    if edit_add is not None and edit_remove is not None:
        edits = StoredEdits(
            add={"size": [h, w], "counts": edit_add},
            remove={"size": [h, w], "counts": edit_remove},
            model=None if model_counts is None else {"size": [h, w], "counts": model_counts})
    return StoredObject(image_id=image_id, local_id=local_id, class_id=class_id,
                        rle={"size": [h, w], "counts": counts}, instance_name=instance_name,
                        source=source, model_id=model_id, prompts=json.loads(prompts),
                        score=score, run_key=run_key, edited=bool(edited),
                        created_at=created_at, updated_at=updated_at, edits=edits,
                        hidden=bool(hidden), locked=bool(locked))


def labelled_from_row(row: tuple) -> LabelledObject:
    """(class_id, rle_h, rle_w, rle_counts, instance_name, score, source, edited) ->
    LabelledObject (the mask as shown: hand edits included)."""
    class_id, h, w, counts, instance_name, score, source, edited = row
    return LabelledObject(class_id=class_id, rle={"size": [h, w], "counts": counts},
                          instance_name=instance_name, score=score, source=source,
                          edited=bool(edited))


def select_objects(conn: sqlite3.Connection, image_id: int) -> list[StoredObject]:
    rows = conn.execute(f"SELECT {OBJECT_COLUMNS} FROM objects WHERE image_id = ? "
                        "ORDER BY local_id", (int(image_id),)).fetchall()
    return [stored_from_row(row) for row in rows]


def next_local_id(conn: sqlite3.Connection, image_id: int) -> int:
    return conn.execute("SELECT COALESCE(MAX(local_id), 0) + 1 FROM objects WHERE image_id = ?",
                        (int(image_id),)).fetchone()[0]
