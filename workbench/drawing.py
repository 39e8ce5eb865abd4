"""The drawing spec: how a mask looks, defined once for every place that draws one.

The browser canvas (``ui/widgets/canvas.js``, for Segment, Compare and Video), the page's
server-side previews (``workbench.render``), the REST overlay (``server.rest.render``) and the
video overlay export (``workbench.video.exports``) all read ``SPEC``, so an object has the same
colour, fill opacity and outline everywhere. The canvas receives it in its value
(``SPEC.as_value()``); JavaScript holds no palette or opacity of its own.

Indexing: objects are numbered from 1 (the first object a person makes, the first REST object,
the first tracked video object). ``colour_for(n)`` is ``palette[(n - 1) % len(palette)]``; an
API that counts from 0 passes ``index + 1``.

Outline: each mask's edge is drawn opaque in the object's colour, over every fill (so touching
objects stay apart). It is the mask minus its erosion by ``outline_width(...)`` pixels, where
the erosion keeps a pixel only when the pixels ``width`` away left, right, above and below are in
the mask too, and pixels beyond the picture count as outside (the canvas's four shifted copies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class DrawingSpec:
    """How a mask is drawn over an image (RGB colours, opacities in 0..1).

    Attributes:
        palette: distinct, saturated colours that read well over photos.
        fill_opacity: the colour's weight in a mask's fill (the image keeps the rest).
        hover_opacity: the fill of the browser's hover preview (lighter than a kept mask).
        outline_divisor: an outline is ``longer side / outline_divisor`` pixels (at least 1).
        active_extra: extra outline pixels for the object being refined.
    """

    palette: tuple[RGB, ...]
    fill_opacity: float = 0.45
    hover_opacity: float = 0.32
    outline_divisor: int = 640
    active_extra: int = 1

    def __post_init__(self) -> None:
        if not self.palette:
            raise ValueError("a drawing spec needs at least one colour")
        for value in (self.fill_opacity, self.hover_opacity):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"opacities are between 0 and 1, got {value}")
        if self.outline_divisor < 1 or self.active_extra < 0:
            raise ValueError("outline_divisor must be >= 1 and active_extra >= 0")

    def colour_for(self, number: int) -> RGB:
        """The colour of object ``number`` (counted from 1; see the module docstring)."""
        return self.palette[(int(number) - 1) % len(self.palette)]

    def hex_for(self, number: int) -> str:
        """``colour_for(number)`` as ``#rrggbb`` (what HTML and the canvas take)."""
        return colour_hex(self.colour_for(number))

    def outline_width(self, height: int, width: int, active: bool = False) -> int:
        """Outline thickness in pixels for a picture of ``height`` x ``width`` pixels."""
        base = max(1, round(max(height, width) / self.outline_divisor))
        return base + (self.active_extra if active else 0)

    def as_value(self) -> dict[str, Any]:
        """The spec as the browser canvas reads it (JSON-ready)."""
        return {"palette": [colour_hex(c) for c in self.palette],
                "fill_opacity": self.fill_opacity, "hover_opacity": self.hover_opacity,
                "outline_divisor": self.outline_divisor, "active_extra": self.active_extra}


def colour_hex(rgb: RGB) -> str:
    """(30, 144, 255) -> ``"#1e90ff"``."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def hex_colour(text: str) -> RGB:
    """``"#1e90ff"`` -> (30, 144, 255)."""
    digits = text.lstrip("#")
    if len(digits) != 6:
        raise ValueError(f"expected a colour as #rrggbb, got {text!r}")
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


SPEC = DrawingSpec(palette=(
    (255, 59, 107),   # raspberry
    (47, 128, 237),   # blue
    (39, 174, 96),    # green
    (242, 201, 76),   # amber
    (155, 81, 224),   # purple
    (242, 153, 74),   # orange
    (0, 194, 199),    # teal
    (235, 87, 200),   # magenta
))
