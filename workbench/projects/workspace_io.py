"""Between the canvas's ``Workspace`` (objects with undo history) and the store's rows.

What is stored of an object is its current step: the mask (RLE), the prompts that made it, the
score and model, its class, name and source, and whether it is hidden or locked. The undo
history lives in the page's session only; after a reload an object starts a new history from
its stored state (what every annotation tool does). A restored object has no low-resolution
logits: the next click on it is decoded from its prompts alone, as on a fresh object.

Hand edits (``Step.edits``) are stored twice: baked into the mask (what exports and batch runs
read, with ``edited`` set so batch runs never replace the object) and as their own layer, the
add/remove masks and the model's own mask (``model.StoredEdits``). The layer rebuilds the same
``Step`` on reopening, so a later click re-predicts and keeps the edits on top, exactly as before
the reload. A row without a layer (saved before schema 2), or one whose layer does not give its
stored mask back (the database was changed by hand), opens with its mask as stored.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from sam_backends.masks import decode_rle, encode_rle
from workbench.errors import log
from workbench.objects import MaskEdits, MaskResult, PromptSet, SegObject, Step, Workspace
from workbench.projects.model import StoredEdits, StoredObject

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


def stored_edits(step: Step) -> StoredEdits | None:
    """The layer of ``step``'s hand edits as RLE (None when it has none)."""
    if step.edits is None:
        return None
    add, remove = step.edits.masks()
    model = step.base
    return StoredEdits(encode_rle(add), encode_rle(remove),
                       None if model is None else encode_rle(model.mask()))


def stored_from_object(obj: SegObject, image_id: int, default_class: int) -> StoredObject | None:
    """The row for ``obj``'s current state; None when it has no mask (nothing to keep)."""
    result = obj.result
    if result is None:
        return None
    layer = stored_edits(obj.current)
    return StoredObject(
        image_id=image_id, local_id=obj.object_id,
        class_id=obj.class_id if obj.class_id is not None else default_class,
        rle=encode_rle(result.mask()), instance_name=obj.name, source=obj.source,
        model_id=result.model_id, prompts=obj.prompts.to_json(), score=float(result.score),
        edited=layer is not None, edits=layer,  # brush, eraser or polygon: batch runs keep off
        hidden=obj.hidden, locked=obj.locked)


def _edited_step(row: StoredObject, prompts: PromptSet, shown: np.ndarray) -> Step | None:
    """The step the row's edit layer rebuilds, or None when it has none or it does not give
    the stored mask back (then the stored mask, which exports use, is what the person gets)."""
    layer = row.edits
    if layer is None:
        return None
    score = row.score if row.score is not None else 1.0
    try:
        add, remove = decode_rle(layer.add), decode_rle(layer.remove)
        model = None if layer.model is None else MaskResult.from_mask(
            decode_rle(layer.model), score, None, row.model_id or "stored")
        step = Step(prompts, model).with_edits(MaskEdits.of(add, remove))
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("object %s of image %s: edit layer unreadable (%s); its mask is kept",
                    row.local_id, row.image_id, exc)
        return None
    result = step.result
    if (result is None and shown.any()) or (
            result is not None and not np.array_equal(result.mask(), shown)):
        log.warning("object %s of image %s: edit layer does not match its mask; the mask is "
                    "kept", row.local_id, row.image_id)
        return None
    return step


def object_from_stored(row: StoredObject) -> SegObject:
    """A one-step ``SegObject`` showing the stored mask, with its hand edits as a layer again
    when the row has one (see the module docstring)."""
    mask = decode_rle(row.rle)
    prompts = prompts_from_json(row.prompts)
    step = _edited_step(row, prompts, mask)
    if step is None:
        result = MaskResult.from_mask(mask, row.score if row.score is not None else 1.0, None,
                                      row.model_id or "stored")
        step = Step(prompts, result)
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
