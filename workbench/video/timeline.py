"""The Video view's timeline as data: per object, on which processed frames it was tracked, seen,
prompted and corrected (the browser widget, ``ui.widgets.timeline``, only draws this).

Built from a ``VideoSession`` (``build_timeline``), no Gradio. Frames are processed-frame
indices (0 .. ``frames`` - 1, what the Frame slider counts). A run is half-open like a Python
range: ``(3, 7)`` is frames 3, 4, 5 and 6. Per object:

* ``tracked``: frames where the track holds a result for the object (its mask, empty or not);
* ``present``: those where the mask is not empty (the object is seen);
* ``prompted``: frames with the object's clicks or box;
* ``corrected``: prompted frames whose first prompt came after tracking had given the object a
  result there (``VideoObject.corrected``), i.e. the person fixed the track on that frame.

Colours come from the drawing spec (``SPEC.hex_for(object id)``), as on the canvas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sam_backends.masks import rle_area
from workbench.drawing import SPEC
from workbench.video.state import VideoSession

Run = tuple[int, int]  # (first frame, last frame + 1)


@dataclass(frozen=True)
class TimelineRow:
    """One object's row: its id (colour slot), name, colour and frames (see the module)."""

    object_id: int
    name: str
    colour: str
    tracked: tuple[Run, ...] = ()
    present: tuple[Run, ...] = ()
    prompted: tuple[int, ...] = ()
    corrected: tuple[int, ...] = ()
    active: bool = False

    def as_value(self) -> dict[str, Any]:
        return {"id": self.object_id, "name": self.name, "color": self.colour,
                "tracked": [list(r) for r in self.tracked],
                "present": [list(r) for r in self.present],
                "prompted": list(self.prompted), "corrected": list(self.corrected),
                "active": self.active}


@dataclass(frozen=True)
class Timeline:
    """Every object's row over ``frames`` processed frames, and the frame shown (``current``).

    ``frames`` is 0 without a clip. Names are plain text (the widget sets them as text, never
    as HTML).
    """

    frames: int = 0
    current: int = 0
    rows: tuple[TimelineRow, ...] = ()

    def as_value(self) -> dict[str, Any]:
        """The widget's value (JSON-ready)."""
        return {"frames": self.frames, "current": self.current,
                "rows": [row.as_value() for row in self.rows]}


def runs(frames: Iterable[int]) -> tuple[Run, ...]:
    """Sorted frame indices (duplicates allowed) as half-open runs: [0, 1, 2, 5] -> ((0, 3),
    (5, 6))."""
    out: list[list[int]] = []
    for frame in sorted(set(frames)):
        if out and out[-1][1] == frame:
            out[-1][1] = frame + 1
        else:
            out.append([frame, frame + 1])
    return tuple((start, stop) for start, stop in out)


def build_timeline(session: VideoSession) -> Timeline:
    """The timeline of ``session``: a row for every object with prompts or tracked results, in
    the object list's order (none without a clip, or before the first click)."""
    video = session.video
    if video is None:
        return Timeline()
    track = session.track
    tracked_frames = list(track) if track is not None else []
    rows = []
    for obj in session.objects:
        tracked, present = [], []
        for frame in tracked_frames:
            rle = track.rle(frame, obj.object_id)
            if rle is None:
                continue
            tracked.append(frame)
            if rle_area(rle) > 0:
                present.append(frame)
        if obj.is_empty and not tracked:
            continue
        rows.append(TimelineRow(
            object_id=obj.object_id, name=obj.name, colour=SPEC.hex_for(obj.object_id),
            tracked=runs(tracked), present=runs(present), prompted=obj.frames,
            corrected=obj.corrected, active=obj.object_id == session.active_id))
    current = min(max(0, session.frame), video.num_frames - 1)
    return Timeline(frames=video.num_frames, current=current, rows=tuple(rows))
