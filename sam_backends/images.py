"""Turning whatever the user gives into the one image format the engine uses.

That format is an RGB ``uint8`` H x W x 3 C-contiguous array, oriented as a person sees the image
(EXIF orientation applied), so prompt coordinates always refer to what is on screen.

Conversions, and why:
    * grayscale (1, L, I;16, I, F) -> the value repeated in R, G and B. 16-bit values are scaled
      (65535 -> 255, rounded), never clipped; 32-bit integer (I) images use 8-bit or 16-bit range
      when their values fit, else a min-max stretch; float (F) images in [0, 1] are scaled by
      255, other float ranges are min-max stretched.
    * alpha (RGBA, LA, PA, P with a transparent colour) -> composited over white. Transparent
      pixels often carry arbitrary colour values (black, or leftovers) that a person never sees;
      over white they read as plain background, the way most viewers show them.
    * CMYK -> through the embedded ICC profile when there is one, else Pillow's conversion
      (Adobe-inverted JPEGs are handled by Pillow's decoder).
    * 16-bit RGB PNGs are reduced to 8 bits by Pillow's decoder (high byte).
    * animated images: the first frame.

Large images are refused from the header, before the pixel data is decoded: the limit is the
argument, else env ``SAM_MAX_PIXELS``, else ``DEFAULT_MAX_PIXELS``.

Accepted file formats (``ACCEPTED_FORMATS``), whatever the file is called: JPEG (and MPO, a
JPEG with extra pictures: the first one is used), PNG (APNG: the first frame), WebP, BMP, TIFF
and GIF (the first frame). Pillow can decode many more (FITS, PSD, McIdas, DDS, ICNS, EPS
through Ghostscript...), but those parsers see far less use and scrutiny, and nobody segments
a star map or a layered Photoshop file here; a file in another format is refused with its
format's name when Pillow's cheap signature checks recognise it.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .errors import ImageError, ImageTooLargeError

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")  # Pillow plugin names
ACCEPTED_TEXT = "accepted formats: JPEG, PNG, WebP, BMP, TIFF, GIF"
_OPENED_FORMATS = frozenset(ACCEPTED_FORMATS) | {"MPO"}  # JPEG's plugin opens MPO files too
MAX_PIXELS_ENV = "SAM_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 50_000_000  # 50 megapixels: ~150 MB as RGB, more than any phone camera

# ``warnings.catch_warnings`` swaps process-wide state; this lock keeps our own threads from
# interleaving inside it (which could leave the warning filters permanently changed).
_WARNINGS_LOCK = threading.Lock()


def max_pixels_limit(max_pixels: int | None = None) -> int:
    """The pixel limit in force: the argument, else env ``SAM_MAX_PIXELS``, else the default."""
    if max_pixels is not None:
        value: Any = max_pixels
    else:
        value = os.environ.get(MAX_PIXELS_ENV, "").strip() or DEFAULT_MAX_PIXELS
    try:
        limit = int(float(value))
    except (TypeError, ValueError):
        raise ImageError(
            f"The pixel limit must be a whole number of pixels, got {value!r} "
            f"(argument max_pixels or env {MAX_PIXELS_ENV})."
        ) from None
    if limit <= 0:
        raise ImageError(f"The pixel limit must be positive, got {limit}.")
    return limit


def load_image(source: Any, max_pixels: int | None = None) -> np.ndarray:
    """Decode ``source`` into an RGB uint8 H x W x 3 array, as a person sees it.

    Args:
        source: a path (str or Path), encoded bytes, a binary file object, a PIL image or a
            numpy array (see ``to_rgb_array`` for the accepted array layouts).
        max_pixels: refuse images with more pixels than this (see ``max_pixels_limit``).

    Raises:
        ImageTooLargeError: more pixels than the limit (checked from the header when decoding).
        ImageError: missing file, not an image, truncated or corrupt data, unsupported layout.
    """
    from PIL import Image

    limit = max_pixels_limit(max_pixels)
    if isinstance(source, np.ndarray):
        _check_pixels(source.shape[1] if source.ndim > 1 else 0, source.shape[0], limit)
        return to_rgb_array(source)
    if isinstance(source, Image.Image):
        _check_pixels(source.width, source.height, limit)
        return to_rgb_array(source)
    name, stream = _open_stream(source)
    try:
        image = _open_checked(stream, name, limit)
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(f"{name} could not be decoded ({exc}); it is truncated or corrupt.")
        return to_rgb_array(image)
    finally:
        if isinstance(source, (str, Path)):
            stream.close()


def to_rgb_array(image: Any) -> np.ndarray:
    """Convert a PIL image or a numpy array to RGB uint8 H x W x 3 (C-contiguous).

    Arrays: H x W or H x W x {1, 3, 4}, in channel order RGB(A); dtype uint8, uint16 (scaled,
    65535 -> 255), bool (True -> 255) or float (finite; [0, 1] scaled by 255, [0, 255] rounded).
    A 4th channel is alpha and is composited over white. PIL images: EXIF orientation applied,
    then the conversions in the module docstring.

    Raises:
        ImageError: an unsupported type, shape, dtype or value range.
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        return _pil_to_rgb(image)
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image)
    raise ImageError(
        f"Expected an image (PIL image or H x W x 3 uint8 array), got {type(image).__name__}."
    )


