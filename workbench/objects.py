"""The user's work on one image, as immutable values: objects, their prompts, masks and history.

Pure data and transitions (no Gradio, no models), so undo/redo, "new object", delete and model
switches are unit-tested without a browser. Coordinates are original-image pixels ``(x, y)``,
boxes XYXY, exactly as in ``sam_backends.Prompts``.

Shape of the data::

    Workspace
      objects: SegObject, ...         one per thing the user cuts out; each has a colour
        history: Step, ...            every prompt change is a new step (undo = step back)
          prompts: PromptSet          points, labels, box
          result: MaskResult | None   the mask shown for this step (edits included)
          candidates: MaskResult, ... three alternatives when the model was unsure
          edits: MaskEdits | None     hand corrections (brush, eraser, polygon) on top
          base: MaskResult | None     the model's own mask, when ``edits`` changed it
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from sam_backends.masks import mask_box
from workbench.errors import UserError

Point = tuple[float, float]
Box = tuple[float, float, float, float]

MAX_NAME = 60  # characters of an object's label
MAX_HISTORY = 50  # steps kept per object; the oldest ones are dropped beyond this


@dataclass(frozen=True)
class PromptSet:
    """The prompts of one object: points with labels (1 foreground, 0 background), one box."""

    points: tuple[Point, ...] = ()
    labels: tuple[int, ...] = ()
    box: Box | None = None

    @property
    def is_empty(self) -> bool:
        return not self.points and self.box is None

    def with_point(self, x: float, y: float, label: int) -> PromptSet:
        return dataclasses.replace(
            self, points=self.points + ((float(x), float(y)),), labels=self.labels + (int(label),)
        )

    def with_box(self, box: Box) -> PromptSet:
        """Replace the box (an object has at most one); an inverted box is normalised."""
        x0, y0, x1, y1 = (float(v) for v in box)
        return dataclasses.replace(
            self, box=(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        )

    def describe(self) -> str:
        """Short text such as "2 points + box" for status lines."""
        fg = sum(self.labels)
        bg = len(self.labels) - fg
        parts = []
        if fg:
            parts.append(f"{fg} foreground point{'s' if fg > 1 else ''}")
        if bg:
            parts.append(f"{bg} background point{'s' if bg > 1 else ''}")
        if self.box is not None:
            parts.append("box")
        return " + ".join(parts) if parts else "no prompts"

    def to_json(self) -> dict[str, Any]:
        """The prompt format of the public ``/segment`` API."""
        data: dict[str, Any] = {
            "points": [[x, y] for x, y in self.points],
            "labels": list(self.labels),
        }
        if self.box is not None:
            data["box"] = list(self.box)
        return data


class _Packed:
    """A mask's bit-packed pixels, area and box: made now (``of``) or on first use (``later``).

    Why later: a click that offers three candidates shows one of them; upscaling, packing and
    measuring the other two at the image's size took about 5 ms of the click's answer. They
    are made once, under a lock, by the first reader or by the click route right after the
    answer is sent (``LiveSegment.handle_then``), and the source (a closure over the low-res
    logits and the model's upscaling) is dropped then.
    """

    __slots__ = ("_lock", "_source", "_value")

    def __init__(self, source: Callable[[], np.ndarray] | None,
                 value: tuple[np.ndarray, int, tuple[int, int, int, int]] | None) -> None:
        self._lock = threading.Lock()
        self._source = source
        self._value = value

    @classmethod
    def of(cls, mask: np.ndarray) -> _Packed:
        return cls(None, _pack(mask))

    @classmethod
    def later(cls, source: Callable[[], np.ndarray]) -> _Packed:
        return cls(source, None)

    @property
    def made(self) -> bool:
        return self._value is not None

    def get(self) -> tuple[np.ndarray, int, tuple[int, int, int, int]]:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = _pack(self._source())
                    self._source = None
                value = self._value
        return value

    def __reduce__(self):  # pickled made (a source may hold a model)
        return _Packed, (None, self.get())


def _pack(mask: np.ndarray) -> tuple[np.ndarray, int, tuple[int, int, int, int]]:
    mask = np.asarray(mask, dtype=bool)
    bits = np.packbits(mask, axis=None)
    bits.setflags(write=False)
    return bits, int(np.count_nonzero(mask)), mask_bbox(mask)


@dataclass(frozen=True, eq=False)
class MaskResult:
    """One mask for one object, stored bit-packed (an 8x smaller history).

    Attributes:
        shape: (H, W) of the original image.
        score: the model's predicted IoU (GrabCut: its colour separability).
        logits: 1 x 256 x 256 float32 low-res logits, fed back to refine this mask; None when
            the model cannot refine.
        model_id: the model that produced it (a result from another model is re-run).
        bits: ``np.packbits`` of the H x W bool mask, row-major. area: number of mask pixels.
        bbox: the tight box, XYXY with an exclusive max (``sam_backends.masks.mask_box``);
            (0, 0, 0, 0) for an empty mask. These three are made on first use for a result
            built with ``later`` (a candidate nobody has looked at yet).
    """

    shape: tuple[int, int]
    score: float
    logits: np.ndarray | None = field(repr=False)
    model_id: str
    packed: _Packed = field(repr=False)
    decode_seconds: float = 0.0

    @classmethod
    def from_mask(
        cls,
        mask: np.ndarray,
        score: float,
        logits: np.ndarray | None,
        model_id: str,
        decode_seconds: float = 0.0,
    ) -> MaskResult:
        return cls(tuple(np.shape(mask)), float(score), _frozen_logits(logits), model_id,
                   _Packed.of(mask), float(decode_seconds))

    @classmethod
    def later(
        cls,
        source: Callable[[], np.ndarray],
        shape: tuple[int, int],
        score: float,
        logits: np.ndarray | None,
        model_id: str,
        decode_seconds: float = 0.0,
    ) -> MaskResult:
        """A result whose H x W mask ``source()`` makes when it is first needed."""
        return cls(tuple(shape), float(score), _frozen_logits(logits), model_id,
                   _Packed.later(source), float(decode_seconds))

    @property
    def bits(self) -> np.ndarray:
        return self.packed.get()[0]

    @property
    def area(self) -> int:
        return self.packed.get()[1]

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return self.packed.get()[2]

    @property
    def bits_nbytes(self) -> int:
        """Bytes of ``bits``, made or not (the session's memory count reads it)."""
        height, width = self.shape
        return (height * width + 7) // 8

    def mask(self) -> np.ndarray:
        """The H x W bool mask (unpacked; about 1 ms for a 1080p image)."""
        height, width = self.shape
        return np.unpackbits(self.bits, count=height * width).reshape(height, width).view(bool)


def _frozen_logits(logits: np.ndarray | None) -> np.ndarray | None:
    if logits is None:
        return None
    logits = np.array(logits, dtype=np.float32).reshape(1, *logits.shape[-2:])
    logits.setflags(write=False)
    return logits


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``sam_backends.masks.mask_box`` (XYXY, exclusive max), (0, 0, 0, 0) when empty."""
    return mask_box(mask) or (0, 0, 0, 0)


EDIT_MODEL_ID = "hand"  # the model id of a mask painted on an object the model never segmented


@dataclass(frozen=True, eq=False)
class MaskEdits:
    """Hand corrections of one object's mask: pixels painted in and pixels erased.

    Kept apart from the model's mask rather than baked into it, so that a later point or box,
    after which the model predicts the whole mask again, gets the same corrections on top of
    its new mask (hand edits survive clicks), and refinement keeps feeding the model its own
    logits, not a painted mask it never produced. Shown mask = (model | add) & ~remove.

    Attributes:
        add, remove: ``np.packbits`` of H x W bool masks, row-major (as ``MaskResult.bits``).
        shape: (H, W) of the original image.
    """

    add: np.ndarray = field(repr=False)
    remove: np.ndarray = field(repr=False)
    shape: tuple[int, int]

    @classmethod
    def of(cls, add: np.ndarray, remove: np.ndarray) -> MaskEdits:
        add, remove = np.asarray(add, dtype=bool), np.asarray(remove, dtype=bool)
        if add.shape != remove.shape or add.ndim != 2:
            raise ValueError(f"edit masks of shapes {add.shape} and {remove.shape}; "
                             "both must be the image's H x W")
        packed = [np.packbits(m, axis=None) for m in (add, remove & ~add)]
        for bits in packed:
            bits.setflags(write=False)
        return cls(packed[0], packed[1], (int(add.shape[0]), int(add.shape[1])))

    def masks(self) -> tuple[np.ndarray, np.ndarray]:
        """(add, remove) as H x W bool masks; never both true on one pixel."""
        count = self.shape[0] * self.shape[1]
        return tuple(np.unpackbits(b, count=count).reshape(self.shape).view(bool)
                     for b in (self.add, self.remove))  # type: ignore[return-value]

    def apply(self, mask: np.ndarray | None) -> np.ndarray:
        """The shown mask for the model's ``mask`` (None: nothing from the model)."""
        add, remove = self.masks()
        model = np.zeros(self.shape, bool) if mask is None else np.asarray(mask, dtype=bool)
        return (model | add) & ~remove

    @property
    def is_empty(self) -> bool:
        return not (self.add.any() or self.remove.any())


def edited_result(model: MaskResult | None, edits: MaskEdits) -> MaskResult | None:
    """The mask shown for ``model`` with ``edits`` applied; None when nothing is left of a
    mask the model never made. It keeps the model's score, id and logits (shared, not copied),
    so refinement and "re-run on another model" treat it as the model's answer."""
    shown = edits.apply(None if model is None else model.mask())
    if model is None:
        if not shown.any():
            return None
        return MaskResult.from_mask(shown, 1.0, None, EDIT_MODEL_ID)
    result = MaskResult.from_mask(shown, model.score, None, model.model_id,
                                  model.decode_seconds)
    return dataclasses.replace(result, logits=model.logits)


@dataclass(frozen=True)
class Step:
    """One state of an object: its prompts, what the model answered and the hand edits.

    ``candidates`` holds the alternatives (usually three) when the model was unsure; ``chosen``
    indexes the one the model's mask is. With ``edits``, ``result`` is that mask with the edits
    applied (what every reader shows and exports) and ``base`` the model's own mask.
    """

    prompts: PromptSet = PromptSet()
    result: MaskResult | None = None
    candidates: tuple[MaskResult, ...] = ()
    chosen: int = 0
    edits: MaskEdits | None = None
    base: MaskResult | None = None

    @property
    def model_result(self) -> MaskResult | None:
        """The model's own mask for these prompts (``result`` before the hand edits)."""
        return self.base if self.edits is not None else self.result

    def with_edits(self, edits: MaskEdits | None) -> Step:
        """This step's model mask with ``edits`` on top (None or empty: the model's alone)."""
        model = self.model_result
        if edits is None or edits.is_empty:
            return dataclasses.replace(self, result=model, edits=None, base=None)
        return dataclasses.replace(self, result=edited_result(model, edits), edits=edits,
                                   base=model)

    def pick(self, index: int) -> Step:
        """Show candidate ``index`` as the model's mask; hand edits stay on top of it."""
        if not 0 <= index < len(self.candidates):
            raise IndexError(f"candidate {index} does not exist")
        picked = dataclasses.replace(self, result=self.candidates[index], chosen=index,
                                     edits=None, base=None)
        return picked.with_edits(self.edits)


class ObjectLocked(UserError):
    """An edit of a locked object (prompts, undo, clear, delete, rename, class): refused, with
    a message that says how to unlock it. The live route answers it as HTTP 423 ``locked``."""

    def __init__(self, obj: SegObject, doing: str = "change") -> None:
        super().__init__(f"{obj.label} is locked: unlock it (the lock in the object list) to "
                         f"{doing} it.", "Object locked")
        self.object_id = obj.object_id


@dataclass(frozen=True)
class SegObject:
    """One object being cut out: an id, a colour slot and a linear undo history.

    ``hidden`` only changes what the canvas draws (a hidden object is still saved and exported:
    hiding is a way to see what lies under it, not a delete). ``locked`` guards finished work
    against stray clicks: prompts, undo/redo/clear, delete, rename and class changes are
    refused until it is unlocked; hiding, showing and selecting it stay allowed.
    """

    object_id: int
    history: tuple[Step, ...] = (Step(),)
    cursor: int = 0
    name: str = ""  # the user's label (COCO category); empty: "Object <id>"
    class_id: int | None = None  # the project's class (``workbench.projects``); None: no project
    source: str = "person"  # "model" for an object a batch run proposed, until a person edits it
    hidden: bool = False  # not drawn on the canvas (still saved and exported)
    locked: bool = False  # refuses edits until unlocked (see the class docstring)

    def flagged(self, *, hidden: bool | None = None, locked: bool | None = None) -> SegObject:
        """The same object shown/hidden or locked/unlocked (None: unchanged). Not an edit of
        the mask, so ``source`` stays (a proposal that is only hidden is still a proposal).
        Unchanged flags give ``self``: the project saves objects that are new values."""
        if (hidden is None or bool(hidden) == self.hidden) and (
                locked is None or bool(locked) == self.locked):
            return self
        return dataclasses.replace(
            self, hidden=self.hidden if hidden is None else bool(hidden),
            locked=self.locked if locked is None else bool(locked))

    def check_unlocked(self, doing: str = "change") -> SegObject:
        """``self``, or ``ObjectLocked`` when it is locked (``doing``: "refine", "delete"...)."""
        if self.locked:
            raise ObjectLocked(self, doing)
        return self

    @property
    def label(self) -> str:
        return self.name or f"Object {self.object_id}"

    def renamed(self, name: str) -> SegObject:
        """The same object with a new label (trimmed, at most MAX_NAME characters)."""
        name = " ".join(str(name).split())[:MAX_NAME]
        return dataclasses.replace(self, name=name, source="person")

    def classed(self, class_id: int | None) -> SegObject:
        """The same object in another class (a person's choice: it is theirs from now on)."""
        return dataclasses.replace(self, class_id=class_id, source="person")

    @property
    def current(self) -> Step:
        return self.history[self.cursor]

    @property
    def prompts(self) -> PromptSet:
        return self.current.prompts

    @property
    def result(self) -> MaskResult | None:
        return self.current.result

    @property
    def is_empty(self) -> bool:
        """No prompts and no mask. An imported (or hand-drawn) mask has no prompts but is not
        empty: it is kept, shown and exported like any other."""
        return self.current.prompts.is_empty and self.current.result is None

    @property
    def can_undo(self) -> bool:
        return self.cursor > 0

    @property
    def can_redo(self) -> bool:
        return self.cursor < len(self.history) - 1

    def record(self, step: Step) -> SegObject:
        """Append ``step`` after the cursor (dropping any redo steps), keeping MAX_HISTORY.
        A recorded step is a person's edit, so a model's proposal becomes the person's."""
        history = self.history[: self.cursor + 1] + (step,)
        history = history[-MAX_HISTORY:]
        return dataclasses.replace(self, history=history, cursor=len(history) - 1,
                                   source="person")

    def replace_current(self, step: Step) -> SegObject:
        """Swap the current step in place (a candidate pick, or a re-run on another model)."""
        history = self.history[: self.cursor] + (step,) + self.history[self.cursor + 1:]
        return dataclasses.replace(self, history=history)

    def undo(self) -> SegObject:
        return dataclasses.replace(self, cursor=max(0, self.cursor - 1))

    def redo(self) -> SegObject:
        return dataclasses.replace(self, cursor=min(len(self.history) - 1, self.cursor + 1))

    def clear(self) -> SegObject:
        """Remove all prompts and hand edits as one undoable step (no-op when already empty):
        "clear" starts the object again; undo brings both back."""
        return self if self.is_empty else self.record(Step())

    def without_history(self) -> SegObject:
        """The same object with its current step only (no undo, no redo): what the session
        budget drops first, since the object itself is unchanged."""
        if len(self.history) == 1:
            return self
        return dataclasses.replace(self, history=(self.current,), cursor=0)


@dataclass(frozen=True)
class Removed:
    """What one delete took away, for one undo: ``(object, its index before)`` in list order,
    and how many of the objects asked for were locked and so kept."""

    entries: tuple[tuple[SegObject, int], ...] = ()
    kept_locked: int = 0


@dataclass(frozen=True)
class Workspace:
    """All objects on the current image and which one the next click refines."""

    objects: tuple[SegObject, ...] = (SegObject(1),)
    active_id: int = 1
    next_id: int = 2
    class_id: int | None = None  # the class new objects get (a project's current class)

    @property
    def active(self) -> SegObject:
        for obj in self.objects:
            if obj.object_id == self.active_id:
                return obj
        raise LookupError(f"no object {self.active_id}")  # unreachable by construction

    def get(self, object_id: int) -> SegObject | None:
        return next((o for o in self.objects if o.object_id == object_id), None)

    def update(self, obj: SegObject) -> Workspace:
        """Replace the object with the same id."""
        objects = tuple(obj if o.object_id == obj.object_id else o for o in self.objects)
        return dataclasses.replace(self, objects=objects)

    def update_active(self, change: Callable[[SegObject], SegObject]) -> Workspace:
        return self.update(change(self.active))

    def new_object(self) -> Workspace:
        """Start another object and make it active; an empty active object is reused."""
        if self.active.is_empty:
            return self
        obj = SegObject(self.next_id, class_id=self.class_id)
        return Workspace(self.objects + (obj,), obj.object_id, self.next_id + 1, self.class_id)

    def with_class(self, class_id: int | None) -> Workspace:
        """Pick the class for new objects; an active object that is still empty takes it too."""
        ws = dataclasses.replace(self, class_id=class_id)
        active = ws.active
        if active.is_empty and active.class_id != class_id:
            ws = ws.update(dataclasses.replace(active, class_id=class_id))
        return ws

    def select(self, object_id: int) -> Workspace:
        """Make ``object_id`` the one the next click refines; unknown ids are ignored."""
        if self.get(object_id) is None:
            return self
        return dataclasses.replace(self, active_id=object_id)

    def delete(self, object_id: int) -> Workspace:
        """Remove an object; the last one left becomes active, or a fresh empty object."""
        objects = tuple(o for o in self.objects if o.object_id != object_id)
        if len(objects) == len(self.objects):
            return self
        if not objects:
            fresh = SegObject(self.next_id, class_id=self.class_id)
            return Workspace((fresh,), fresh.object_id, self.next_id + 1, self.class_id)
        active = self.active_id if self.active_id != object_id else objects[-1].object_id
        return Workspace(objects, active, self.next_id, self.class_id)

    def restore(self, obj: SegObject, index: int) -> Workspace:
        """Put a deleted object back at ``index`` and make it active (undo of ``delete``)."""
        objects = tuple(o for o in self.objects if o.object_id != obj.object_id)
        if len(objects) == 1 and objects[0].is_empty and len(objects[0].history) == 1:
            objects = ()  # the fresh object ``delete`` made when the last one went
        index = max(0, min(index, len(objects)))
        objects = objects[:index] + (obj,) + objects[index:]
        return Workspace(objects, obj.object_id, max(self.next_id, obj.object_id + 1),
                         self.class_id)

    def flag(self, ids: Iterable[int], *, hidden: bool | None = None,
             locked: bool | None = None) -> Workspace:
        """Hide/show and lock/unlock the objects ``ids`` (unknown ids are ignored)."""
        wanted = set(ids)
        return dataclasses.replace(self, objects=tuple(
            o.flagged(hidden=hidden, locked=locked) if o.object_id in wanted else o
            for o in self.objects))

    def solo(self, ids: Iterable[int]) -> Workspace:
        """Show the objects ``ids`` and hide every other one ("hide all but this"); unchanged
        when none of ``ids`` exists (hiding everything is not what was asked)."""
        wanted = {i for i in ids if self.get(i) is not None}
        if not wanted:
            return self
        return dataclasses.replace(self, objects=tuple(
            o.flagged(hidden=o.object_id not in wanted) for o in self.objects))

    def classify(self, ids: Iterable[int], class_id: int | None) -> tuple[Workspace, int]:
        """Put the objects ``ids`` in ``class_id``; locked ones keep theirs. Returns the new
        workspace and how many locked objects were left as they were."""
        wanted = set(ids)
        locked = sum(1 for o in self.objects if o.object_id in wanted and o.locked)
        return dataclasses.replace(self, objects=tuple(
            o.classed(class_id) if o.object_id in wanted and not o.locked
            and o.class_id != class_id else o for o in self.objects)), locked

    def delete_many(self, ids: Iterable[int]) -> tuple[Workspace, Removed]:
        """Delete the objects ``ids`` as one step (``restore_removed`` undoes it); locked ones
        stay (``Removed.kept_locked`` counts them), unknown ids are ignored."""
        wanted = set(ids)
        entries = tuple((o, i) for i, o in enumerate(self.objects)
                        if o.object_id in wanted and not o.locked)
        kept = sum(1 for o in self.objects if o.object_id in wanted and o.locked)
        ws = self
        for obj, _ in entries:
            ws = ws.delete(obj.object_id)
        return ws, Removed(entries, kept)

    def restore_removed(self, removed: Removed) -> Workspace:
        """Undo of ``delete_many``: every object back at its place, the first one active."""
        ws = self
        for obj, index in removed.entries:  # ascending places: each lands where it was
            ws = ws.restore(obj, index)
        if removed.entries:
            ws = ws.select(removed.entries[0][0].object_id)
        return ws

    def without_history(self) -> Workspace:
        """Every object with its current step only (see ``SegObject.without_history``)."""
        return dataclasses.replace(self, objects=tuple(o.without_history() for o in self.objects))

    def with_masks(self) -> list[SegObject]:
        """Objects that currently show a mask, in creation order."""
        return [o for o in self.objects if o.result is not None and not o.is_empty]
