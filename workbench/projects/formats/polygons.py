"""Mask <-> polygons: the one place where the polygon formats win or lose pixels.

A mask is cut into **parts** (8-connected foreground components, as ``cv2.findContours``
traces them), each an outer **ring** with the rings of its **holes**. A ring is an N x 2 int
array of the (x, y) pixel indices of the boundary pixels, in ``CHAIN_APPROX_SIMPLE`` order
(only the corners of straight runs), so no pixel is lost to simplification: tolerance 0.

Readers disagree on what a vertex means, so each format gets the flavour its own reader needs
(FORMATS.md has the measured figures):

* ``centre_rings`` (LabelMe, YOLO): vertices on the boundary pixels. A filler that paints the
  polygon *and its edges* (``cv2.fillPoly``, PIL's ``polygon(outline=...)`` as labelme's
  ``shape_to_mask``) gives the mask back exactly. YOLO adds 0.5 before normalising (the pixel's
  centre in continuous coordinates), so Ultralytics' ``int32`` truncation lands on the pixel.
* ``edge_rings`` (COCO polygons): each ring pushed 0.5 px away from the foreground (outer rings
  grow, holes shrink), so the polygon runs along pixel *edges*; ``pycocotools`` (which keeps the
  pixels whose centre is inside) gives the mask back exactly.

Holes are kept by a **keyhole**: the hole's ring is joined to the ring around it by a
zero-width bridge (out and back along one segment) between their nearest vertices. The bridge
runs through foreground, so no pixel is gained or lost. Several parts are joined into one
polygon the same way (``join_rings``: bridges along a minimum spanning tree of nearest vertex
pairs); a bridge between two parts crosses background, and a filler that paints edges paints
it: about one pixel per pixel of bridge length. ``SPECK_AREA`` bounds what such a bridge is
worth (YOLO only).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SPECK_AREA = 4  # YOLO: a part with fewer pixels is dropped (its bridge would cost more)
EDGE_OFFSET = 0.5  # COCO polygons: pixel centres -> pixel edges
MAX_PARTS = 256  # parts written per object (the largest); more is noise, not an object


@dataclass(frozen=True)
class Part:
    """One 8-connected component: its outer ring, its holes' rings and its pixel count."""

    outer: np.ndarray
    holes: tuple[np.ndarray, ...]
    pixels: int


def mask_parts(mask: np.ndarray) -> list[Part]:
    """The parts of a bool H x W mask, largest first (at most ``MAX_PARTS``)."""
    mask = np.ascontiguousarray(np.asarray(mask, dtype=np.uint8))
    if not mask.any():
        return []
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    hierarchy = hierarchy.reshape(-1, 4)
    holes: dict[int, list[np.ndarray]] = {}
    outers: list[int] = []
    for index, (_next, _prev, _child, parent) in enumerate(hierarchy):
        if parent < 0:
            outers.append(index)
        else:
            holes.setdefault(int(parent), []).append(contours[index].reshape(-1, 2))
    parts = []
    for index in outers:
        ring = contours[index].reshape(-1, 2)
        parts.append(Part(ring, tuple(holes.get(index, ())), _part_pixels(mask, ring)))
    parts.sort(key=lambda part: -part.pixels)
    return parts[:MAX_PARTS]


def _part_pixels(mask: np.ndarray, ring: np.ndarray) -> int:
    """Foreground pixels inside ``ring`` (holes excluded), counted in the ring's box."""
    x0, y0 = ring.min(axis=0)
    x1, y1 = ring.max(axis=0) + 1
    patch = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(patch, [(ring - (x0, y0)).astype(np.int32)], 1)
    return int(np.count_nonzero(patch & mask[y0:y1, x0:x1]))


# --- the flavours -----------------------------------------------------------------------------


def centre_rings(part: Part) -> list[np.ndarray]:
    """The part's rings as float N x 2 pixel-centre vertices, outer first."""
    return [part.outer.astype(np.float64)] + [h.astype(np.float64) for h in part.holes]


def edge_rings(part: Part) -> list[np.ndarray]:
    """The part's rings along pixel edges (continuous coordinates, pixel i = [i, i + 1)).

    Vertices move from the pixel centre (i + 0.5) by ``EDGE_OFFSET`` away from the foreground,
    with mitred corners and square caps where a ring turns back on itself (1-pixel lines)."""
    outer = _offset_ring(part.outer.astype(np.float64) + 0.5, EDGE_OFFSET)
    holes = [_offset_ring(h.astype(np.float64) + 0.5, -EDGE_OFFSET) for h in part.holes]
    return [outer] + holes


