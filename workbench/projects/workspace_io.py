"""Between the canvas's ``Workspace`` (objects with undo history) and the store's rows.

What is stored of an object is its current step: the mask (RLE), the prompts that made it, the
score and model, its class, name and source, and whether it is hidden or locked. The undo
history lives in the page's session only; after a reload an object starts a new history from
its stored state (what every annotation tool does). A restored object has no low-resolution
logits: the next click on it is decoded from its prompts alone, as on a fresh object.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from sam_backends.masks import decode_rle, encode_rle
from workbench.objects import MaskResult, PromptSet, SegObject, Step, Workspace
from workbench.projects.model import StoredObject

MAX_STORED_POINTS = 1000  # prompts kept per object (the app itself refuses far fewer)


def prompts_from_json(data: object) -> PromptSet:
    """A ``PromptSet`` from stored prompt JSON; anything malformed reads as no prompts (the mask
    is what matters; prompts only help the next click)."""
    if not isinstance(data, dict):
        return PromptSet()
    try:
        points = tuple((float(x), float(y)) for x, y in data.get("points", ()))
        labels = tuple(int(v) for v in data.get("labels", ()))
        box = data.get("box")
        box = tuple(float(v) for v in box) if box is not None else None
    except (TypeError, ValueError):
        return PromptSet()
    if len(points) != len(labels) or len(points) > MAX_STORED_POINTS or (
            box is not None and len(box) != 4):
        return PromptSet()
    return PromptSet(points, labels, box)


def stored_from_object(obj: SegObject, image_id: int, default_class: int) -> StoredObject | None:
    """The row for ``obj``'s current state; None when it has no mask (nothing to keep)."""
    result = obj.result
    if result is None:
        return None
    return StoredObject(
        image_id=image_id, local_id=obj.object_id,
        class_id=obj.class_id if obj.class_id is not None else default_class,
        rle=encode_rle(result.mask()), instance_name=obj.name, source=obj.source,
        model_id=result.model_id, prompts=obj.prompts.to_json(), score=float(result.score),
        hidden=obj.hidden, locked=obj.locked)


def object_from_stored(row: StoredObject) -> SegObject:
    """A one-step ``SegObject`` showing the stored mask."""
    mask = decode_rle(row.rle)
    result = MaskResult.from_mask(mask, row.score if row.score is not None else 1.0, None,
                                  row.model_id or "stored")
    step = Step(prompts_from_json(row.prompts), result)
    return SegObject(row.local_id, (step,), 0, row.instance_name, row.class_id, row.source,
                     hidden=row.hidden, locked=row.locked)


def workspace_from_stored(rows: Sequence[StoredObject], class_id: int | None,
                          shape: tuple[int, int]) -> Workspace:
    """The workspace of an image from its stored objects, plus a fresh empty object of the
    current class to click into (the page always has an active object)."""
    objects = tuple(object_from_stored(r) for r in rows if tuple(r.rle["size"]) == tuple(shape))
    next_id = max((o.object_id for o in objects), default=0) + 1
    fresh = SegObject(next_id, class_id=class_id)
    return Workspace(objects + (fresh,), fresh.object_id, next_id + 1, class_id)


def changes(before: dict[int, SegObject], workspace: Workspace
            ) -> tuple[list[SegObject], list[int]]:
    """What to write: the objects that differ from ``before`` (by identity: objects are
    immutable, so an unchanged object is the very same value) and the ids no longer shown."""
    now = {o.object_id: o for o in workspace.objects if o.result is not None}
    changed = [o for oid, o in now.items() if before.get(oid) is not o]
    gone = [oid for oid in before if oid not in now]
    return changed, gone


def masks_equal(a: Iterable[StoredObject], b: Iterable[StoredObject]) -> bool:
    """True when two sets of rows hold the same masks per local id (tests and checks)."""
    left = {r.local_id: decode_rle(r.rle) for r in a}
    right = {r.local_id: decode_rle(r.rle) for r in b}
    return left.keys() == right.keys() and all(
        np.array_equal(left[k], right[k]) for k in left)
