"""The payloads of the canvas's custom events, read strictly: a bad one is a ``UserError``.

Also the per-object point cap (``check_point_cap``), shared by the segment and compare views.

``ui.widgets.canvas`` calls ``trigger(name, data)`` in the browser; Gradio hands ``data`` to the
handler as ``evt._data``, exactly as the browser sent it. Normally that is::

    point          {"x": 12.5, "y": 40.0, "button": 0 | 2, "shift": false}
    box            {"box": [x0, y0, x1, y1]}
    choose         {"index": 1}
    pick_object    {"id": 3}          (also remove_object)
    bulk_action    {"action": "hide", "ids": [3, 4], "class_id": 2}   (class_id: "class" only)
    seek           {"frame": 12}      (the video timeline)

but anyone can send anything (``x: "abc"``, ``x: null``, a missing key, an index out of
range), so each payload is checked here, once, and turned into plain typed values. Without
these checks a crafted event met ``float("abc")`` deep in a handler and showed "Something went
wrong" with a traceback in the server log, or an unknown object id was silently ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Collection, Mapping

from workbench.errors import UserError

CLICK_AGAIN = "click the image again"
BACKGROUND_BUTTON = 2  # the right mouse button


@dataclass(frozen=True)
class PointClick:
    """A click on the canvas, in original-image pixels.

    Attributes:
        x, y: finite pixel coordinates (whether they lie inside the image is checked later, by
            ``Prompts.validate_for_image``).
        background: the user asked for a background point (right button or shift-click).
    """

    x: float
    y: float
    background: bool


def point_from_event(data: Any) -> PointClick:
    """The click in a ``point`` event payload.

    Raises:
        UserError: not an object, ``x``/``y`` missing or not finite numbers, ``button`` not an
            integer or ``shift`` not a boolean.
    """
    payload = _mapping(data, "click")
    x = _number(payload, "x", "click")
    y = _number(payload, "y", "click")
    button = payload.get("button", 0)
    if button is None:
        button = 0
    if isinstance(button, bool) or not isinstance(button, int):
        raise UserError(f"The click's mouse button is {_shown(button)}, not a button number; "
                        f"{CLICK_AGAIN}.", "Click not understood")
    shift = payload.get("shift", False)
    if shift is None:
        shift = False
    if not isinstance(shift, bool):
        raise UserError(f"The click's shift key is {_shown(shift)}, not true or false; "
                        f"{CLICK_AGAIN}.", "Click not understood")
    return PointClick(x, y, button == BACKGROUND_BUTTON or shift)


def box_from_event(data: Any) -> tuple[float, float, float, float]:
    """The dragged box ``(x0, y0, x1, y1)`` in a ``box`` event payload (not yet normalised).

    Raises:
        UserError: not an object, or ``box`` is not a list of 4 finite numbers.
    """
    payload = _mapping(data, "box")
    box = payload.get("box")
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise UserError("Drag from one corner of the object to the opposite corner.",
                        "Box not understood")
    values = []
    for i, value in enumerate(box):
        if not _is_finite_number(value):
            raise UserError(f"Corner value {i} of the box is {_shown(value)}, not a pixel "
                            "position; drag the box again.", "Box not understood")
        values.append(float(value))
    return (values[0], values[1], values[2], values[3])


def index_from_event(data: Any, count: int) -> int:
    """The candidate index in a ``choose`` event payload, checked against ``count`` candidates.

    Raises:
        UserError: not an object, ``index`` missing or not a whole number, or not in
            ``[0, count)`` (the candidates changed since they were shown).
    """
    payload = _mapping(data, "choice")
    index = _whole(payload.get("index"))
    if index is None:
        raise UserError(f"The chosen candidate is {_shown(payload.get('index'))}, not a "
                        f"candidate number; {CLICK_AGAIN}.", "Choice not understood")
    if not 0 <= index < count:
        raise UserError("That candidate is gone; click the image again.", "Candidate gone")
    return index


def object_id_from_event(data: Any, known: Collection[int]) -> int:
    """The object id in a ``pick_object``/``remove_object`` payload, one of ``known``.

    Raises:
        UserError: not an object, ``id`` missing or not a whole number, or no such object
            (deleted meanwhile, or never there).
    """
    payload = _mapping(data, "object choice")
    object_id = _whole(payload.get("id"))
    if object_id is None:
        raise UserError(f"The object is {_shown(payload.get('id'))}, not an object number; "
                        "pick one from the list.", "Object not understood")
    if object_id not in known:
        raise UserError(f"Object {object_id} does not exist any more; pick one from the list.",
                        "Object gone")
    return object_id


def proposal_from_event(data: Any, shown: Collection[int]) -> int:
    """The proposal index in a canvas ``proposal`` payload, one of the ``shown`` ones.

    Raises:
        UserError: not an object, ``index`` missing or not a whole number, or not shown now
            (the threshold or the run changed since the click).
    """
    payload = _mapping(data, "proposal choice")
    index = _whole(payload.get("index"))
    if index is None:
        raise UserError(f"The proposal is {_shown(payload.get('index'))}, not a proposal "
                        "number; click inside an outline.", "Proposal not understood")
    if index not in shown:
        raise UserError("That proposal is no longer shown (the threshold or the run changed); "
                        "click another one.", "No such proposal")
    return index


def frame_from_event(data: Any, count: int) -> int:
    """The frame in a timeline ``seek`` payload, brought into ``[0, count)`` (a timeline drawn
    for a longer selection may name a frame past the end).

    Raises:
        UserError: not an object, or ``frame`` missing or not a whole number.
    """
    payload = _mapping(data, "frame choice")
    frame = _whole(payload.get("frame"))
    if frame is None:
        raise UserError(f"The frame is {_shown(payload.get('frame'))}, not a frame number; "
                        "click the timeline again.", "Frame not understood")
    return min(max(0, frame), max(0, count - 1))


def check_point_cap(count: int, max_points: int) -> None:
    """Refuse one more point when an object already has ``max_points`` (before model work).

    The API refuses the same count (``sam_backends.prompts.prompt_parsing``); each point makes every
    later decode of the object slower, and a scripted page could add thousands.
    """
    if count >= max_points:
        raise UserError(f"At most {max_points} points per object; start a new object or undo.",
                        "Too many points")


# --- helpers --------------------------------------------------------------------------------


def _mapping(data: Any, what: str) -> Mapping[Any, Any]:
    if not isinstance(data, Mapping):
        raise UserError(f"The {what} could not be read (no event data); try again.",
                        "Event not understood")
    return data


def _is_finite_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int too large for a float
        return False


def _number(payload: Mapping[Any, Any], key: str, what: str) -> float:
    value = payload.get(key)
    if not _is_finite_number(value):
        state = "missing" if value is None else f"{_shown(value)}, not a number"
        raise UserError(f"The {what}'s {key} position is {state}; {CLICK_AGAIN}.",
                        "Click not understood")
    return float(value)


def _whole(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (JS numbers may arrive as 2.0), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _shown(value: Any) -> str:
    """A short, safe rendering of a payload value for a message (never a huge repr)."""
    if value is None:
        return "missing"
    if isinstance(value, str):
        return repr(value[:24]) + ("..." if len(value) > 24 else "")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return repr(value) if abs(value) < 10**24 else "a number too large"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


BULK_ACTIONS = ("delete", "hide", "show", "lock", "unlock", "solo", "class")
MAX_BULK_IDS = 10_000


@dataclass(frozen=True)
class BulkAction:
    """An object list action on several objects: ``action`` (one of ``BULK_ACTIONS``), the
    objects' ids (known ones, in the order sent, without repeats) and, for "class", the class.
    "solo" shows the objects named and hides all others ("hide all but this")."""

    action: str
    ids: tuple[int, ...]
    class_id: int | None = None


def bulk_from_event(data: Any, known: Collection[int]) -> BulkAction:
    """The ``bulk_action`` payload, checked. Ids that are gone (deleted meanwhile by another
    event) are dropped; if none is left it is a ``UserError``.

    Raises:
        UserError: not an object, an unknown action, ``ids`` not a list of whole numbers, no
            known id left, or "class" without a whole-number ``class_id``.
    """
    payload = _mapping(data, "object action")
    action = payload.get("action")
    if action not in BULK_ACTIONS:
        raise UserError(f"The object action is {_shown(action)}; use one of "
                        f"{', '.join(BULK_ACTIONS)}.", "Action not understood")
    raw = payload.get("ids")
    if not isinstance(raw, (list, tuple)) or len(raw) > MAX_BULK_IDS:
        raise UserError("Select objects in the list first (their check boxes).",
                        "No objects selected")
    ids = []
    for value in raw:
        object_id = _whole(value)
        if object_id is None:
            raise UserError(f"An object is {_shown(value)}, not an object number; select "
                            "objects in the list.", "Object not understood")
        if object_id in known and object_id not in ids:
            ids.append(object_id)
    if not ids:
        raise UserError("The selected objects do not exist any more; select others.",
                        "Objects gone")
    class_id = None
    if action == "class":
        class_id = _whole(payload.get("class_id"))
        if class_id is None:
            raise UserError("Pick the class to give the selected objects.", "No class")
    return BulkAction(action, tuple(ids), class_id)