def image_digest(array: np.ndarray) -> str:
    """Content hash of an image array: pixels, shape and dtype (BLAKE2b, 32 hex digits).

    Two arrays get the same digest exactly when they hold the same pixels in the same layout,
    whatever their strides; used as the embedding cache's image key.
    """
    if not isinstance(array, np.ndarray):
        raise ImageError(f"image_digest needs a numpy array, got {type(array).__name__}.")
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{array.dtype.str}|{array.shape}|".encode())
    digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return digest.hexdigest()


# --- opening --------------------------------------------------------------------------------


def _open_stream(source: Any) -> tuple[str, BinaryIO]:
    """A (name for messages, binary stream) pair for a path, bytes or file object."""
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        try:
            return str(path), open(path, "rb")
        except FileNotFoundError:
            raise ImageError(f"Image file {path} does not exist.") from None
        except IsADirectoryError:
            raise ImageError(f"{path} is a folder, not an image file.") from None
        except OSError as exc:
            raise ImageError(f"Image file {path} cannot be read: {exc.strerror or exc}.") from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "The image data", io.BytesIO(bytes(source))
    if hasattr(source, "read"):
        return str(getattr(source, "name", "The image file")), source
    raise ImageError(
        f"Cannot read an image from a {type(source).__name__}; give a path, bytes, a file "
        "object, a PIL image or a numpy array."
    )


def _open_checked(stream: BinaryIO, name: str, limit: int) -> Any:
    """``Image.open`` (header only) with the pixel limit checked before any decoding.

    Pillow's own decompression-bomb warning (above ``Image.MAX_IMAGE_PIXELS``) becomes an
    ``ImageTooLargeError`` unless our limit is deliberately higher; its hard error (twice that)
    always does.
    """
    from PIL import Image, UnidentifiedImageError

    with _WARNINGS_LOCK, warnings.catch_warnings():
        bomb_action = "ignore" if limit > (Image.MAX_IMAGE_PIXELS or 0) else "error"
        warnings.simplefilter(bomb_action, Image.DecompressionBombWarning)
        try:
            image = Image.open(stream, formats=_plugins())
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise ImageTooLargeError(
                f"{name} is too large to open safely ({exc}). Resize it below "
                f"{min(limit, Image.MAX_IMAGE_PIXELS or limit):,} pixels."
            ) from None
        except UnidentifiedImageError:
            raise ImageError(_refusal(stream, name)) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(f"{name} could not be read as an image ({exc}).") from None
    if image.format not in _OPENED_FORMATS:  # defensive: a plugin returned another format
        raise ImageError(f"{name} is a {image.format} image, which is not accepted here; "
                         f"{ACCEPTED_TEXT}.")
    _check_pixels(image.width, image.height, limit, name)
    return image


def _plugins() -> list[str]:
    """The accepted formats that this Pillow build can open (WebP support is optional)."""
    from PIL import Image

    Image.init()
    return [f for f in ACCEPTED_FORMATS if f in Image.OPEN]


def _refusal(stream: BinaryIO, name: str) -> str:
    """Why ``stream`` was not opened: another format (named, when a signature matches) or none.

    Only Pillow's ``accept`` functions run here, pure checks of the first 16 bytes: the
    refused formats' parsers never see the data.
    """
    from PIL import Image

    try:
        stream.seek(0)
        prefix = stream.read(16)
    except (OSError, ValueError):
        prefix = b""
    actual = None
    for plugin in Image.ID:
        accept = Image.OPEN.get(plugin, (None, None))[1]
        if accept is None:
            continue
        try:
            matched = accept(prefix)
        except Exception:  # noqa: BLE001 - a sniffer choking on odd bytes is just "no match"
            continue
        if matched and not isinstance(matched, str):
            actual = plugin
            break
    if actual in ACCEPTED_FORMATS:
        return (f"{name} looks like a {actual} image but could not be read; it is truncated "
                "or corrupt.")
    if actual is not None:
        return (f"{name} is a {actual} image (judging by its first bytes), which is not "
                f"accepted here; {ACCEPTED_TEXT}. Convert it, e.g. to PNG.")
    return f"{name} is not an image format that can be read; {ACCEPTED_TEXT}."


