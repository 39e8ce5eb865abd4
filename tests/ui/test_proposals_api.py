"""The /segment_everything and /segment_text endpoints: parameters, limits and the result format.

Direct calls on ``ProposalsApi`` (the same functions ``gradio_client`` reaches), with the
random-weight SAM 2.1 test model for the real everything engine.
"""

from __future__ import annotations

import dataclasses
import io
import json

import gradio as gr
import numpy as np
import pytest
from app_harness import app_config, offline
from PIL import Image

from sam_backends import Instances, PromptError
from sam_backends.masks import decode_rle, mask_boxes
from ui.proposals.api import ProposalsApi, instances_json, parse_params
from workbench.context import AppContext
from workbench.proposals import engines


@pytest.fixture(scope="module")
def ctx(sam1_small, sam2_small, tmp_path_factory):
    from sam_backends.testing.text_models import small_owlv2_config, write_random_owlv2
    from sam_backends.text import hub

    checkpoint_dir = tmp_path_factory.mktemp("ckpt")
    write_random_owlv2(checkpoint_dir / hub.OWLV2.local_name, small_owlv2_config())
    # a generous deadline: these run on shared CPUs; the deadline itself is tested elsewhere
    config = app_config(sam1_small, sam2_small, checkpoint_dir, request_timeout_s=900.0,
                        temp_dir=tmp_path_factory.mktemp("temp"))
    with offline():
        context = AppContext(config)
        yield context
        context.close()


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    from sam_backends.testing.random_models import synthetic_image

    path = tmp_path_factory.mktemp("img") / "scene.png"
    Image.fromarray(synthetic_image(96, 128, seed=3)).save(path)
    return str(path)


def test_params_json_is_bounded_typed_and_keyed():
    assert parse_params("", 100, ("a",)) == {}
    assert parse_params(' {"a": 1} ', 100, ("a",)) == {"a": 1}
    with pytest.raises(PromptError, match="limit is 10"):
        parse_params('{"a": 1000000}', 10, ("a",))
    with pytest.raises(PromptError, match="not valid JSON"):
        parse_params("{a:", 100, ("a",))
    with pytest.raises(PromptError, match="JSON object"):
        parse_params("[1]", 100, ("a",))
    with pytest.raises(PromptError, match="Unknown parameter.*known: a"):
        parse_params('{"b": 1}', 100, ("a",))


@pytest.mark.parametrize(("text", "needle"), [
    ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "levels deep"),
    ('{"a": 1' + "0" * 5000 + "}", "numbers are at most"),
    ('{"a": 1e999}', "too large"),
    ('{"a": NaN}', "not a valid JSON number"),
])
def test_hostile_parameters_are_refused_with_a_reason_not_a_traceback(text, needle):
    with pytest.raises(PromptError, match=needle):
        parse_params(text, 100_000, ("a",))


def test_result_json_rle_decodes_to_the_masks():
    masks = np.zeros((2, 30, 40), bool)
    masks[0, 2:10, 3:20] = True
    masks[1, 15:29, 25:39] = True
    inst = Instances(masks, [0.9, 0.6], mask_boxes(masks), ("dog", "cat"), "owlv2+x",
                     {"detect": 1.5})
    doc = instances_json(inst, "owlv2+x", "a.png", {"total_s": 2.0})
    json.dumps(doc)  # JSON-ready
    assert doc["count"] == 2 and doc["image"] == {"file_name": "a.png", "height": 30,
                                                  "width": 40}
    for i, row in enumerate(doc["instances"]):
        np.testing.assert_array_equal(decode_rle(row["segmentation"]), masks[i])
        assert row["box"] == [float(v) for v in inst.boxes[i]]
        assert row["bbox"][2] == inst.boxes[i][2] - inst.boxes[i][0]
    assert [r["label"] for r in doc["instances"]] == ["dog", "cat"]
    assert doc["timings"]["detect_s"] == 1.5


@pytest.mark.parametrize(("params", "needle"), [
    ('{"points_per_side": 1000}', "between 1 and 64.*1,000"),
    ('{"points_per_side": 64}', "largest grid allowed is 51 x 51"),  # the default 1 GiB bound
    ('{"pred_iou_thresh": 1.5}', "pred_iou_thresh"),
    ('{"stability_score_thresh": -0.1}', "stability_score_thresh"),
    ('{"nonsense": 1}', "Unknown parameter"),
])
def test_everything_bad_parameters_name_the_problem(ctx, image_file, params, needle):
    api = ProposalsApi(ctx)
    with pytest.raises(gr.Error, match=needle):
        api.segment_everything(image_file, "test-sam2-small", params)


