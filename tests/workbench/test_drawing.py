"""The drawing spec: one palette, one indexing convention, one opacity and outline rule, read by
every place that draws a mask (page previews, REST overlay, video export, browser canvas)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.drawing import SPEC, DrawingSpec, colour_hex, hex_colour
from workbench.render import Layer, boundary, compose
from workbench.video.exports import overlay_frame


def test_objects_count_from_one_and_the_palette_cycles():
    palette = SPEC.palette
    assert SPEC.colour_for(1) == palette[0] and SPEC.colour_for(2) == palette[1]
    assert SPEC.colour_for(len(palette) + 1) == palette[0]
    assert SPEC.hex_for(1) == colour_hex(palette[0]) and hex_colour(SPEC.hex_for(3)) == palette[2]
    assert len(set(palette)) == len(palette)


def test_the_canvas_value_is_the_spec_as_json():
    value = json.loads(json.dumps(SPEC.as_value()))
    assert value["palette"] == [colour_hex(c) for c in SPEC.palette]
    assert value["fill_opacity"] == SPEC.fill_opacity
    assert {"hover_opacity", "outline_divisor", "active_extra"} <= set(value)


@pytest.mark.parametrize("changes", [{"palette": ()}, {"fill_opacity": 1.5},
                                     {"hover_opacity": -0.1}, {"outline_divisor": 0}])
def test_a_bad_spec_is_refused(changes):
    with pytest.raises(ValueError):
        DrawingSpec(**{"palette": SPEC.palette, **changes})


def test_outline_width_follows_the_longer_side():
    assert SPEC.outline_width(100, 200) == 1
    assert SPEC.outline_width(1280, 720) == 2 and SPEC.outline_width(720, 1280, True) == 3


def test_boundary_keeps_pixels_whose_four_neighbours_at_t_are_not_all_inside():
    mask = np.zeros((12, 12), bool)
    mask[2:10, 2:10] = True
    mask[0:3, 0:3] = True  # touches the picture's edge: that edge is outlined too
    edge = boundary(mask, 2)
    for y, x in zip(*np.nonzero(mask)):
        around = [(y, x - 2), (y, x + 2), (y - 2, x), (y + 2, x)]
        inside = all(0 <= a < 12 and 0 <= b < 12 and mask[a, b] for a, b in around)
        assert edge[y, x] == (not inside)
    assert not edge[~mask].any()


def test_the_video_overlay_is_the_page_drawing():
    frame = np.random.default_rng(1).integers(0, 256, (40, 64, 3), dtype=np.uint8)
    first, third = np.zeros((40, 64), bool), np.zeros((40, 64), bool)
    first[5:30, 4:30] = True
    third[10:35, 30:60] = True
    shown = overlay_frame(frame, {3: third, 1: first})
    np.testing.assert_array_equal(shown, compose(frame, [Layer(first, SPEC.colour_for(1)),
                                                         Layer(third, SPEC.colour_for(3))]))
    inner = first & ~boundary(first, SPEC.outline_width(40, 64))
    weight = round(SPEC.fill_opacity * 255)
    expected = (frame[inner].astype(int) * (255 - weight) + np.array(SPEC.colour_for(1)) * weight
                + 127) // 255
    np.testing.assert_array_equal(shown[inner], expected)
