"""Masks as the browser draws them: cropped, display-resolution, palette PNGs with the outlines in.

The page composites masks itself on a ``<canvas>`` (``ui/widgets/canvas.js``), so a click's
answer is one small mask, not a re-rendered overlay. A mask travels as::

    {"png": "data:image/png;base64,...",   # 4-bit palette PNG, indices below
     "x": 12, "y": 40, "w": 300, "h": 200}  # its place in display pixels

Each pixel's palette index says what it is: 0 outside, ``INSIDE`` inside, ``EDGE`` on the
outline every mask has (``SPEC.outline_width`` of the display size, ``render.boundary``),
``EDGE_ACTIVE`` on the active object's thicker outline only, ``EDGE_BOTH`` on both. The
palette written here is 0 transparent and every other index opaque white, so any PNG reader
sees the mask; the browser swaps in palettes of its own (the object's colour on the indices
it wants: all for the fill, the two of one outline for the edge) and lets its image decoder
do the rest, off the page's main thread.

Why the outline is drawn here: the page used to find it with canvas compositing (the mask
ANDed with four shifted copies of itself, about ten full-layer passes on a software canvas,
most of a click's 65-70 ms "decode and compositing" in ``bench_browser.py``); numpy does it in
a millisecond or two on the display crop, once per mask (payloads are cached per result), and
one payload serves the object whether or not it is the active one.

Display pixels are those of ``display_size`` (longer side at most ``DISPLAY_SIDE``); the browser
scales them with the image. A payload carries no colour, so an object's colour can change
(its class, the object list's colouring) without a new payload.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections import OrderedDict
from typing import Any

import numpy as np

from sam_backends.masks import mask_box
from workbench.drawing import SPEC
from workbench.objects import MaskResult
from workbench.render import boundary, fit_size

DISPLAY_SIDE = 1280  # the same as render.PREVIEW_SIDE: masks line up with the shown image
HOVER_SIDE = 640  # a hover preview's pixels: a quarter of the display's, scaled by the browser
CACHE_ENTRIES = 512  # encoded masks kept per session: every object of a "Keep all" (200+)
# and their undo steps; fewer made every re-render of 200 objects encode them all again
INSIDE, EDGE, EDGE_ACTIVE, EDGE_BOTH = 1, 2, 3, 4  # palette indices (module docstring)


def display_size(shape: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of the displayed image for an image of ``shape`` (H, W)."""
    return fit_size(shape[0], shape[1], DISPLAY_SIDE)


def _source_index(display: int, full: int) -> np.ndarray:
    """For each display pixel along one axis, the full-resolution pixel it samples (centres)."""
    return np.minimum(((np.arange(display) + 0.5) * full / display).astype(np.intp), full - 1)


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png_indexed(indices: np.ndarray) -> bytes:
    """A 4-bit palette PNG of a uint8 H x W array of indices 0-4: 0 transparent black, 1-4
    opaque white (the browser swaps the palette; any other reader sees the mask). Its PLTE and
    tRNS chunks hold all five entries, so the browser rewrites them in place.

    Written directly (one IDAT of unfiltered rows, zlib level 1) because Pillow's encoder takes
    several ms for what is here a ~1 ms job.
    """
    height, width = indices.shape
    if width % 2:  # two pixels a byte: pad the odd column (PNG ignores it)
        indices = np.concatenate([indices, np.zeros((height, 1), np.uint8)], axis=1)
    rows = (indices[:, 0::2] << 4) | indices[:, 1::2]
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 4, 3, 0, 0, 0)  # 4 bits, palette
    palette = bytes((0, 0, 0)) + bytes((255, 255, 255)) * EDGE_BOTH
    alpha = bytes((0,) + (255,) * EDGE_BOTH)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"PLTE", palette)
            + _chunk(b"tRNS", alpha) + _chunk(b"IDAT", zlib.compress(raw, 1))
            + _chunk(b"IEND", b""))