@pytest.mark.parametrize(("text", "params", "needle"), [
    ("", "{}", "empty"),
    ("   \n ", "{}", "empty"),
    ("a" * 10_000, "{}", "limit"),
    (", ".join(f"t{i}" for i in range(500)), "{}", "limit"),
    (",".join(f"p{i}" for i in range(20)), "{}", "phrases"),
    ("dog", '{"threshold": 2}', "between 0 and 1"),
    ("dog", '{"threshold": -1}', "between 0 and 1"),
], ids=["empty", "whitespace", "10k-chars", "500-phrases", "too-many-phrases", "thr-2",
        "thr-neg"])
def test_text_bad_input_names_the_limit(ctx, image_file, text, params, needle):
    api = ProposalsApi(ctx)
    with pytest.raises(gr.Error, match=needle):
        api.segment_text(image_file, "owlv2+test-sam2-small", text, params)


def test_text_unknown_model_is_refused(ctx, image_file):
    with pytest.raises(gr.Error, match="not offered"):
        ProposalsApi(ctx).segment_text(image_file, "owlv2+nope", "dog", "{}")


def test_everything_returns_rle_instances_and_an_overlay(ctx, image_file):
    api = ProposalsApi(ctx)
    params = json.dumps({"points_per_side": 4, "pred_iou_thresh": 0.0,
                         "stability_score_thresh": 0.0})
    result, overlay_path = api.segment_everything(image_file, "test-sam2-small", params)
    assert result["model_id"] == "test-sam2-small" and result["count"] > 0
    for row in result["instances"]:
        mask = decode_rle(row["segmentation"])
        assert mask.shape == (96, 128) and mask.sum() == row["area"] > 0
        assert 0.0 <= row["score"] <= 1.0 and row["label"] == ""
    with Image.open(overlay_path) as picture:
        assert picture.format == "PNG" and picture.size == (128, 96)
    assert "total_s" in result["timings"]


def test_overlay_png_decodes(ctx):
    api = ProposalsApi(ctx)
    masks = np.zeros((1, 20, 20), bool)
    masks[0, 5:15, 5:15] = True
    inst = Instances(masks, [0.5], mask_boxes(masks), ("",), "m")
    _, path = api._answer(np.zeros((20, 20, 3), np.uint8), "x.png", "m", inst, 0.0)
    data = open(path, "rb").read()
    picture = np.asarray(Image.open(io.BytesIO(data)))
    assert picture.shape == (20, 20, 3) and picture[10, 10].any() and not picture[0, 0].any()


def test_split_text_model(ctx):
    assert engines.split_text_model(ctx, "owlv2+test-sam1-small") == ("owlv2", "test-sam1-small")
    assert engines.split_text_model(ctx, "test-sam1-small") == ("test-sam1-small", "")
    assert engines.split_text_model(ctx, "") == ("owlv2", ctx.default_model())
    with pytest.raises(PromptError, match="detector"):
        engines.split_text_model(ctx, "yolo+test-sam1-small")


def test_model_without_text_capability_is_refused(ctx, image_file):
    with pytest.raises(gr.Error, match="does not read text.*sam3.*owlv2\\+test-sam2-small"):
        ProposalsApi(ctx).segment_text(image_file, "test-sam2-small", "dog", "{}")


def test_text_in_an_unknown_script_is_refused(ctx, image_file):
    with offline(), pytest.raises(gr.Error, match="tokenizer does not know.*English"):
        ProposalsApi(ctx).segment_text(image_file, "owlv2+test-sam2-small", "自転車", "{}")


def test_text_returns_labelled_rle_instances_and_an_overlay(ctx, image_file):
    with offline():
        result, overlay_path = ProposalsApi(ctx).segment_text(
            image_file, "owlv2+test-sam2-small", "circle, square", '{"threshold": 0}')
    assert result["model_id"] == "owlv2+test-sam2-small" and result["count"] > 0
    assert result["pipeline"] == "owlv2+test-sam2-small"
    assert {row["label"] for row in result["instances"]} <= {"circle", "square"}
    for row in result["instances"]:
        assert decode_rle(row["segmentation"]).shape == (96, 128)
    assert {"detect_s", "decode_s", "encode_s", "total_s"} <= set(result["timings"])
    with Image.open(overlay_path) as picture:
        assert picture.format == "PNG" and picture.size == (128, 96)


def test_everything_stops_past_the_deadline_with_a_clear_message(ctx, image_file, monkeypatch):
    monkeypatch.setattr(ctx, "config", dataclasses.replace(ctx.config, request_timeout_s=0.0))
    with pytest.raises(gr.Error, match="longer than its limit"):
        ProposalsApi(ctx).segment_everything(image_file, "test-sam2-small",
                                             '{"points_per_side": 4}')
