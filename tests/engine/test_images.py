"""Images that are not clean RGB: every kind is converted to RGB uint8 as a person sees it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam_backends.errors import ImageError, ImageTooLargeError
from sam_backends.images import (
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_ENV,
    image_digest,
    load_image,
    max_pixels_limit,
    to_rgb_array,
)

MEDIA = Path("/work/shared/media")


def gradient_rgb(height: int = 20, width: int = 30) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([cols * 255 // (width - 1), rows * 255 // (height - 1),
                     np.full_like(rows, 77)], -1).astype(np.uint8)


def save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def test_rgb_png_round_trip_from_every_source_kind(tmp_path):
    rgb = gradient_rgb()
    path = save(Image.fromarray(rgb), tmp_path / "rgb.png")
    data = path.read_bytes()
    for source in (path, str(path), data, io.BytesIO(data), Image.open(path), rgb):
        out = load_image(source)
        assert out.dtype == np.uint8 and out.shape == (20, 30, 3)
        assert out.flags.c_contiguous
        np.testing.assert_array_equal(out, rgb)


def test_grayscale_L(tmp_path):
    gray = gradient_rgb()[..., 0]
    out = load_image(save(Image.fromarray(gray, "L"), tmp_path / "g.png"))
    np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))


def test_bilevel_1(tmp_path):
    bits = np.zeros((8, 8), bool)
    bits[2:5, 3:7] = True
    out = load_image(save(Image.fromarray(bits), tmp_path / "b.png"))
    np.testing.assert_array_equal(out[..., 1], bits.astype(np.uint8) * 255)


def test_16bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32768, 65535]], np.uint16).repeat(3, axis=0)
    path = save(Image.fromarray(values), tmp_path / "g16.png")
    assert Image.open(path).mode.startswith("I;16")
    out = load_image(path)
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])
    assert (out[..., 0] == out[..., 2]).all()


def test_16bit_rgb_png(tmp_path):
    import cv2

    values = np.zeros((4, 4, 3), np.uint16)
    values[..., 0] = 65535  # red, in RGB order
    values[..., 1] = 32768
    path = tmp_path / "rgb16.png"
    cv2.imwrite(str(path), values[..., ::-1])  # cv2 writes BGR
    out = load_image(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], [255, 128, 0])


def test_32bit_int_and_float_modes():
    ints = Image.fromarray(np.array([[0, 1000, 65535]], np.int32))
    assert ints.mode == "I"
    np.testing.assert_array_equal(to_rgb_array(ints)[0, :, 0], [0, 4, 255])
    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32))
    assert floats.mode == "F"
    np.testing.assert_array_equal(to_rgb_array(floats)[0, :, 0], [0, 128, 255])
    wide = Image.fromarray(np.array([[-1.0, 0.0, 1.0]], np.float32))
    np.testing.assert_array_equal(to_rgb_array(wide)[0, :, 0], [0, 128, 255])


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0] = 200  # red channel everywhere
    rgba[0, :, 3] = [0, 128, 255]  # transparent, half, opaque
    rgba[1, :, 3] = 255
    out = load_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 1], [(200 * 128 + 255 * 127 + 127) // 255,
                                              (255 * 127 + 127) // 255,
                                              (255 * 127 + 127) // 255])
    np.testing.assert_array_equal(out[0, 2], [200, 0, 0])
    np.testing.assert_array_equal(out[1], [[200, 0, 0]] * 3)


def test_la_is_composited_on_white(tmp_path):
    la = Image.merge("LA", [Image.new("L", (2, 1), 10), Image.frombytes("L", (2, 1), b"\x00\xff")])
    out = load_image(save(la, tmp_path / "la.png"))
    np.testing.assert_array_equal(out[0], [[255, 255, 255], [10, 10, 10]])


def test_palette_with_transparency(tmp_path):
    palette = Image.new("P", (3, 1))
    palette.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)
    palette.putdata([0, 1, 1])
    path = save(palette, tmp_path / "p.png", transparency=0)
    assert Image.open(path).mode == "P" and "transparency" in Image.open(path).info
    out = load_image(path)
    np.testing.assert_array_equal(out[0], [[255, 255, 255], [255, 0, 0], [255, 0, 0]])


def test_palette_without_transparency(tmp_path):
    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 128, 0, 10, 20, 30] + [0] * 762)
    palette.putdata([0, 1])
    out = load_image(save(palette, tmp_path / "p.gif"))
    np.testing.assert_array_equal(out[0], [[0, 128, 0], [10, 20, 30]])


def test_cmyk_jpeg(tmp_path):
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    cmyk.paste((255, 0, 255, 0), (8, 0, 16, 16))  # pure green
    path = save(cmyk, tmp_path / "cmyk.jpg", quality=100)
    assert Image.open(path).mode == "CMYK"
    out = load_image(path).astype(int)
    assert np.abs(out[8, 2] - [255, 0, 0]).max() <= 8
    assert np.abs(out[8, 13] - [0, 255, 0]).max() <= 8


def test_exif_orientation_is_applied(tmp_path):
    """Orientation 6 means 'rotate 90 degrees clockwise to display': a 40 x 20 stored image is
    seen as 20 wide and 40 tall, with the stored top-left corner at the top-right."""
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:5, :5] = [255, 0, 0]  # red square at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(Image.fromarray(stored), tmp_path / "rotated.jpg", exif=exif, quality=95)
    out = load_image(path)
    assert out.shape == (40, 20, 3)
    assert out[1, 18, 0] > 200 and out[1, 18, 1] < 60  # now top-right
    assert out[1, 1, 0] < 60
    # a PIL image opened by the caller gets the same treatment
    assert to_rgb_array(Image.open(path)).shape == (40, 20, 3)


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    np.testing.assert_array_equal(load_image(path)[0, 0], [255, 0, 0])


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.full((2, 2), 9, np.uint8), [9, 9, 9]),
        (np.full((2, 2, 1), 9, np.uint8), [9, 9, 9]),
        (np.full((2, 2, 3), [1, 2, 3], np.uint16) * 257, [1, 2, 3]),
        (np.ones((2, 2), bool), [255, 255, 255]),
        (np.full((2, 2, 3), 0.5, np.float32), [128, 128, 128]),
        (np.full((2, 2, 3), 100.0), [100, 100, 100]),
        (np.dstack([np.full((2, 2, 3), 50, np.uint8), np.zeros((2, 2), np.uint8)]),
         [255, 255, 255]),
    ],
)
def test_array_layouts(array, expected):
    out = to_rgb_array(array)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[1, 1], expected)


def test_array_views_become_contiguous_copies():
    rgb = gradient_rgb()
    view = rgb[:, ::-1]
    out = to_rgb_array(view)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, view)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((2, 2, 2), np.uint8), "shape"),
        (np.zeros((2,), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.zeros((2, 2, 3), np.int64), "dtype"),
        (np.full((2, 2, 3), np.nan, np.float32), "NaN"),
        (np.full((2, 2, 3), 300.0), r"\[0, 1\]"),
    ],
)
def test_bad_arrays(array, message):
    with pytest.raises(ImageError, match=message):
        to_rgb_array(array)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello, I am not a picture")
    with pytest.raises(ImageError, match="not an image format"):
        load_image(path)
    with pytest.raises(ImageError, match="not an image format"):
        load_image(b"\x00\x01\x02")


def test_truncated_file(tmp_path):
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = io.BytesIO()
    Image.fromarray(noisy).save(data, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(path)


def test_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)
    with pytest.raises(ImageError, match="Cannot read an image from a int"):
        load_image(42)
    with pytest.raises(ImageError, match="Expected an image"):
        to_rgb_array([[1, 2, 3]])


def test_pixel_limit_is_checked_from_the_header(tmp_path, monkeypatch):
    path = save(Image.fromarray(gradient_rgb(100, 200)), tmp_path / "big.png")
    decoded = []
    original_load = Image.Image.load

    def spying_load(self):
        decoded.append(self.size)
        return original_load(self)

    monkeypatch.setattr(Image.Image, "load", spying_load)
    with pytest.raises(ImageTooLargeError, match=r"200x100 = 20,000 pixels.*19,999"):
        load_image(path, max_pixels=19_999)
    assert decoded == []  # refused before any pixel data was decoded
    assert load_image(path, max_pixels=20_000).shape == (100, 200, 3)


def test_pixel_limit_from_environment(tmp_path, monkeypatch):
    path = save(Image.fromarray(gradient_rgb(100, 200)), tmp_path / "big.png")
    monkeypatch.setenv(MAX_PIXELS_ENV, "10000")
    assert max_pixels_limit() == 10_000
    with pytest.raises(ImageTooLargeError, match=MAX_PIXELS_ENV):
        load_image(path)
    with pytest.raises(ImageTooLargeError):
        load_image(gradient_rgb(100, 200))  # arrays and PIL images obey the limit too
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ImageError, match="whole number"):
        load_image(path)
    monkeypatch.delenv(MAX_PIXELS_ENV)
    assert max_pixels_limit() == DEFAULT_MAX_PIXELS


def test_decompression_bomb_becomes_our_error(tmp_path):
    """A PNG whose header claims more pixels than Pillow's bomb limit is refused with our error
    (the file is tiny: Pillow reads only the header)."""
    side = int((Image.MAX_IMAGE_PIXELS * 1.2) ** 0.5)
    bomb = Image.new("1", (side, side))
    path = save(bomb, tmp_path / "bomb.png")
    assert path.stat().st_size < 10_000_000
    with pytest.raises(ImageTooLargeError, match="pixels"):
        load_image(path)  # our default limit, below Pillow's
    with pytest.raises(ImageTooLargeError, match="too large to open safely"):
        load_image(path, max_pixels=Image.MAX_IMAGE_PIXELS - 1)  # Pillow's warning, as an error


def test_image_digest():
    rgb = gradient_rgb()
    assert image_digest(rgb) == image_digest(rgb.copy())
    assert image_digest(rgb) == image_digest(np.asfortranarray(rgb))
    changed = rgb.copy()
    changed[3, 4, 1] ^= 1
    assert image_digest(changed) != image_digest(rgb)
    assert image_digest(rgb.reshape(30, 20, 3)) != image_digest(rgb)  # same bytes, other shape
    assert len(image_digest(rgb)) == 32


@pytest.mark.skipif(not (MEDIA / "truck.jpg").is_file(), reason="shared media not available")
def test_real_photo():
    out = load_image(MEDIA / "truck.jpg")
    assert out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.uint8
    assert out.std() > 10
