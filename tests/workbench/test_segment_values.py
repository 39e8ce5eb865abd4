"""Pure pieces behind the live Segment view: display masks, candidate similarity, undoable
deletes, object names in COCO, cropped cut-outs, truthful status."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from workbench.exports import ExportObject, coco_document, crop_box
from workbench.inference import candidates_differ
from workbench.objects import MaskResult, PromptSet, Step, Workspace
from workbench.segment.masks import encode_mask
from workbench.segment.values import live_canvas_value, score_label, status_text
from workbench.session import Session


def decoded(payload: dict) -> np.ndarray:
    data = base64.b64decode(payload["png"].split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))[..., 3] > 0


def test_display_mask_is_the_cropped_mask_at_display_size():
    mask = np.zeros((1200, 1800), bool)
    mask[300:900, 200:1500] = True
    payload = encode_mask(mask)
    assert (payload["x"], payload["y"]) == (142, 213)  # display scale 1280 / 1800
    assert decoded(payload).all() and decoded(payload).shape == (payload["h"], payload["w"])
    assert encode_mask(np.zeros((10, 10), bool)) is None


def test_display_mask_samples_every_pixel_from_its_own_place():
    """Scaled to display size, each payload pixel is the full-resolution pixel under its centre
    (a speckled mask, so a swapped axis or a shifted row shows)."""
    from workbench.segment.masks import _source_index

    rng = np.random.default_rng(3)
    mask = np.zeros((1200, 1800), bool)
    mask[250:1100, 40:1700] = rng.random((850, 1660)) < 0.4
    payload = encode_mask(mask)
    rows, cols = _source_index(853, 1200), _source_index(1280, 1800)
    x, y, w, h = payload["x"], payload["y"], payload["w"], payload["h"]
    want = mask[np.ix_(rows, cols)][y:y + h, x:x + w]
    np.testing.assert_array_equal(decoded(payload), want)
    assert want.any() and not want[0].all()


def test_a_hover_preview_is_sampled_coarser_and_placed_in_display_pixels():
    """``side=HOVER_SIDE``: the PNG holds the mask sampled on the coarser grid (pixel centres,
    as the display's), ``x, y, w, h`` place it in display pixels over the same region as the
    display payload, and its outline is as wide as the display's once scaled."""
    from workbench.drawing import SPEC
    from workbench.render import boundary, fit_size
    from workbench.segment.masks import EDGE, EDGE_BOTH, HOVER_SIDE, _source_index

    mask = np.zeros((1200, 1800), bool)
    mask[300:900, 200:1500] = True
    mask[500:520, 600:1000] = False  # a slot, so the sampling is checked inside too
    full, preview = encode_mask(mask), encode_mask(mask, side=HOVER_SIDE)
    ph, pw = fit_size(1200, 1800, HOVER_SIDE)
    assert (ph, pw) == (427, 640)
    rows, cols = _source_index(ph, 1200), _source_index(pw, 1800)
    sampled = mask[np.ix_(rows, cols)]
    ys, xs = np.flatnonzero(sampled.any(1)), np.flatnonzero(sampled.any(0))
    np.testing.assert_array_equal(decoded(preview), sampled[ys[0]: ys[-1] + 1, xs[0]: xs[-1] + 1])
    sx, sy = 1280 / pw, 853 / ph
    assert preview["x"] == pytest.approx(xs[0] * sx, abs=1e-3)
    assert preview["y"] == pytest.approx(ys[0] * sy, abs=1e-3)
    assert preview["w"] == pytest.approx(decoded(preview).shape[1] * sx, abs=1e-3)
    assert preview["h"] == pytest.approx(decoded(preview).shape[0] * sy, abs=1e-3)
    for key in ("x", "y", "w", "h"):  # the same region as the display payload, to a pixel
        assert abs(preview[key] - full[key]) <= 2 * sx
    assert decoded(preview).size * 3.5 < decoded(full).size  # about a quarter of the pixels
    with Image.open(io.BytesIO(base64.b64decode(preview["png"].split(",", 1)[1]))) as image:
        indices = np.asarray(image)
    width = max(1, round(SPEC.outline_width(853, 1280) / sx))
    np.testing.assert_array_equal((indices == EDGE) | (indices == EDGE_BOTH),
                                  boundary(indices > 0, width))
    small = np.zeros((90, 120), bool)
    small[10:50, 20:90] = True
    assert encode_mask(small, side=HOVER_SIDE) == encode_mask(small)  # already small enough


@pytest.mark.parametrize("shape", [(60, 90), (61, 77), (700, 1280), (853, 1280)])
def test_payload_marks_both_outlines_as_render_boundary(shape):
    """The page colours a payload by palette index (canvas.js), so the indices must be the mask
    and render.boundary's two outlines exactly, read back by Pillow's own PNG decoder."""
    from workbench.drawing import SPEC
    from workbench.render import boundary
    from workbench.segment.masks import EDGE, EDGE_ACTIVE, EDGE_BOTH, INSIDE

    rng = np.random.default_rng(sum(shape))
    height, width = shape
    yy, xx = np.mgrid[:height, :width]
    mask = ((yy - height / 2) / (height / 3)) ** 2 + ((xx - width / 2) / (width / 3)) ** 2 < 1
    mask[height // 2, : width // 2] = False  # a slit one pixel wide
    mask ^= rng.random(shape) < 0.01  # specks and pinholes
    payload = encode_mask(mask)
    with Image.open(io.BytesIO(base64.b64decode(payload["png"].split(",", 1)[1]))) as image:
        assert image.mode == "P"
        indices = np.asarray(image)
    x, y, w, h = payload["x"], payload["y"], payload["w"], payload["h"]
    crop = mask[y:y + h, x:x + w]  # display size = image size here
    assert indices.shape == crop.shape and not mask.sum() - crop.sum()
    assert set(np.unique(indices)) <= {0, INSIDE, EDGE, EDGE_ACTIVE, EDGE_BOTH}
    np.testing.assert_array_equal(indices > 0, crop)
    plain, active = SPEC.outline_width(*shape), SPEC.outline_width(*shape, active=True)
    np.testing.assert_array_equal((indices == EDGE) | (indices == EDGE_BOTH),
                                  boundary(crop, plain))
    np.testing.assert_array_equal((indices == EDGE_ACTIVE) | (indices == EDGE_BOTH),
                                  boundary(crop, active))
    assert decoded(payload).sum() == mask.sum()  # any reader sees the mask (alpha)


def test_candidates_differ_only_when_the_masks_do():
    a = np.zeros((40, 40), bool)
    a[5:30, 5:30] = True
    b = a.copy()
    b[5, 5] = False
    same = [MaskResult.from_mask(m, 0.9, None, "m") for m in (a, b, a)]
    assert not candidates_differ(same)
    other = np.zeros((40, 40), bool)
    other[30:, 30:] = True
    assert candidates_differ(same[:2] + [MaskResult.from_mask(other, 0.5, None, "m")])


def test_delete_is_undone_by_restore_in_place():
    ws = Workspace()
    mask = np.ones((4, 4), bool)
    step = Step(PromptSet().with_point(1, 1, 1), MaskResult.from_mask(mask, 0.9, None, "m"))
    ws = ws.update_active(lambda o: o.record(step)).new_object()
    ws = ws.update_active(lambda o: o.record(step))
    first = ws.get(1)
    after = ws.delete(1)
    back = after.restore(first, 0)
    assert [o.object_id for o in back.objects] == [1, 2] and back.active_id == 1
    only = Workspace().update_active(lambda o: o.record(step))
    restored = only.delete(1).restore(only.get(1), 0)  # the placeholder object goes again
    assert [o.object_id for o in restored.objects] == [1]


def test_coco_categories_are_the_object_names_and_crop_has_a_margin():
    mask = np.zeros((100, 200), bool)
    mask[40:60, 50:150] = True
    objects = [ExportObject(1, mask, 0.9, "m", {}, "car"), ExportObject(2, mask, 0.8, "m", {}),
               ExportObject(3, mask, 0.7, "m", {}, "car")]
    doc = coco_document(objects, "x.png", (100, 200))
    assert [c["name"] for c in doc["categories"]] == ["car", "object"]
    assert [a["category_id"] for a in doc["annotations"]] == [1, 2, 1]
    assert crop_box(mask, 0.1) == (40, 38, 160, 62)


def test_status_is_truthful_and_grabcut_scores_are_named():
    session = Session("s", "sam2.1-tiny")
    session.set_image(np.zeros((10, 10, 3), np.uint8), "d", "a.png")
    session.timings.update(encode_s=0.001, cached=True)
    assert "from cache" in status_text(session, "M")
    session.timings.update(encode_s=2.0, cached=True)  # waited for another call's encode
    assert "encoded in 2.00 s" in status_text(session, "M")
    session.model_id = "grabcut"
    assert "encode" not in status_text(session, "GrabCut")
    assert score_label("grabcut", 0.5) == "colour separation 0.50"
    assert score_label("sam2.1-tiny", 0.5) == "score 0.50"


def test_live_canvas_value_gives_the_page_its_token_and_the_image_by_url():
    session = Session("s", "m")
    session.set_image(np.zeros((30, 40, 3), np.uint8), "d", "<b>.png")
    value = live_canvas_value(session, None, busy="Encoding…")
    assert value["live"]["token"] == session.token and value["live"]["gen"] == session.generation
    assert value["src"].endswith(f"/{session.token}/{session.generation}.jpg")
    assert value["name"] == "&lt;b&gt;.png" and value["busy"] == "Encoding…"
    assert Session("t", "m").token != session.token
