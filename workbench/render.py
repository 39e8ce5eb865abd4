"""Drawing masks over images (as ``workbench.drawing.SPEC`` says), previews and data URLs.

NumPy and Pillow only. The page's canvas draws masks in the browser (``workbench.canvas``);
what is composed here is what leaves as a picture: the REST overlay and video export at full
resolution, and small previews (candidate thumbnails, Compare's cards, proposal reviews) at
most ``PREVIEW_SIDE`` pixels on their longer side, masks sampled by nearest neighbour
(``resize_nearest``), which keeps them crisp. ``compose`` and ``boundary`` are the server's half
of the drawing spec; ``ui/widgets/canvas.js`` draws the same fill and outline.
"""

from __future__ import annotations

import base64
import io
from typing import Iterable, NamedTuple

import numpy as np

from workbench.drawing import RGB, SPEC

PREVIEW_SIDE = 1280
THUMB_SIDE = 240
THUMB_ALPHA = 0.55  # candidate thumbnails: a stronger fill, as they are small


class Layer(NamedTuple):
    """One object to draw: bool H x W mask (same size as the image), its colour, and whether it
    is the object being refined (drawn with a thicker outline)."""

    mask: np.ndarray
    color: RGB
    active: bool = False


def fit_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(h, w) scaled down (never up) so the longer side is at most ``max_side``."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 image resized to (h, w) with Pillow's antialiasing filter."""
    from PIL import Image

    if image.shape[:2] == tuple(size):
        return image
    pil = Image.fromarray(image).resize((size[1], size[0]), Image.Resampling.BILINEAR,
                                        reducing_gap=2.0)
    return np.asarray(pil)


def resize_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an H x W array to (h, w) by index sampling (pixel centres)."""
    height, width = mask.shape[:2]
    if (height, width) == tuple(size):
        return mask
    rows = np.minimum(((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.intp), height - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.intp), width - 1)
    return np.take(np.take(mask, rows, axis=0), cols, axis=1)


def boundary(mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Pixels of ``mask`` within ``thickness`` pixels of its edge: the mask minus the pixels whose
    neighbours ``thickness`` away left, right, above and below are all in the mask (beyond the
    picture counts as outside). The browser canvas draws the edge the server marks in each mask
    payload with this (``workbench.segment.masks``), so it runs on every click: in place on
    views, no padded copy (about 4x faster at display size than the padded form)."""
    t = max(1, int(thickness))
    mask = np.asarray(mask, dtype=bool)
    height, width = mask.shape
    edge = mask.copy()
    if height > 2 * t and width > 2 * t:  # otherwise no pixel has all four neighbours inside
        inner = np.logical_and(mask[t:height - t, :width - 2 * t], mask[t:height - t, 2 * t:])
        inner &= mask[:height - 2 * t, t:width - t]
        inner &= mask[2 * t:, t:width - t]
        edge[t:height - t, t:width - t] &= ~inner
    return edge


def compose(image: np.ndarray, layers: Iterable[Layer], alpha: float = SPEC.fill_opacity,
            outline: int | None = None) -> np.ndarray:
    """Colour fill plus outline of each layer over an RGB uint8 image (returns a new array), as
    the drawing spec says (``workbench.drawing``): fills in order, then every outline opaque.

    Blending is integer arithmetic on the masked pixels only (``alpha`` in 1/255 steps, as an
    8-bit canvas stores it), so the cost follows the objects' area rather than the image's.

    Args:
        outline: outline thickness in pixels; default ``SPEC.outline_width`` of the image. The
            active layer's outline is ``SPEC.active_extra`` pixels thicker.
    """
    out = image.copy()
    if outline is None:
        outline = SPEC.outline_width(*image.shape[:2])
    weight = int(round(alpha * 255))
    edges = []
    for layer in layers:
        mask = layer.mask
        if not mask.any():
            continue
        color = np.asarray(layer.color, np.uint32)
        pixels = out[mask].astype(np.uint32)
        out[mask] = ((pixels * (255 - weight) + color * weight + 127) // 255).astype(np.uint8)
        extra = SPEC.active_extra if layer.active else 0
        edges.append((boundary(mask, outline + extra), layer.color))
    for edge, color in edges:  # outlines last, so a neighbour's fill never hides them
        out[edge] = color
    return out


def data_url(image: np.ndarray, fmt: str = "JPEG", quality: int = 88) -> str:
    """Encode an RGB uint8 image as a ``data:`` URL (JPEG for previews, PNG when exact)."""
    from PIL import Image

    buffer = io.BytesIO()
    kwargs = {"quality": quality} if fmt.upper() == "JPEG" else {"compress_level": 1}
    Image.fromarray(image).save(buffer, format=fmt, **kwargs)
    mime = "image/jpeg" if fmt.upper() == "JPEG" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


class Preview:
    """A downscaled copy of one image plus the mapping from full-resolution masks onto it.

    Built once per uploaded image (per session); candidate thumbnails compose on the small
    copy.
    """

    def __init__(self, image: np.ndarray, max_side: int = PREVIEW_SIDE) -> None:
        self.full_size = image.shape[:2]
        self.size = fit_size(*self.full_size, max_side)
        self.base = resize_image(image, self.size)
        self._thumb_bases: dict[tuple[int, int], np.ndarray] = {}

    def render(self, layers: Iterable[Layer]) -> np.ndarray:
        small = [Layer(resize_nearest(layer.mask, self.size), layer.color, layer.active)
                 for layer in layers]
        return compose(self.base, small)

    def thumbnail(self, mask: np.ndarray, color: RGB,
                  side: int = THUMB_SIDE) -> np.ndarray:
        """A small preview of one candidate mask (for "pick the mask you meant")."""
        size = fit_size(*self.size, side)
        if size not in self._thumb_bases:
            self._thumb_bases[size] = resize_image(self.base, size)
        base = self._thumb_bases[size]
        return compose(base, [Layer(resize_nearest(mask, size), color, True)],
                       alpha=THUMB_ALPHA)