def _offset_ring(ring: np.ndarray, distance: float) -> np.ndarray:
    """``ring`` moved ``distance`` outward (negative: inward) from the area it encloses."""
    if len(ring) == 1:
        x, y = ring[0]
        d = abs(distance)
        return np.array([[x - d, y - d], [x + d, y - d], [x + d, y + d], [x - d, y + d]])
    area = _signed_area(ring)
    # For a ring with area < 0 (cv2's outer rings in image coordinates) the outward normal of
    # an edge (dx, dy) is (dy, -dx) flipped; a zero-area ring (a 1-pixel line) caps both ends.
    sign = -1.0 if area < 0 else 1.0
    sign *= 1.0 if distance >= 0 else -1.0
    d = abs(distance)
    previous = ring - np.roll(ring, 1, axis=0)
    following = np.roll(ring, -1, axis=0) - ring
    out: list[np.ndarray] = []
    for point, e1, e2 in zip(ring, previous, following):
        n1, n2 = _normal(e1, sign), _normal(e2, sign)
        if not n1.any():
            n1 = n2
        if not n2.any():
            n2 = n1
        cos = 1.0 + float(n1 @ n2)
        if cos < 1e-6:  # the ring turns back: a square cap of two vertices
            along = e1 / np.hypot(*e1)
            out += [point + d * n1 + d * along, point + d * n2 + d * along]
        else:
            out.append(point + d * (n1 + n2) / cos)
    return np.array(out)


def _normal(edge: np.ndarray, sign: float) -> np.ndarray:
    length = float(np.hypot(*edge))
    if length == 0:
        return np.zeros(2)
    return sign * np.array([edge[1], -edge[0]]) / length


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


# --- joining rings into one polygon -----------------------------------------------------------


def join_rings(rings: list[np.ndarray]) -> np.ndarray:
    """One closed polygon visiting every ring, joined by zero-width bridges.

    The bridges follow a minimum spanning tree over the rings (edge weight: the distance
    between their nearest vertices), so their total length is the least a tree can have; each
    bridge is walked out and back, which leaves the fill parity (even-odd and non-zero alike)
    of every other point unchanged. A single ring comes back as it is."""
    if len(rings) == 1:
        return rings[0]
    parent, links = _spanning_tree(rings)
    attached: dict[int, dict[int, list[tuple[int, int]]]] = {}
    for child, (here, there) in links.items():
        attached.setdefault(parent[child], {}).setdefault(here, []).append((child, there))
    return np.array(_walk(rings, attached))


def _walk(rings: list[np.ndarray],
          attached: dict[int, dict[int, list[tuple[int, int]]]]) -> list[np.ndarray]:
    """The vertices of ring 0 in order; at a vertex where child rings hang, each child is
    walked from its bridge vertex round to it again, then the vertex is repeated (the way
    back). Iterative (a frame per ring being walked), so many rings cannot overflow a stack."""
    path: list[np.ndarray] = []
    stack = [[0, 0, 0, -1]]  # ring, start vertex, step, next child at this vertex (-1: new)
    while stack:
        frame = stack[-1]
        ring_index, start, step, child_pos = frame
        count = len(rings[ring_index])
        end = count - 1 if len(stack) == 1 else count  # a child closes back to its start
        if step > end:
            stack.pop()
            if stack:
                up_index, up_start, up_step, _ = stack[-1]
                path.append(rings[up_index][(up_start + up_step) % len(rings[up_index])])
            continue
        vertex = (start + step) % count
        if child_pos < 0:
            path.append(rings[ring_index][vertex])
            frame[3] = child_pos = 0
        kids = attached.get(ring_index, {}).get(vertex, []) if step < count else []
        if child_pos < len(kids):
            frame[3] = child_pos + 1
            child, there = kids[child_pos]
            stack.append([child, there, 0, -1])
            continue
        frame[2], frame[3] = step + 1, -1
    return path


def _spanning_tree(rings: list[np.ndarray]) -> tuple[dict[int, int], dict[int, tuple[int, int]]]:
    """Prim's tree from ring 0: ``parent[child]`` and ``links[child] = (vertex in parent,
    vertex in child)`` of the nearest pair."""
    count = len(rings)
    best = {i: (np.inf, -1, 0, 0) for i in range(1, count)}
    parent: dict[int, int] = {}
    links: dict[int, tuple[int, int]] = {}
    newest = 0
    while best:
        for other, current in best.items():
            distance, here, there = _nearest_pair(rings[newest], rings[other])
            if distance < current[0]:
                best[other] = (distance, newest, here, there)
        newest = min(best, key=lambda i: best[i][0])
        _distance, owner, here, there = best.pop(newest)
        parent[newest] = owner
        links[newest] = (here, there)
    return parent, links


def _nearest_pair(a: np.ndarray, b: np.ndarray) -> tuple[float, int, int]:
    """Squared distance and indices of the nearest vertices of rings ``a`` and ``b``."""
    best = (np.inf, 0, 0)
    for start in range(0, len(a), 512):  # bounded memory: 512 x len(b) at a time
        block = a[start:start + 512]
        d2 = ((block[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1)
        i, j = np.unravel_index(int(d2.argmin()), d2.shape)
        if d2[i, j] < best[0]:
            best = (float(d2[i, j]), start + int(i), int(j))
    return best


# --- rasterising (the readers' side) ----------------------------------------------------------


def fill_pixel_polygons(polygons: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Bool H x W: ``polygons`` (int pixel vertices) filled with ``cv2.fillPoly``, edges
    included, even-odd inside one polygon, union across polygons."""
    mask = np.zeros((height, width), np.uint8)
    for polygon in polygons:
        cv2.fillPoly(mask, [np.asarray(polygon, dtype=np.int32).reshape(-1, 1, 2)], 1)
    return mask.astype(bool)
