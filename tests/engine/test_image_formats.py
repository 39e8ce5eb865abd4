"""Only JPEG, PNG, WebP, BMP, TIFF and GIF are opened, whatever the file is called; other
formats Pillow could decode (FITS, PSD, McIdas, DDS, ICNS, EPS...) are refused by name."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, features

from sam_backends import ImageError
from sam_backends.images import ACCEPTED_FORMATS, load_image


def saved(fmt: str, mode: str = "RGB", **options) -> bytes:
    data = io.BytesIO()
    Image.new(mode, (16, 12), (10, 200, 30)[: len(mode)] if mode != "L" else 90).save(
        data, fmt, **options)
    return data.getvalue()


def psd_bytes(width: int = 4, height: int = 3) -> bytes:
    """A minimal uncompressed RGB Photoshop file (signature 8BPS)."""
    channels, depth, rgb = 3, 8, 3
    header = (b"8BPS" + struct.pack(">H", 1) + b"\0" * 6
              + struct.pack(">HIIHH", channels, height, width, depth, rgb))
    sections = struct.pack(">III", 0, 0, 0)  # colour mode data, resources, layers: empty
    return header + sections + struct.pack(">H", 0) + bytes(range(3 * width * height))


def fits_bytes(width: int = 4, height: int = 3) -> bytes:
    """A minimal 8-bit FITS file: 80-character header cards padded to 2880 bytes, then data."""
    cards = [b"SIMPLE  =                    T", b"BITPIX  =                    8",
             b"NAXIS   =                    2", b"NAXIS1  = %20d" % width,
             b"NAXIS2  = %20d" % height, b"END"]
    header = b"".join(card.ljust(80) for card in cards).ljust(2880)
    return header + bytes(range(width * height)).ljust(2880, b"\0")


def mcidas_bytes(width: int = 4, height: int = 3) -> bytes:
    """A minimal McIdas area file: a 64-word big-endian directory, then 8-bit pixels."""
    words = [0] * 65  # 1-based, as in Pillow's plugin
    words[2], words[9], words[10], words[11], words[14], words[34] = 4, height, width, 1, 1, 256
    return struct.pack("!64i", *words[1:]) + bytes(range(width * height))


REFUSED = {
    "PSD": psd_bytes,
    "FITS": fits_bytes,
    "MCIDAS": mcidas_bytes,
    "DDS": lambda: saved("DDS", "RGBA"),
    "ICNS": lambda: saved("ICNS", "RGBA"),
    "EPS": lambda: saved("EPS"),
    "PCX": lambda: saved("PCX"),
    "PPM": lambda: saved("PPM"),
    "SGI": lambda: saved("SGI"),
    "QOI": lambda: saved("QOI"),
}


@pytest.mark.parametrize("fmt", sorted(REFUSED))
def test_other_formats_are_refused_by_name(tmp_path, fmt):
    data = REFUSED[fmt]()
    path = tmp_path / "innocent.png"
    path.write_bytes(data)
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert f"innocent.png is a {fmt} image" in message
    assert "accepted formats: JPEG, PNG, WebP, BMP, TIFF, GIF" in message


@pytest.mark.parametrize("make", [psd_bytes, fits_bytes, mcidas_bytes])
def test_the_crafted_files_are_real_images_for_pillow(make):
    """The refusals above are the allow-list at work: Pillow itself would decode these."""
    image = Image.open(io.BytesIO(make()))
    image.load()
    assert image.size == (4, 3)


@pytest.mark.parametrize("fmt, mode", [
    ("JPEG", "RGB"), ("PNG", "RGBA"), ("BMP", "RGB"), ("TIFF", "RGB"), ("GIF", "P"),
    ("MPO", "RGB"),
] + ([("WEBP", "RGB")] if features.check("webp") else []))
def test_accepted_formats_still_load(fmt, mode):
    image = Image.new("RGB", (16, 12), (10, 200, 30)).convert(mode)
    data = io.BytesIO()
    image.save(data, fmt)
    array = load_image(data.getvalue())
    assert array.shape == (12, 16, 3) and array.dtype == np.uint8


def test_unknown_bytes_and_damaged_accepted_formats():
    with pytest.raises(ImageError, match=r"not an image format.*accepted formats: JPEG"):
        load_image(b"hello, I am not a picture")
    with pytest.raises(ImageError, match="looks like a PNG image but could not be read"):
        load_image(b"\x89PNG\r\n\x1a\n this is not really a png")


def test_the_list_is_documented():
    import sam_backends.images as images

    assert ACCEPTED_FORMATS == ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
    for name in ("JPEG", "PNG", "WebP", "BMP", "TIFF", "GIF"):
        assert name in images.__doc__
