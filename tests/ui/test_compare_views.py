"""The compare view's cards, agreement matrix, disagreement image, table and downloads, on
hand-made masks (no model), so every figure can be checked exactly."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from sam_backends.evaluation.metrics import boundary_fscore, mask_iou
from workbench.compare.exports import CSV_COLUMNS, comparison_csv, write_compare_downloads
from workbench.compare.state import CompareSession, ModelOutcome, select_models
from workbench.compare.timings import Estimate
from workbench.compare.values import (
    AGREE_COLOR,
    DISAGREE_COLOR,
    TABLE_HEADERS,
    agreement_matrix,
    agreement_value,
    cards_value,
    disagreement_image,
    model_rows,
    table_rows,
)
from workbench.objects import MaskResult, PromptSet, SegObject, Step, Workspace

H, W = 60, 80
NAMES = {"a": "Model A", "b": "Model B", "c": "Model <C>"}


def rect(x0, y0, x1, y1):
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def workspace(model_id, masks_and_scores):
    """A workspace with one object per (mask, score), each from a box prompt."""
    objects = []
    for index, (mask, score) in enumerate(masks_and_scores, start=1):
        result = MaskResult.from_mask(mask, score, None, model_id, 0.01)
        objects.append(SegObject(index, (Step(), Step(PromptSet(box=(0, 0, 5, 5)), result)), 1))
    return Workspace(tuple(objects), 1, len(objects) + 1)


@pytest.fixture
def session():
    image = np.zeros((H, W, 3), np.uint8)
    image[..., 0] = np.arange(W)[None, :] * 3
    image[..., 1] = 100
    s = CompareSession("t", ("a", "b", "c"))
    s.set_image(image, "digest", "My photo.jpg")
    s.workspaces = {
        "a": workspace("a", [(rect(10, 10, 30, 30), 0.9)]),
        "b": workspace("b", [(rect(20, 10, 40, 30), 0.8)]),
        "c": Workspace(),
    }
    s.outcomes = {
        "a": ModelOutcome(2.5, False, 0.05, encode_wait_seconds=3.25),
        "b": ModelOutcome(0.001, True, 0.012),
        "c": ModelOutcome(error="Model C is not downloaded. Run `get c`."),
    }
    s.sync_canvas()
    return s


def test_rows_report_each_model(session):
    rows = model_rows(session, NAMES)
    a, b, c = rows
    assert (a.model_id, a.name, a.objects, a.scores) == ("a", "Model A", 1, (0.9,))
    assert a.area_px == 400 and a.area_share == pytest.approx(400 / (H * W))
    assert (a.encode_seconds, a.cached, a.decode_seconds) == (2.5, False, 0.05)
    assert b.cached and b.mean_score == pytest.approx(0.8)
    assert c.area_px is None and c.scores == () and "not downloaded" in c.error
    assert a.iou_gt is None


def test_ground_truth_scores(session):
    truth = rect(10, 10, 30, 30)
    session.ground_truth = truth
    a, b, _ = model_rows(session, NAMES)
    assert a.iou_gt == 1.0 and a.boundary_f_gt == 1.0
    assert b.iou_gt == pytest.approx(mask_iou(rect(20, 10, 40, 30), truth))
    assert b.boundary_f_gt == pytest.approx(boundary_fscore(rect(20, 10, 40, 30), truth).fscore)


def test_agreement_matrix_over_models_with_masks(session):
    ids, matrix = agreement_matrix(session)
    assert ids == ["a", "b"]  # "c" has no mask
    assert matrix[0, 1] == pytest.approx(200 / 600) and matrix[0, 0] == 1.0
    value = agreement_value(session, NAMES)
    assert value["ready"] and value["labels"] == ["Model A", "Model B"]  # the cards' names
    assert value["titles"] == ["Model A (a)", "Model B (b)"]
    assert [c["text"] for c in value["rows"][0]["cells"]] == ["1.000", "0.333"]
    assert "400 px" in value["legend"]  # the two 10x20 strips where only one model says object
    assert value["image"].startswith("data:image/jpeg;base64,")


def test_agreement_needs_two_models(session):
    session.workspaces["b"] = Workspace()
    assert agreement_matrix(session) is None
    assert agreement_value(session, NAMES)["ready"] is False


def test_disagreement_image_colours():
    image = np.full((H, W, 3), 128, np.uint8)
    out = disagreement_image(image, [rect(10, 10, 30, 30), rect(20, 10, 40, 30)])
    assert out.shape == (H, W, 3)
    agree, differ, neither = out[20, 25], out[20, 15], out[50, 70]
    assert np.abs(differ.astype(int) - (np.array(DISAGREE_COLOR) * 0.8 + 128 * 0.2)).max() <= 1
    assert np.abs(agree.astype(int) - (np.array(AGREE_COLOR) * 0.45 + 128 * 0.55)).max() <= 1
    assert neither[0] == neither[1] == neither[2]  # dimmed grey
    assert np.array_equal(out[20, 35], differ)


def test_cards(session):
    estimates = {m: Estimate(m, None, "none") for m in ("a", "b", "c")}
    value = cards_value(session, NAMES, estimates)
    a, b, c = value["items"]
    assert a["name"] == "Model A" and a["score"] == "0.90"
    assert a["area"] == "400 px (8.3%)"
    assert a["encode"] == "2.50 s" and a["decode"] == "50 ms"
    assert a["wait"] == "3.25 s"  # waiting for the other models' encodes, shown apart
    assert b["encode"] == "cached" and b["wait"] == "—"
    assert a["cutout"].startswith("data:image/webp;base64,")
    # the overlay thumbnail is stacked by the browser: the plain image and one layer per object
    assert a["overlay"]["base"].startswith("data:image/jpeg;base64,")
    assert [u[:22] for u in a["overlay"]["layers"]] == ["data:image/png;base64,"] * len(
        session.masks_of("a"))
    assert c["cutout"] is None and "not downloaded" in c["error"]
    assert c["error"].endswith("Run <code>get c</code>.")
    assert c["name"] == "Model &lt;C&gt;"  # user-visible text is escaped
    assert a["gt"] is None
    session.ground_truth = rect(10, 10, 30, 30)
    assert cards_value(session, NAMES, estimates)["items"][0]["gt"] == (
        "IoU 1.000 · boundary F 1.000")


def test_card_cutout_is_transparent_outside_the_mask(session):
    import base64

    url = cards_value(session, NAMES, {})["items"][0]["cutout"]
    rgba = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    assert rgba.shape == (H, W, 4)
    assert (rgba[..., 3][~rect(10, 10, 30, 30)] == 0).all()
    assert (rgba[12:28, 12:28, 3] == 255).all()


def test_waiting_card_shows_the_expected_time(session):
    session.outcomes["a"] = ModelOutcome()
    estimates = {"a": Estimate("a", 80.0, "measured")}
    assert cards_value(session, NAMES, estimates)["items"][0]["waiting"] == (
        "⏳ Encoding: about 80 s (measured here)")


def test_table_rows(session):
    rows = table_rows(session, NAMES)
    assert len(rows) == 3 and all(len(r) == len(TABLE_HEADERS) for r in rows)
    assert rows[0][:6] == ["Model A", "0.90", "400 px (8.3%)", "2.50 s", "3.25 s", "50 ms"]
    assert rows[0][8] == "0.333" and rows[2][8] == "—"


def test_multiple_objects_are_compared_as_their_union(session):
    session.workspaces["a"] = workspace("a", [(rect(10, 10, 30, 30), 0.9),
                                              (rect(50, 40, 60, 50), 0.7)])
    row = model_rows(session, NAMES)[0]
    assert row.objects == 2 and row.area_px == 500 and row.scores == (0.9, 0.7)
    assert table_rows(session, NAMES)[0][1] == "0.90 · 0.70"


def test_comparison_csv(session):
    session.ground_truth = rect(10, 10, 30, 30)
    rows = list(csv.DictReader(io.StringIO(comparison_csv(session, NAMES))))
    assert list(rows[0].keys()) == list(CSV_COLUMNS) + ["iou_vs_a", "iou_vs_b", "iou_vs_c"]
    a, b, c = rows
    assert a["model_id"] == "a" and a["area_px"] == "400" and a["score"] == "0.9000"
    assert a["iou_vs_ground_truth"] == "1.0000" and a["encode_cached"] == "False"
    assert b["encode_cached"] == "True" and b["decode_ms"] == "12.0"
    assert a["iou_vs_b"] == b["iou_vs_a"] == "0.3333" and a["iou_vs_a"] == "1.0000"
    assert a["iou_vs_c"] == "" and c["area_px"] == "" and "not downloaded" in c["error"]


def test_zip_and_csv_downloads(session, tmp_path):
    paths = write_compare_downloads(tmp_path, session, NAMES)
    assert paths["csv"].name == "My_photo_comparison.csv"
    assert paths["zip"].name == "My_photo_compare.zip"
    with zipfile.ZipFile(paths["zip"]) as archive:
        names = sorted(archive.namelist())
        assert names == sorted([
            "My_photo_compare/comparison.csv", "My_photo_compare/disagreement.png",
            "My_photo_compare/a/cutout.png", "My_photo_compare/a/mask.png",
            "My_photo_compare/a/object1_cutout.png", "My_photo_compare/a/object1_mask.png",
            "My_photo_compare/b/cutout.png", "My_photo_compare/b/mask.png",
            "My_photo_compare/b/object1_cutout.png", "My_photo_compare/b/object1_mask.png",
        ])
        cutout = Image.open(io.BytesIO(archive.read("My_photo_compare/b/cutout.png")))
        assert cutout.mode == "RGBA" and cutout.size == (W, H)
        alpha = np.asarray(cutout)[..., 3]
        assert np.array_equal(alpha > 0, rect(20, 10, 40, 30))
        mask = np.asarray(Image.open(io.BytesIO(archive.read("My_photo_compare/a/mask.png"))))
        assert np.array_equal(mask == 255, rect(10, 10, 30, 30))
        assert archive.read("My_photo_compare/comparison.csv").decode() == (
            paths["csv"].read_text())


def test_select_models_keeps_prompts_and_drops_masks_for_new_models(session):
    select_models(session, ["b", "d"])
    assert session.models == ("b", "d")
    new = session.workspaces["d"]
    assert [o.object_id for o in new.objects] == [1]
    assert new.active.prompts == session.workspaces["b"].active.prompts
    assert new.active.result is None and new.active.cursor == 1
    assert session.outcomes["d"] == ModelOutcome()
    with pytest.raises(ValueError, match="between 2 and 6"):
        select_models(session, ["b"])
    with pytest.raises(ValueError, match="between 2 and 6"):
        select_models(session, list("abcdefg"))


def test_new_image_resets_every_model(session):
    session.ground_truth = rect(0, 0, 5, 5)
    session.set_image(np.zeros((10, 12, 3), np.uint8), "other", "next.png")
    assert all(ws == Workspace() for ws in session.workspaces.values())
    assert all(o == ModelOutcome() for o in session.outcomes.values())
    assert session.ground_truth is None and session.card_images is None


def test_card_overlay_layers_follow_the_drawing_spec():
    """Each card layer is the object's mask in the spec's colour and fill opacity with an
    opaque outline, transparent elsewhere: the browser stacks it over the plain image."""
    import base64

    from workbench.compare.values import CardImages
    from workbench.drawing import SPEC

    image = np.full((60, 80, 3), 200, np.uint8)
    mask = rect(20, 10, 60, 50)
    images = CardImages(image, side=80)
    url = images.layer_url(2, mask)
    layer = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    assert layer.shape == (60, 80, 4)
    assert (layer[~mask][:, 3] == 0).all()
    inside = layer[25:35, 35:45]
    assert (inside[..., :3] == SPEC.colour_for(2)).all()
    assert (inside[..., 3] == round(255 * SPEC.fill_opacity)).all()
    assert (layer[10, 20:60, 3] == 255).all()  # the outline, opaque
    value = images.overlay([(1, mask, 0.9), (2, mask, 0.8)])
    assert value["base"] == images.base_url and len(value["layers"]) == 2


def test_the_table_shows_a_models_own_encode_time_and_its_wait_apart(session):
    rows = {r[0]: r for r in table_rows(session, NAMES)}
    encode, waited = TABLE_HEADERS.index("Encode"), TABLE_HEADERS.index("Waited")
    assert (rows["Model A"][encode], rows["Model A"][waited]) == ("2.50 s", "3.25 s")
    assert (rows["Model B"][encode], rows["Model B"][waited]) == ("cached", "—")
    header, line_a = comparison_csv(session, NAMES).splitlines()[:2]
    column = header.split(",").index("encode_wait_seconds")
    assert line_a.split(",")[column] == "3.250"
