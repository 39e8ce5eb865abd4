"""Brush, eraser and polygon edits of one object's mask: requests, rasterisation, new steps.

The canvas draws a stroke itself while the person paints (no round trip per pointer move) and
sends the whole stroke when the button is released; this module turns it into pixels, the one
place that decides which pixels a stroke covers, so the answer is the same on every browser.

Rules, in original-image pixels (x, y) where pixel (i, j) covers [j, j+1) x [i, i+1) and its
centre is (j + 0.5, i + 0.5):

* a stroke of radius r covers a pixel when the distance from its centre to the stroke's
  polyline is at most r (inclusive: a centre exactly r away is covered). A one-point stroke is
  a disc. Computed exactly in float64 per segment, not with an anti-aliased drawing API.
* a polygon (one or more rings, even-odd: a ring inside another is a hole) covers a pixel when
  its centre is inside a ring's area or on a ring's edge. So a ring through pixel centres, as
  ``outline`` gives, covers those pixels too: the outline of a mask fills back to that mask
  (exactly for an axis-aligned rectangle; a simplified curve moves by < ``OUTLINE_EPSILON``).

Edits are kept as ``MaskEdits`` relative to the model's mask (``workbench.objects``), so a
later click, which makes the model predict again, keeps them on top of the new mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from workbench.errors import Refusal
from workbench.objects import MaskEdits, Step

Point = tuple[float, float]

MAX_STROKE_POINTS = 2000  # a long stroke sampled at every pointer move stays below this
MIN_RADIUS, MAX_RADIUS = 0.5, 256.0  # brush radius in original-image pixels
# Pixel tests one stroke may cost (each segment's box plus the radius, summed): about a second
# of numpy on a busy CPU, held in the model's click lane, so bounded. The canvas splits its
# strokes well below it (canvas_edit.js, STROKE_WORK).
MAX_STROKE_WORK = 120_000_000
MAX_RINGS = 64
MAX_VERTICES = 4000  # all rings together
MAX_POLYGON_SPAN = 2_000_000  # pixels the edges walk in all (a real outline: tens of thousands)
OUTLINE_EPSILON = 0.5  # approxPolyDP tolerance (px): IoU >= 0.99 back on a 45 px disc
EDIT_EPSILON = 1.0  # the canvas's outline: fewer handles to drag, IoU >= 0.98 back
MODES = ("add", "erase")
_ON_EDGE = 1e-6  # "on a ring's edge": within this distance of it


class EditError(Refusal):
    """A refused edit: 422 ``bad_edit``, with a message that says what to change."""

    def __init__(self, message: str, title: str = "Edit not understood") -> None:
        super().__init__(422, "bad_edit", message, None, None, title)


@dataclass(frozen=True)
class Stroke:
    """One brush or eraser stroke: a polyline of original-image points, a radius, a mode."""

    points: tuple[Point, ...]
    radius: float
    mode: str  # "add" (brush) or "erase" (eraser)

    @classmethod
    def from_json(cls, body: Mapping[str, Any], shape: tuple[int, int]) -> Stroke:
        """Validate ``{"points": [[x, y], ...], "radius", "mode"}``; points are clipped to the
        image (a stroke may leave it while the button is down).

        Raises:
            EditError: what to change, for a malformed, too long or too wide stroke.
        """
        mode = body.get("mode", "add")
        if mode not in MODES:
            raise EditError(f"A stroke's mode is 'add' (brush) or 'erase' (eraser), not "
                            f"{mode!r}.", "Stroke not understood")
        radius = _number(body.get("radius"), "The brush radius")
        if not MIN_RADIUS <= radius <= MAX_RADIUS:
            raise EditError(f"The brush radius is {MIN_RADIUS:g} to {MAX_RADIUS:g} image "
                            f"pixels; make the brush smaller or larger with [ and ].",
                            "Brush size out of range")
        points = _points(body.get("points"), shape, MAX_STROKE_POINTS, "A stroke")
        work = stroke_work(points, radius)
        if work > MAX_STROKE_WORK:
            raise EditError(f"This stroke is too large to paint at once ({len(points)} points "
                            f"at radius {radius:g}); paint it in shorter strokes or with a "
                            "smaller brush.", "Stroke too large")
        return cls(points, radius, mode)


def polygon_from_json(body: Mapping[str, Any], shape: tuple[int, int]) -> tuple[tuple[Point, ...],
                                                                                 ...]:
    """Validate ``{"rings": [[[x, y], ...], ...]}`` (clipped to the image).

    Raises:
        EditError: no ring, too many rings or vertices, a malformed vertex.
    """
    rings = body.get("rings")
    if not isinstance(rings, list) or not rings:
        raise EditError("A polygon needs 'rings': a list of rings of [x, y] vertices.",
                        "Polygon not understood")
    if len(rings) > MAX_RINGS:
        raise EditError(f"A polygon has at most {MAX_RINGS} rings; remove small parts first.",
                        "Polygon too complex")
    total = sum(len(r) if isinstance(r, list) else 0 for r in rings)
    if total > MAX_VERTICES:
        raise EditError(f"A polygon has at most {MAX_VERTICES} vertices in all; this one has "
                        f"{total}.", "Polygon too complex")
    parsed = tuple(_points(r, shape, MAX_VERTICES, "A ring") for r in rings)
    span = sum(max(abs(x1 - x0), abs(y1 - y0)) for ring in parsed
               for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1]))
    if span > MAX_POLYGON_SPAN:
        raise EditError(f"This polygon's edges are {span:.0f} pixels long in all, more than "
                        f"{MAX_POLYGON_SPAN}; edit the outline the canvas gives.",
                        "Polygon too complex")
    return parsed


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise EditError(f"{what} must be a number.", "Edit not understood")
    return float(value)


def _points(value: Any, shape: tuple[int, int], limit: int, what: str) -> tuple[Point, ...]:
    if not isinstance(value, list) or not value:
        raise EditError(f"{what} needs at least one [x, y] point.", "Edit not understood")
    if len(value) > limit:
        raise EditError(f"{what} has at most {limit} points; this one has {len(value)}. "
                        "Paint it in shorter strokes.", "Stroke too long")
    height, width = shape
    points = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise EditError(f"{what}'s points are [x, y] pairs.", "Edit not understood")
        x, y = (_number(v, "A coordinate") for v in item)
        points.append((min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))))
    return tuple(points)


def stroke_work(points: Sequence[Point], radius: float) -> float:
    """The pixel tests ``stroke_mask`` makes for this stroke (its segments' boxes)."""
    pts = list(points) if len(points) > 1 else [points[0], points[0]]
    side = 2 * radius + 2
    return sum((side + abs(x1 - x0)) * (side + abs(y1 - y0))
               for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]))


