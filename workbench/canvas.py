"""The browser canvas's value: one shape for Segment, Compare and Video.

``ui/widgets/canvas.js`` draws whatever this describes: the image (by URL or as a display-size
JPEG data URL), every object's mask as a cropped palette PNG with its outlines marked
(``workbench.segment.masks``), the active object's prompts, a hint, and the drawing spec
(``workbench.drawing.SPEC``) that says how masks look. The server never composites an overlay
for the page; it sends masks.

Two ways to send clicks back, chosen by ``live``:

* ``live`` set (Segment): clicks, boxes and hover go to the live route (``server.live_route``).
* ``proposals`` set (Segment, while Everything's or a text prompt's proposals are reviewed):
  the proposals are drawn over the image, and a click fires the ``proposal`` Gradio event with
  ``{index}`` (the proposal under the pointer, chosen in the browser) instead of adding a point.
* ``live`` None (Compare, Video): clicks fire the component's ``point`` and boxes its ``box``
  Gradio events (``ui.widgets.canvas.PromptCanvas``), with ``{x, y, button, shift}`` and
  ``{box: [x0, y0, x1, y1]}`` in original-image pixels.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.drawing import SPEC
from workbench.render import data_url, resize_image
from workbench.segment.masks import display_size

Point = tuple[float, float, int]  # (x, y, label) in original-image pixels; label 1 = object


@dataclass(frozen=True)
class CanvasObject:
    """One object as the canvas draws it: its id, its mask payload (``encode_mask``; None while
    it has none), whether it is being refined and its colour (``#rrggbb``; "" means
    ``SPEC.hex_for(id)``, the object-number colour)."""

    object_id: int
    mask: dict[str, Any] | None
    active: bool = False
    colour: str = ""


@dataclass(frozen=True)
class CanvasProposal:
    """One proposal under review, drawn on the same canvas as the objects (outlined; filled
    when selected). ``index`` is its place in its ``ProposalSet``; ``colour`` is ``#rrggbb``;
    ``label`` is plain text (the canvas sets it as text, never as HTML)."""

    index: int
    mask: dict[str, Any] | None
    colour: str
    selected: bool
    label: str


@dataclass(frozen=True)
class CanvasView:
    """Everything the canvas shows for one image or frame (see the module docstring).

    ``size`` is (H, W) of the original image; masks and ``src`` are at ``display_size(size)``.
    ``name``, ``alt`` and ``hint`` are HTML (escape user data before building this).
    """

    src: str
    size: tuple[int, int]
    name: str
    alt: str
    objects: tuple[CanvasObject, ...]
    active: int | None
    points: tuple[Point, ...] = ()
    box: tuple[float, float, float, float] | None = None
    hint: str = ""
    busy: str = ""
    live: dict[str, Any] | None = None
    max_points: int | None = None
    proposals: tuple[CanvasProposal, ...] = ()
    active_colour: str = ""  # the active object's colour ("": ``SPEC.hex_for(active)``)

    def value(self, render_count: int) -> dict[str, Any]:
        """The component's JSON value; ``render_count`` makes every value new (a re-draw)."""
        height, width = self.size
        dh, dw = display_size(self.size)
        value = {
            "src": self.src, "w": width, "h": height, "dw": dw, "dh": dh,
            "name": self.name, "alt": self.alt,
            "objects": [{"id": o.object_id, "color": o.colour or SPEC.hex_for(o.object_id),
                         "active": o.active, "mask": o.mask} for o in self.objects],
            "active": self.active,
            "points": [[x, y, label] for x, y, label in self.points],
            "box": list(self.box) if self.box is not None else None,
            "color": (self.active_colour or SPEC.hex_for(self.active)
                      if self.active is not None else None),
            "hint": self.hint, "busy": self.busy, "spec": SPEC.as_value(), "n": render_count,
        }
        if self.live is not None:
            value["live"] = self.live
        if self.max_points is not None:
            value["max_points"] = self.max_points
        if self.proposals:
            value["proposals"] = [{"index": p.index, "mask": p.mask, "color": p.colour,
                                   "selected": p.selected, "label": p.label}
                                  for p in self.proposals]
        return value


def empty_value(hint: str, render_count: int) -> dict[str, Any]:
    """The canvas with nothing to show yet (``hint`` is plain text)."""
    return {"hint": html.escape(hint), "n": render_count, "spec": SPEC.as_value()}


def display_src(image: np.ndarray, quality: int = 85) -> str:
    """The image at the canvas's display size as a JPEG data URL (masks line up with it)."""
    return data_url(resize_image(image, display_size(image.shape[:2])), quality=quality)
