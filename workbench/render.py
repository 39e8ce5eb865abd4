"""Drawing masks over images: colours, overlays, downscaled previews and data URLs.

NumPy and Pillow only. Two resolutions are used:

* full resolution (the uploaded image's pixels) for exports and the API;
* a preview at most ``PREVIEW_SIDE`` pixels on its longer side for the page: the browser scales
  it anyway, and a smaller JPEG keeps each click's response small and fast. Masks are sampled
  to preview size by nearest neighbour (``resize_nearest``), which keeps them crisp.
"""

from __future__ import annotations

import base64
import io
from typing import Iterable, NamedTuple

import numpy as np

PREVIEW_SIDE = 1280
THUMB_SIDE = 240
FILL_ALPHA = 0.45
# Distinct, saturated colours that read well over photos; object n gets PALETTE[(n-1) % 8].
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 59, 107),   # raspberry
    (47, 128, 237),   # blue
    (39, 174, 96),    # green
    (242, 201, 76),   # amber
    (155, 81, 224),   # purple
    (242, 153, 74),   # orange
    (0, 194, 199),    # teal
    (235, 87, 200),   # magenta
)


class Layer(NamedTuple):
    """One object to draw: bool H x W mask (same size as the image), its colour, and whether it
    is the object being refined (drawn with a thicker outline)."""

    mask: np.ndarray
    color: tuple[int, int, int]
    active: bool = False


def object_color(object_id: int) -> tuple[int, int, int]:
    return PALETTE[(object_id - 1) % len(PALETTE)]


def color_hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


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
    """Pixels of ``mask`` within ``thickness`` pixels of its edge (4-neighbour erosion)."""
    inner = mask.copy()
    for _ in range(max(1, thickness)):
        eroded = inner.copy()
        eroded[1:, :] &= inner[:-1, :]
        eroded[:-1, :] &= inner[1:, :]
        eroded[:, 1:] &= inner[:, :-1]
        eroded[:, :-1] &= inner[:, 1:]
        eroded[0, :] = eroded[-1, :] = False
        eroded[:, 0] = eroded[:, -1] = False
        inner = eroded
    return mask & ~inner


def compose(image: np.ndarray, layers: Iterable[Layer], alpha: float = FILL_ALPHA,
            outline: int | None = None) -> np.ndarray:
    """Colour fill plus outline of each layer over an RGB uint8 image (returns a new array).

    Blending is integer arithmetic on the masked pixels only (``alpha`` in 1/256 steps), so the
    cost follows the objects' area rather than the image's.

    Args:
        outline: outline thickness in pixels; default scales with the image (about 0.2 % of
            the longer side, at least 1). The active layer's outline is one pixel thicker.
    """
    out = image.copy()
    if outline is None:
        outline = max(1, round(max(image.shape[:2]) / 500))
    weight = int(round(alpha * 256))
    edges = []
    for layer in layers:
        mask = layer.mask
        if not mask.any():
            continue
        color = np.asarray(layer.color, np.uint16)
        pixels = out[mask].astype(np.uint16)
        out[mask] = ((pixels * (256 - weight) + color * weight + 128) >> 8).astype(np.uint8)
        edges.append((boundary(mask, outline + (1 if layer.active else 0)), layer.color))
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

    Built once per uploaded image (per session); every click then composes on the small copy.
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

    def thumbnail(self, mask: np.ndarray, color: tuple[int, int, int],
                  side: int = THUMB_SIDE) -> np.ndarray:
        """A small preview of one candidate mask (for "pick the mask you meant")."""
        size = fit_size(*self.size, side)
        if size not in self._thumb_bases:
            self._thumb_bases[size] = resize_image(self.base, size)
        base = self._thumb_bases[size]
        return compose(base, [Layer(resize_nearest(mask, size), color, True)], alpha=0.55)