# --- rasterisation -----------------------------------------------------------------------------

def stroke_mask(shape: tuple[int, int], points: Sequence[Point], radius: float) -> np.ndarray:
    """H x W bool: pixels whose centre is within ``radius`` of the polyline ``points``.

    Each segment is evaluated only inside its own box (plus the radius), so a stroke costs
    about (length x diameter) operations, not the image's size per segment.
    """
    height, width = shape
    out = np.zeros(shape, bool)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 1:
        pts = np.vstack([pts, pts])
    r2 = float(radius) ** 2
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
        c0 = max(0, math.floor(min(x0, x1) - radius - 0.5))
        c1 = min(width, math.ceil(max(x0, x1) + radius + 0.5))
        r0 = max(0, math.floor(min(y0, y1) - radius - 0.5))
        r1 = min(height, math.ceil(max(y0, y1) + radius + 0.5))
        if c0 >= c1 or r0 >= r1:
            continue
        cx = np.arange(c0, c1, dtype=np.float64)[None, :] + 0.5
        cy = np.arange(r0, r1, dtype=np.float64)[:, None] + 0.5
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        if length2 > 0:
            t = np.clip(((cx - x0) * dx + (cy - y0) * dy) / length2, 0.0, 1.0)
        else:
            t = np.zeros((1, 1))
        d2 = (cx - x0 - t * dx) ** 2 + (cy - y0 - t * dy) ** 2
        out[r0:r1, c0:c1] |= d2 <= r2
    return out


