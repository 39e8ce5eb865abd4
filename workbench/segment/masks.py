"""Masks as the browser draws them: cropped, display-resolution, 1-bit PNGs.

The page composites masks itself on a ``<canvas>`` (``ui/widgets/canvas.js``), so a click's
answer is one small mask, not a re-rendered overlay. A mask travels as::

    {"png": "data:image/png;base64,...",   # palette PNG: index 0 transparent, 1 white
     "x": 12, "y": 40, "w": 300, "h": 200}  # its place in display pixels

Display pixels are those of ``display_size`` (longer side at most ``DISPLAY_SIDE``); the browser
scales them with the image. It colours the white pixels with the object's colour from the
value's drawing spec (``source-in``; ``workbench.drawing``), so a payload carries no colour.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections import OrderedDict
from typing import Any

import numpy as np

from sam_backends.masks import mask_box
from workbench.objects import MaskResult
from workbench.render import fit_size

DISPLAY_SIDE = 1280  # the same as render.PREVIEW_SIDE: masks line up with the shown image
CACHE_ENTRIES = 512  # encoded masks kept per session: every object of a "Keep all" (200+)
# and their undo steps; fewer made every re-render of 200 objects encode them all again


def display_size(shape: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of the displayed image for an image of ``shape`` (H, W)."""
    return fit_size(shape[0], shape[1], DISPLAY_SIDE)


def _source_index(display: int, full: int) -> np.ndarray:
    """For each display pixel along one axis, the full-resolution pixel it samples (centres)."""
    return np.minimum(((np.arange(display) + 0.5) * full / display).astype(np.intp), full - 1)


def png_1bit(bits: np.ndarray) -> bytes:
    """A 1-bit palette PNG of a bool H x W array: 0 transparent, 1 opaque white.

    Written directly (one IDAT of unfiltered rows, zlib level 1) because Pillow's encoder takes
    several ms for what is here a ~0.3 ms job.
    """
    height, width = bits.shape
    rows = np.packbits(bits, axis=1)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 1, 3, 0, 0, 0)  # 1 bit, palette
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"PLTE", bytes((0, 0, 0, 255, 255, 255))) + chunk(b"tRNS", b"\x00")
            + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def encode_mask(mask: np.ndarray, bbox: tuple[int, int, int, int] | None = None
                ) -> dict[str, Any] | None:
    """The browser payload of a bool H x W mask (full resolution); None when it is empty.

    Only the mask's box (``bbox``, XYXY with an exclusive max in full pixels, computed when not
    given: ``sam_backends.masks``) is
    sampled to display size, by nearest neighbour, and written as a 1-bit PNG: a few KB and
    about a millisecond for a typical object.
    """
    mask = np.asarray(mask, dtype=bool)
    if bbox is None:
        bbox = mask_box(mask) or (0, 0, 0, 0)
    bx, by, bw, bh = bbox[0], bbox[1], bbox[2] - bbox[0], bbox[3] - bbox[1]
    if bw <= 0 or bh <= 0:
        return None
    height, width = mask.shape
    dh, dw = display_size(mask.shape)
    src_rows, src_cols = _source_index(dh, height), _source_index(dw, width)
    keep_rows = np.flatnonzero((src_rows >= by) & (src_rows < by + bh))
    keep_cols = np.flatnonzero((src_cols >= bx) & (src_cols < bx + bw))
    if keep_rows.size == 0 or keep_cols.size == 0:  # a sliver thinner than a display pixel
        keep_rows = np.array([min(dh - 1, int(by * dh / height))])
        keep_cols = np.array([min(dw - 1, int(bx * dw / width))])
        crop = np.ones((1, 1), bool)
    else:
        crop = mask[src_rows[keep_rows]][:, src_cols[keep_cols]]
    text = base64.b64encode(png_1bit(crop)).decode("ascii")
    return {"png": f"data:image/png;base64,{text}", "x": int(keep_cols[0]),
            "y": int(keep_rows[0]), "w": int(crop.shape[1]), "h": int(crop.shape[0])}


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
