"""The browser canvas's values (``workbench.canvas``): the same shape in every view, the drawing
spec inside, masks as PNGs rather than a composited overlay."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from test_ui_session import new_session, with_mask

from workbench.drawing import SPEC
from workbench.segment.values import canvas_value, live_canvas_value
from workbench.session import Session


def decode(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_compare_value_sends_the_plain_image_masks_and_the_spec():
    session = with_mask(new_session())
    value = canvas_value(session)
    assert value["spec"] == SPEC.as_value() and "live" not in value
    assert (value["w"], value["h"], value["dw"], value["dh"]) == (100, 60, 100, 60)
    shown = decode(value["src"]).astype(int)  # the image as uploaded: no overlay on it
    assert np.abs(shown - session.picture.image.astype(int)).max() <= 12
    [obj] = value["objects"]
    assert obj["id"] == 1 and obj["color"] == SPEC.hex_for(1) and obj["active"]
    mask = decode(obj["mask"]["png"]) > 0
    x, y = obj["mask"]["x"], obj["mask"]["y"]
    full = np.zeros((60, 100), bool)
    full[y:y + mask.shape[0], x:x + mask.shape[1]] = mask
    np.testing.assert_array_equal(full, session.workspace.active.result.mask())
    assert canvas_value(session)["src"] is value["src"]  # encoded once per image


def test_live_value_is_the_same_shape_with_the_route():
    session = with_mask(new_session())
    compare, live = canvas_value(session), live_canvas_value(session, None)
    assert set(compare) | {"live", "max_points"} == set(live)
    assert live["src"].endswith(".jpg") and live["objects"] == compare["objects"]


def test_an_empty_canvas_still_carries_the_spec():
    value = canvas_value(Session("empty", "grabcut"))
    assert "src" not in value and value["spec"] == SPEC.as_value()
