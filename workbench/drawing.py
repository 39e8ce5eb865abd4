"""The drawing spec: how a mask looks, defined once for every place that draws one.

The browser canvas (``ui/widgets/canvas.js``, for Segment, Compare and Video), the page's
server-side previews (``workbench.render``), the REST overlay (``server.rest.render``) and the
video overlay export (``workbench.video.exports``) all read ``SPEC``, so an object has the same
colour, fill opacity and outline everywhere. The canvas receives it in its value
(``SPEC.as_value()``); JavaScript holds no palette or opacity of its own.

Indexing: objects are numbered from 1 (the first object a person makes, the first REST object,
the first tracked video object); an API that counts from 0 passes ``index + 1``.

Colours that stay apart at hundreds of objects (an OWLv2 "Keep all" makes 100 or 200):

* without a class, ``colour_for(n)`` is the hand-picked ``palette`` for the first objects, then
  a sequence chosen by farthest-point sampling over saturated, mid-light colours (each next
  colour is the candidate farthest in RGB from every earlier one), so the first
  ``SEQUENCE_LENGTH`` numbers never repeat and any prefix is as spread as the grid allows;
* with a class (``colour_for(n, family=class colour)``), the class colour is the family: the
  object's colour is drawn the same way from a window of hues around it (lighter, darker, more
  and less saturated), so the class reads at a glance and its instances stay apart. The first
  instance-number of a family gets the class colour itself.

An object's number decides its colour (not its rank in the list), so deleting one never
repaints the others.

Outline: each mask's edge is drawn opaque in the object's colour, over every fill (so touching
objects stay apart). It is the mask minus its erosion by ``outline_width(...)`` pixels, where
the erosion keeps a pixel only when the pixels ``width`` away left, right, above and below are in
the mask too, and pixels beyond the picture count as outside (the canvas's four shifted copies).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

RGB = tuple[int, int, int]

SEQUENCE_LENGTH = 256  # distinct colours per sequence (the object-number one and each family)
FAMILY_HUE_SPAN = 0.07  # a class's instances keep within +-25 degrees of its hue


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

    def colour_for(self, number: int, family: RGB | None = None) -> RGB:
        """The colour of object ``number`` (counted from 1), in the hue family of its class's
        colour when it has one (see the module docstring)."""
        sequence = (_number_sequence(self.palette) if family is None
                    else _family_sequence(tuple(int(v) for v in family)))
        return sequence[(int(number) - 1) % len(sequence)]

    def hex_for(self, number: int, family: RGB | None = None) -> str:
        """``colour_for(number, family)`` as ``#rrggbb`` (what HTML and the canvas take)."""
        return colour_hex(self.colour_for(number, family))

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


def _rgb(h: float, lightness: float, s: float) -> RGB:
    r, g, b = colorsys.hls_to_rgb(h % 1.0, lightness, s)
    return round(255 * r), round(255 * g), round(255 * b)


def _farthest_first(start: tuple[RGB, ...], candidates: list[RGB]) -> tuple[RGB, ...]:
    """``start``, then candidates in farthest-point order until SEQUENCE_LENGTH colours (or the
    candidates run out): each next one is the farthest (RGB distance) from all chosen so far."""
    chosen = list(dict.fromkeys(start))
    pool = np.array([c for c in dict.fromkeys(candidates) if c not in chosen], dtype=float)
    nearest = np.full(len(pool), np.inf)
    for colour in chosen:
        nearest = np.minimum(nearest, np.linalg.norm(pool - colour, axis=1))
    while len(chosen) < SEQUENCE_LENGTH and np.isfinite(nearest).any():
        i = int(np.argmax(nearest))
        chosen.append(tuple(int(v) for v in pool[i]))
        nearest = np.minimum(nearest, np.linalg.norm(pool - pool[i], axis=1))
        nearest[i] = -np.inf
    return tuple(chosen)


@lru_cache(maxsize=4)
def _number_sequence(palette: tuple[RGB, ...]) -> tuple[RGB, ...]:
    """The object-number colours: the palette, then saturated mid-light hues (36 x 3 x 3)."""
    candidates = [_rgb(h / 36, lightness, s) for h in range(36)
                  for lightness in (0.4, 0.52, 0.64) for s in (0.65, 0.85, 1.0)]
    return _farthest_first(palette, candidates)


@lru_cache(maxsize=256)
def _family_sequence(base: RGB) -> tuple[RGB, ...]:
    """A class's instance colours: the class colour, then its hue window (9 x 6 x 5 candidates)."""
    hue, _, _ = colorsys.rgb_to_hls(*(v / 255 for v in base))
    candidates = [_rgb(hue + FAMILY_HUE_SPAN * (k - 4) / 4, lightness, s) for k in range(9)
                  for lightness in (0.3, 0.39, 0.48, 0.57, 0.66, 0.75)
                  for s in (0.45, 0.6, 0.75, 0.9, 1.0)]
    return _farthest_first((base,), candidates)


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