def _check_pixels(width: int, height: int, limit: int, name: str = "The image") -> None:
    if width * height > limit:
        raise ImageTooLargeError(
            f"{name} is {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{limit:,}. Resize it, or raise the limit with env {MAX_PIXELS_ENV}."
        )


# --- conversion -----------------------------------------------------------------------------


def _pil_to_rgb(image: Any) -> np.ndarray:
    from PIL import ImageOps

    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a malformed EXIF block: keep the stored orientation rather than fail
        pass
    try:
        return _pil_mode_to_rgb(image)
    except (OSError, SyntaxError, EOFError) as exc:
        raise ImageError(f"The image could not be decoded ({exc}); it is truncated or corrupt.")


def _pil_mode_to_rgb(image: Any) -> np.ndarray:
    mode = image.mode
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        mode in ("P", "L", "RGB") and "transparency" in image.info
    ):
        return _composite_on_white(np.asarray(image.convert("RGBA")))
    if mode == "RGB":
        return _contiguous(np.asarray(image))
    if mode in ("L", "1"):
        return _gray_to_rgb(np.asarray(image.convert("L")))
    if mode.startswith("I;16"):
        return _gray_to_rgb(_scale_16bit(np.asarray(image)))
    if mode == "I":
        return _gray_to_rgb(_int_to_uint8(np.asarray(image)))
    if mode == "F":
        return _gray_to_rgb(_float_to_uint8(np.asarray(image), "float image"))
    if mode == "CMYK":
        return _contiguous(np.asarray(_cmyk_to_rgb(image)))
    try:
        return _contiguous(np.asarray(image.convert("RGB")))
    except ValueError:
        raise ImageError(f"Images in Pillow mode {mode!r} cannot be converted to RGB.") from None


def _cmyk_to_rgb(image: Any) -> Any:
    """CMYK through the embedded ICC profile when usable, else Pillow's conversion."""
    profile = image.info.get("icc_profile")
    if profile:
        try:
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            target = ImageCms.createProfile("sRGB")
            return ImageCms.profileToProfile(image, source, target, outputMode="RGB")
        except Exception:  # unusable profile or no littlecms: fall back to the plain formula
            pass
    return image.convert("RGB")


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(
            f"An image array must be H x W, H x W x 3 (RGB) or H x W x 4 (RGBA); got shape "
            f"{array.shape}."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageError(f"The image is empty (shape {array.shape}).")
    if array.dtype == np.uint8:
        data = array
    elif array.dtype == np.bool_:
        data = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        data = _scale_16bit(array)
    elif np.issubdtype(array.dtype, np.floating):
        data = _float_to_uint8(array, "float image array", stretch=False)
    else:
        raise ImageError(
            f"Image arrays must be uint8, uint16, bool or float; got dtype {array.dtype}."
        )
    if data.ndim == 2:
        return _gray_to_rgb(data)
    if data.shape[2] == 4:
        return _composite_on_white(data)
    return _contiguous(data)


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 with rounding (v / 257, since 65535 = 255 * 257)."""
    return ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _int_to_uint8(values: np.ndarray) -> np.ndarray:
    low, high = int(values.min()), int(values.max())
    if low >= 0 and high <= 255:
        return values.astype(np.uint8)
    if low >= 0 and high <= 65535:
        return _scale_16bit(values)
    return _stretch(values.astype(np.float64))


def _float_to_uint8(values: np.ndarray, what: str, stretch: bool = True) -> np.ndarray:
    if not np.isfinite(values).all():
        raise ImageError(f"The {what} contains NaN or infinite values.")
    low, high = float(values.min()), float(values.max())
    if low >= 0.0 and high <= 1.0:
        return np.rint(values * 255.0).astype(np.uint8)
    if low >= 0.0 and high <= 255.0:
        return np.rint(values).astype(np.uint8)
    if not stretch:
        raise ImageError(
            f"The {what} has values in [{low:g}, {high:g}]; use [0, 1] or [0, 255]."
        )
    return _stretch(values.astype(np.float64))


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """Alpha-blend an RGBA uint8 array over white: out = c * a + 255 * (1 - a), rounded."""
    rgb = rgba[:, :, :3].astype(np.uint32)
    alpha = rgba[:, :, 3:4].astype(np.uint32)
    blended = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)


def _contiguous(array: np.ndarray) -> np.ndarray:
    """A writable C-contiguous copy (np.asarray on PIL images returns a read-only view)."""
    return np.array(array, dtype=np.uint8, order="C", copy=True)
