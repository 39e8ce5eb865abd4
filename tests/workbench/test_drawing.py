"""The drawing spec: one palette, one indexing convention, one opacity and outline rule, read by
every place that draws a mask (page previews, REST overlay, video export, browser canvas)."""

from __future__ import annotations

import colorsys
import json

import numpy as np
import pytest

from workbench.drawing import (
    FAMILY_HUE_SPAN,
    SEQUENCE_LENGTH,
    SPEC,
    DrawingSpec,
    colour_hex,
    hex_colour,
)
from workbench.render import Layer, boundary, compose
from workbench.video.exports import overlay_frame


def test_objects_count_from_one_and_the_palette_comes_first():
    palette = SPEC.palette
    assert SPEC.colour_for(1) == palette[0] and SPEC.colour_for(2) == palette[1]
    assert SPEC.hex_for(1) == colour_hex(palette[0]) and hex_colour(SPEC.hex_for(3)) == palette[2]
    assert len(set(palette)) == len(palette)
    # the sequence goes on without repeating, then cycles
    assert SPEC.colour_for(SEQUENCE_LENGTH + 1) == palette[0]


def min_distance(colours) -> float:
    rgb = np.array(colours, float)
    distances = np.linalg.norm(rgb[:, None] - rgb[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    return float(distances.min())


def test_two_hundred_objects_without_a_class_get_distinct_colours():
    """'Keep all' on an OWLv2 run made 100 objects whose colours repeated every 8."""
    colours = [SPEC.colour_for(n) for n in range(1, 201)]
    assert len(set(colours)) == 200
    assert min_distance(colours[:24]) >= 45  # the first 24 as far apart as the palette's 8
    assert min_distance(colours) >= 24


# the first Tableau classes of ``workbench.projects.model.PALETTE``: blue, orange, green, purple
CLASS_COLOURS = [hex_colour(c) for c in ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1")]


@pytest.mark.parametrize("family", CLASS_COLOURS)
def test_instances_of_one_class_share_its_hue_and_stay_apart(family):
    colours = [SPEC.colour_for(n, family) for n in range(1, 201)]
    assert colours[0] == family  # the first instance number shows the class colour itself
    assert len(set(colours)) == 200
    assert min_distance(colours[:24]) >= 40
    assert min_distance(colours) >= 10  # 200 in one hue window: close, never the same
    hue = colorsys.rgb_to_hls(*(v / 255 for v in family))[0]
    assert all(hue_gap(c, hue) <= FAMILY_HUE_SPAN + 0.01 for c in colours)


def hue_gap(colour, hue: float) -> float:
    gap = abs(colorsys.rgb_to_hls(*(v / 255 for v in colour))[0] - hue)
    return min(gap, 1 - gap)


def test_two_hundred_objects_of_four_classes_stay_apart_and_in_their_class_hue():
    colours, own = [], []
    for index, family in enumerate(CLASS_COLOURS):
        for number in range(index + 1, 201, len(CLASS_COLOURS)):  # interleaved object ids
            colours.append(SPEC.colour_for(number, family))
            own.append(index)
    assert min_distance(colours) >= 10
    hues = [colorsys.rgb_to_hls(*(v / 255 for v in f))[0] for f in CLASS_COLOURS]
    nearest = [min(range(len(hues)), key=lambda i: hue_gap(c, hues[i])) for c in colours]
    assert nearest == own  # every object's hue is nearest its own class's


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
