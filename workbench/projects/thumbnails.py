"""Thumbnails and image sizes read from the file, without decoding more than needed.

* ``probe_size`` reads the header only: the size as a person sees it (EXIF rotation applied,
  as ``sam_backends.images.load_image`` does).
* ``make_thumbnail`` decodes at reduced scale where the format allows it (JPEG draft mode),
  composites transparency over white and returns a JPEG no larger than ``size`` on its long
  side, with the full image's size.

Both accept only the engine's formats (``sam_backends.images.ACCEPTED_FORMATS``) and its pixel
limit, and raise ``UnreadableImage`` with a short reason a list can show.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from sam_backends.images import ACCEPTED_FORMATS, max_pixels_limit

_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_ORIENTATION = 0x0112
MIN_SIZE, MAX_SIZE = 16, 1024


class UnreadableImage(Exception):
    """The file is not an image this app reads; ``str(exc)`` is the reason."""


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path, formats=list(ACCEPTED_FORMATS))
    except FileNotFoundError:
        raise UnreadableImage("the file is missing") from None
    except UnidentifiedImageError:
        raise UnreadableImage("not an image (accepted: JPEG, PNG, WebP, BMP, TIFF)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnreadableImage(f"cannot be read ({exc})") from None
    limit = max_pixels_limit()
    if image.width * image.height > limit:
        image.close()
        raise UnreadableImage(f"too large ({image.width} x {image.height} pixels, the limit is "
                              f"{limit:,})")
    return image


def _seen_size(image) -> tuple[int, int]:
    try:
        orientation = image.getexif().get(_ORIENTATION)
    except Exception:  # a broken EXIF block must not make the image unreadable
        orientation = None
    w, h = image.size
    return (h, w) if orientation in _ROTATED else (w, h)


def probe_size(path: Path) -> tuple[int, int]:
    """(width, height) as seen, from the header."""
    with _open(path) as image:
        return _seen_size(image)


def make_thumbnail(path: Path, size: int) -> tuple[bytes, tuple[int, int]]:
    """JPEG bytes of at most ``size`` x ``size`` pixels, and the image's (width, height)."""
    from PIL import Image, ImageOps

    with _open(path) as image:
        seen = _seen_size(image)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image.draft("RGB", (size, size))
                image.load()
                small = ImageOps.exif_transpose(image)
                small.thumbnail((size, size))
                if small.mode in ("RGBA", "LA", "PA") or "transparency" in small.info:
                    rgba = small.convert("RGBA")
                    small = Image.new("RGB", rgba.size, "white")
                    small.paste(rgba, mask=rgba.getchannel("A"))
                small = small.convert("RGB")
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise UnreadableImage(f"cannot be decoded ({exc}): truncated or corrupt") from None
    out = io.BytesIO()
    small.save(out, "JPEG", quality=82)
    return out.getvalue(), seen