def payload_indices(crop: np.ndarray, display: tuple[int, int], scale: float = 1.0
                    ) -> np.ndarray:
    """The palette indices (module docstring) of a bool crop of a mask whose display picture
    is ``display`` (h, w): the outlines are ``render.boundary`` of the crop (beyond it the mask
    is empty) at the spec's two widths for that picture, divided by ``scale`` when the crop's
    pixels are ``scale`` display pixels each (a hover preview), so they look the same once
    the browser scales it."""
    plain = max(1, round(SPEC.outline_width(*display) / scale))
    active = max(1, round(SPEC.outline_width(*display, active=True) / scale))
    edge = boundary(crop, plain)
    edge_active = edge if active == plain else boundary(crop, active)
    indices = crop.astype(np.uint8)  # INSIDE; + 1 on the plain edge, + 2 on the active one
    indices += edge.view(np.uint8)
    indices += np.left_shift(edge_active.view(np.uint8), 1)
    return indices


def encode_mask(mask: np.ndarray, bbox: tuple[int, int, int, int] | None = None,
                side: int = DISPLAY_SIDE) -> dict[str, Any] | None:
    """The browser payload of a bool H x W mask (full resolution); None when it is empty.

    Only the mask's box (``bbox``, XYXY with an exclusive max in full pixels, computed when not
    given: ``sam_backends.masks``) is
    sampled to display size, by nearest neighbour, and written as a palette PNG with its two
    outlines marked (module docstring): a few KB and a few milliseconds for a typical object.

    ``side`` below ``DISPLAY_SIDE`` (``HOVER_SIDE``) samples a coarser grid for a preview: the
    PNG is smaller than its place, and ``x``, ``y``, ``w``, ``h`` still give that place in
    display pixels (fractions allowed), where the browser scales it.
    """
    mask = np.asarray(mask, dtype=bool)
    if bbox is None:
        bbox = mask_box(mask) or (0, 0, 0, 0)
    bx, by, bw, bh = bbox[0], bbox[1], bbox[2] - bbox[0], bbox[3] - bbox[1]
    if bw <= 0 or bh <= 0:
        return None
    height, width = mask.shape
    display = display_size(mask.shape)
    dh, dw = fit_size(height, width, min(side, DISPLAY_SIDE))  # the grid sampled
    src_rows, src_cols = _source_index(dh, height), _source_index(dw, width)
    keep_rows = np.flatnonzero((src_rows >= by) & (src_rows < by + bh))
    keep_cols = np.flatnonzero((src_cols >= bx) & (src_cols < bx + bw))
    if keep_rows.size == 0 or keep_cols.size == 0:  # a sliver thinner than a display pixel
        keep_rows = np.array([min(dh - 1, int(by * dh / height))])
        keep_cols = np.array([min(dw - 1, int(bx * dw / width))])
        crop = np.ones((1, 1), bool)
    else:
        # np.take keeps the crop in C order; ``[rows][:, cols]`` gives a column-major array
        # (NumPy's advanced indexing on the second axis), on which the outline passes took
        # 6.2 ms instead of 1.0 ms at 1280 x 853 (2-core EPYC).
        crop = np.take(mask[src_rows[keep_rows]], src_cols[keep_cols], axis=1)
    sx, sy = display[1] / dw, display[0] / dh  # display pixels per sampled pixel
    indices = payload_indices(crop, display, max(sx, sy))
    text = base64.b64encode(png_indexed(indices)).decode("ascii")
    place = (int(keep_cols[0]), int(keep_rows[0]), int(crop.shape[1]), int(crop.shape[0]))
    if (dh, dw) != display:
        place = tuple(round(v * f, 3) for v, f in zip(place, (sx, sy, sx, sy)))
    return {"png": f"data:image/png;base64,{text}", "x": place[0], "y": place[1],
            "w": place[2], "h": place[3]}


def mask_payload(session: Any, result: MaskResult | None) -> dict[str, Any] | None:
    """``encode_mask(result.mask())``, cached on the session per result (results are
    immutable, so undo/redo and full re-renders re-send what was already encoded)."""
    if result is None:
        return None
    cache = getattr(session, "display_cache", None)
    if not isinstance(cache, OrderedDict):
        cache = OrderedDict()
        session.display_cache = cache
    hit = cache.get(id(result))
    if hit is not None and hit[0] is result:
        cache.move_to_end(id(result))
        return hit[1]
    payload = encode_mask(result.mask(), result.bbox)
    cache[id(result)] = (result, payload)  # holding the result keeps its id unique
    while len(cache) > CACHE_ENTRIES:
        cache.popitem(last=False)
    return payload
