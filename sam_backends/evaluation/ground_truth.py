"""Reading ground-truth masks: any image file where non-zero means object.

Used by the evaluation command (one PNG per image) and by the compare view's optional
ground-truth upload. "Non-zero" is read per image layout:

* palette PNGs (VOC/DAVIS style): the palette index, so index 0 is background whatever its
  colour;
* greyscale (8 or 16 bit) and bilevel: the value;
* RGB: any channel;
* with an alpha channel (LA, RGBA, PA; a cut-out PNG is a valid mask): the alpha channel.

EXIF orientation is applied, as it is to the images, so a mask lines up with what a person sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageError

_ALPHA_MODES = ("LA", "La", "RGBA", "RGBa", "PA")


def mask_from_array(array: np.ndarray) -> np.ndarray:
    """H x W bool from an H x W or H x W x C array (C = 3: any channel; C = 2 or 4: alpha)."""
    data = np.asarray(array)
    if data.ndim == 3 and data.shape[2] in (2, 4):
        data = data[:, :, -1]
    elif data.ndim == 3 and data.shape[2] in (1, 3):
        data = data.any(axis=2)
    if data.ndim != 2 or data.size == 0:
        raise ImageError(
            f"A mask must be an H x W image (or H x W x 3/4), got an array of shape {data.shape}."
        )
    return data != 0


def load_mask(source: Any) -> np.ndarray:
    """Read a mask file (path, bytes or file object), PIL image or array into H x W bool.

    Raises:
        ImageError: not an image, unreadable, or not a 2-D layout.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(source, np.ndarray):
        return mask_from_array(source)
    name = str(source) if isinstance(source, (str, Path)) else "The mask"
    if isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, (bytes, bytearray)):
            import io

            source = io.BytesIO(bytes(source))
        try:
            image = Image.open(source)
            image.load()
        except FileNotFoundError:
            raise ImageError(f"Mask file {name} does not exist.") from None
        except UnidentifiedImageError:
            raise ImageError(f"{name} is not an image; a mask must be a PNG.") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(f"{name} could not be read as a mask ({exc}).") from None
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF: keep the stored orientation, as images.load_image does
        pass
    if image.mode == "P" and "transparency" not in image.info:
        return np.asarray(image) != 0
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return np.asarray(image.convert("RGBA"))[:, :, 3] != 0
    if image.mode in ("1", "L", "I", "I;16", "I;16B", "I;16L", "F"):
        return np.asarray(image) != 0
    return mask_from_array(np.asarray(image.convert("RGB")))
