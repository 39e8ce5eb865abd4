"""Overlay rendering: nearest-neighbour mask scaling, outlines, colour blending, previews."""

from __future__ import annotations

import base64
import io

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from workbench.drawing import SPEC
from workbench.render import (
    Layer,
    Preview,
    boundary,
    compose,
    data_url,
    fit_size,
    resize_nearest,
)


def test_fit_size_only_shrinks():
    assert fit_size(1080, 1920, 1280) == (720, 1280)
    assert fit_size(3000, 1000, 1500) == (1500, 500)
    assert fit_size(100, 200, 1280) == (100, 200)


def test_resize_nearest_keeps_blocks_exact():
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:5] = True
    big = resize_nearest(mask, (8, 12))
    np.testing.assert_array_equal(big, np.kron(mask, np.ones((2, 2), bool)))
    np.testing.assert_array_equal(resize_nearest(big, (4, 6)), mask)
    assert resize_nearest(mask, (4, 6)) is mask


def test_boundary_is_the_outer_ring():
    mask = np.zeros((7, 7), bool)
    mask[1:6, 1:6] = True
    ring = boundary(mask, 1)
    expected = mask.copy()
    expected[2:5, 2:5] = False
    np.testing.assert_array_equal(ring, expected)
    np.testing.assert_array_equal(boundary(mask, 2), mask & ~np.pad(np.ones((1, 1), bool), 3))


def boundary_by_definition(mask: np.ndarray, t: int) -> np.ndarray:
    """render.boundary's docstring, pixel by pixel: in the mask, and some neighbour ``t`` away
    (left, right, above, below) outside the mask or beyond the picture."""
    height, width = mask.shape
    inside = lambda y, x: 0 <= y < height and 0 <= x < width and mask[y, x]  # noqa: E731
    out = np.zeros_like(mask)
    for y in range(height):
        for x in range(width):
            out[y, x] = mask[y, x] and not all(
                inside(y + dy, x + dx) for dy, dx in ((0, t), (0, -t), (t, 0), (-t, 0)))
    return out


@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 14), st.integers(1, 14))), st.integers(1, 4))
def test_boundary_matches_its_definition(mask, thickness):
    np.testing.assert_array_equal(boundary(mask, thickness),
                                  boundary_by_definition(mask, thickness))


def test_compose_fills_outlines_and_leaves_the_rest():
    image = np.full((20, 30, 3), 100, np.uint8)
    mask = np.zeros((20, 30), bool)
    mask[5:15, 5:20] = True
    color = (255, 0, 0)
    out = compose(image, [Layer(mask, color)], outline=1)
    np.testing.assert_array_equal(out[~mask], image[~mask])  # outside untouched
    edge = boundary(mask, 1)
    assert (out[edge] == color).all()  # outline in the object's colour
    inside = mask & ~edge
    expected = np.round(100 * (1 - SPEC.fill_opacity) + np.array(color) * SPEC.fill_opacity)
    np.testing.assert_allclose(out[inside], np.broadcast_to(expected, out[inside].shape), atol=1)
    assert image.max() == 100  # input not modified
    assert (compose(image, [Layer(np.zeros((20, 30), bool), color)]) == image).all()


def test_active_layer_gets_thicker_outline():
    image = np.zeros((30, 30, 3), np.uint8)
    mask = np.zeros((30, 30), bool)
    mask[5:25, 5:25] = True
    thin = compose(image, [Layer(mask, (0, 255, 0), active=False)], outline=1)
    thick = compose(image, [Layer(mask, (0, 255, 0), active=True)], outline=1)
    assert (thick == (0, 255, 0)).all(axis=2).sum() > (thin == (0, 255, 0)).all(axis=2).sum()


def test_palette_starts_the_sequence_and_differs_between_neighbours():
    palette = SPEC.palette
    assert SPEC.colour_for(1) == palette[0]
    assert SPEC.colour_for(len(palette) + 1) not in palette  # no repeat after 8 objects
    assert len({SPEC.colour_for(i) for i in range(1, 2 * len(palette) + 1)}) == 2 * len(palette)


def test_data_url_decodes_to_the_same_picture():
    image = np.zeros((12, 16, 3), np.uint8)
    image[:, 8:] = (10, 200, 30)
    url = data_url(image, "PNG")
    assert url.startswith("data:image/png;base64,")
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    np.testing.assert_array_equal(decoded, image)
    assert data_url(image).startswith("data:image/jpeg;base64,")


def test_preview_downscales_and_maps_full_resolution_masks():
    image = np.zeros((600, 2000, 3), np.uint8)
    preview = Preview(image, max_side=1000)
    assert preview.size == (300, 1000) and preview.base.shape == (300, 1000, 3)
    mask = np.zeros((600, 2000), bool)
    mask[:, :1000] = True  # left half
    out = preview.render([Layer(mask, (0, 0, 255))])
    assert out.shape == (300, 1000, 3)
    assert out[150, 250, 2] > 0 and out[150, 750].sum() == 0
    thumb = preview.thumbnail(mask, (0, 0, 255), side=200)
    assert thumb.shape == (60, 200, 3)