def polygon_mask(shape: tuple[int, int], rings: Sequence[Sequence[Point]]) -> np.ndarray:
    """H x W bool: pixels whose centre is inside the rings (even-odd) or on one of their edges.

    The inside is counted with crossings per row of centres (an edge counts for rows whose
    centre y is in [y_low, y_high), so a vertex is never counted twice); the centres lying on
    the edges themselves are then added, which makes the rule inclusive on every side. Both
    cost one operation per row an edge spans, not its box, so a long diagonal edge is cheap.
    """
    height, width = shape
    crossings = np.zeros((height, width + 1), np.int32)
    for ring in rings:
        p = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
        q = np.roll(p, -1, axis=0)
        for (x0, y0), (x1, y1) in zip(p, q):
            if y0 == y1:
                continue
            low, high = min(y0, y1), max(y0, y1)
            rows = np.arange(max(0, math.ceil(low - 0.5)), min(height, math.ceil(high - 0.5)))
            if rows.size == 0:
                continue
            xc = x0 + (rows + 0.5 - y0) * (x1 - x0) / (y1 - y0)
            cols = np.clip(np.ceil(xc - 0.5), 0, width).astype(np.intp)  # first centre >= xc
            np.add.at(crossings, (rows, cols), 1)
    inside = (np.cumsum(crossings, axis=1)[:, :width] & 1).astype(bool)
    for ring in rings:
        closed = list(ring) + [ring[0]]
        for a, b in zip(closed[:-1], closed[1:]):
            rows, cols = _centres_on(shape, a, b)
            inside[rows, cols] = True
    return inside


def _centres_on(shape: tuple[int, int], a: Point, b: Point) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the pixels whose centre lies on segment a-b (within ``_ON_EDGE``)."""
    height, width = shape
    (x0, y0), (x1, y1) = a, b
    if abs(y1 - y0) < abs(x1 - x0):  # mostly horizontal: walk the columns
        cols, rows = _centres_on((width, height), (y0, x0), (y1, x1))
        return rows, cols
    low, high = min(y0, y1), max(y0, y1)
    rows = np.arange(max(0, math.ceil(low - 0.5 - _ON_EDGE)),
                     min(height, math.floor(high - 0.5 + _ON_EDGE) + 1))
    if y1 == y0:  # a single point
        xs = np.full(rows.shape, float(x0))
    else:
        xs = x0 + (rows + 0.5 - y0) * (x1 - x0) / (y1 - y0)
    cols = np.round(xs - 0.5).astype(np.intp)
    keep = (np.abs(xs - (cols + 0.5)) <= _ON_EDGE) & (cols >= 0) & (cols < width)
    return rows[keep], cols[keep]


def outline(mask: np.ndarray, epsilon: float = OUTLINE_EPSILON) -> list[dict[str, Any]]:
    """The mask's borders as rings of pixel-centre vertices: ``[{"points", "hole"}]``.

    Outer borders and the borders of holes (``hole``: True) both come back; filled with
    ``polygon_mask`` they give the mask again (even-odd). Simplified with ``approxPolyDP``;
    when the vertices would exceed ``MAX_VERTICES`` the tolerance is doubled until they fit.
    """
    import cv2

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_NONE)
    order = sorted(range(len(contours)), key=lambda i: -len(contours[i]))[:MAX_RINGS]
    while True:
        rings = []
        for i in order:
            approx = cv2.approxPolyDP(contours[i], epsilon, True)[:, 0, :]
            rings.append({"points": [[float(x) + 0.5, float(y) + 0.5] for x, y in approx],
                          "hole": bool(hierarchy[0][i][3] >= 0)})
        if sum(len(r["points"]) for r in rings) <= MAX_VERTICES:
            return rings
        epsilon *= 2


# --- new steps ---------------------------------------------------------------------------------

def _model_mask(step: Step) -> np.ndarray | None:
    model = step.model_result
    return None if model is None else model.mask()


def painted(step: Step, stroke: Stroke, shape: tuple[int, int]) -> Step:
    """``step`` with ``stroke`` added to its hand edits (the prompts stay as they are)."""
    covered = stroke_mask(shape, stroke.points, stroke.radius)
    if step.edits is not None:
        add, remove = step.edits.masks()
    else:
        add, remove = np.zeros(shape, bool), np.zeros(shape, bool)
    if stroke.mode == "add":
        add, remove = add | covered, remove & ~covered
    else:
        add, remove = add & ~covered, remove | covered
    return step.with_edits(MaskEdits.of(add, remove))


def reshaped(step: Step, rings: Sequence[Sequence[Point]], shape: tuple[int, int]) -> Step:
    """``step`` whose shown mask becomes the polygon's, kept as edits of the model's mask
    (add = polygon & ~model, remove = model & ~polygon), so it too survives later clicks."""
    polygon = polygon_mask(shape, rings)
    model = _model_mask(step)
    if model is None:
        model = np.zeros(shape, bool)
    return step.with_edits(MaskEdits.of(polygon & ~model, model & ~polygon))
