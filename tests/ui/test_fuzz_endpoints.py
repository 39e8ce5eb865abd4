"""Property tests (hypothesis, bounded) of every public endpoint's parameters and the MCP
tools' argument check: whatever a caller sends, the answer is the endpoint's value or a clean
``gr.Error`` (what Gradio, ``gradio_client`` and MCP show), never an unexpected exception, a
"Unexpected ...Error" message or a traceback.

    /segment             prompts JSON (and model ids)
    /segment_everything  params JSON: values, deep nesting, huge numbers
    /segment_text        text and params JSON
    /track               prompts JSON, stride, start_s, end_s, max_frames
    /models              no parameters
    MCP file arguments   any JSON value -> None | ValueError with a message

The endpoints are called as functions on one GrabCut-only ``AppContext`` (no weights, no
server): parameters are checked before any model work, and GrabCut refuses "everything",
text and tracking right after, so no example runs a large model. REST ``/v1`` is fuzzed by
schemathesis (tests/server/test_rest_schemathesis.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

hypothesis = pytest.importorskip("hypothesis")
import gradio as gr  # noqa: E402
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ui.mcp_tools import check_file_argument  # noqa: E402
from workbench.config import AppConfig  # noqa: E402

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8))
JSON = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=6), children, max_size=4), max_leaves=20)
DEEP = "[" * 5000 + "]" * 5000
HUGE = "1" + "0" * 5000
EVERYTHING_KEYS = ("points_per_side", "points_per_batch", "pred_iou_thresh",
                   "stability_score_thresh", "stability_score_offset", "mask_threshold",
                   "box_nms_thresh", "crop_n_layers", "crop_nms_thresh", "min_mask_region_area",
                   "multimask_output")
EVERYTHING_LIKE = st.dictionaries(st.sampled_from(EVERYTHING_KEYS), JSON, max_size=4)
TEXT_LIKE = st.dictionaries(st.sampled_from(("threshold", "other")), JSON, max_size=2)
# What a caller may put where a JSON text is expected: text, JSON of any shape, or not text.
JSON_TEXT = (st.text(max_size=60) | JSON.map(json.dumps) | EVERYTHING_LIKE.map(json.dumps)
             | JSON)


@pytest.fixture(scope="module")
def apis(tmp_path_factory):
    from ui.api import SegmentApi
    from ui.proposals.api import ProposalsApi
    from ui.video.api import TrackApi
    from workbench.context import AppContext

    folder = tmp_path_factory.mktemp("fuzz-endpoints")
    image = folder / "scene.png"
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[10:30, 20:40] = 220
    Image.fromarray(pixels).save(image)
    ctx = AppContext(AppConfig(models=("grabcut",), default_model="grabcut", examples_dir=None,
                               temp_dir=folder / "temp"))
    yield SegmentApi(ctx), ProposalsApi(ctx), TrackApi(ctx), str(image)
    ctx.close()


def clean(call) -> None:
    """``call()`` returns, or raises ``gr.Error`` whose message reads as a person's."""
    try:
        call()
    except gr.Error as exc:
        message = str(exc.message)
        assert message and "Traceback" not in message, message
        assert "Unexpected" not in message, message  # the catch-all for unforeseen errors
        assert len(message) < 2000, message[:200]


@FUZZ
@given(JSON_TEXT, st.sampled_from(["grabcut", "", "nope", None]))
@example(DEEP, "grabcut")
@example('{"box": [' + HUGE + ', 0, 5, 5]}', "grabcut")
def test_segment_prompts(apis, prompts, model_id):
    segment, _, _, image = apis
    clean(lambda: segment.segment(image, model_id, prompts))


@FUZZ
@given(JSON_TEXT)
@example(DEEP)
@example('{"points_per_side": ' + HUGE + "}")
@example('{"stability_score_offset": 1e308}')
@example('{"points_per_side": 64}')
def test_segment_everything_params(apis, params):
    _, proposals, _, image = apis
    clean(lambda: proposals.segment_everything(image, "grabcut", params))


@FUZZ
@given(st.text(max_size=80) | JSON, JSON_TEXT | TEXT_LIKE.map(json.dumps))
@example("dog", DEEP)
@example("dog", '{"threshold": ' + HUGE + "}")
def test_segment_text_text_and_params(apis, text, params):
    _, proposals, _, image = apis
    clean(lambda: proposals.segment_text(image, "grabcut", text, params))


NUMBER = (st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.none()
          | st.text(max_size=6) | st.booleans())


@FUZZ
@given(JSON_TEXT, NUMBER, NUMBER, NUMBER, NUMBER)
@example(DEEP, 0, 0, 0, 0)
@example('{"objects": [{"id": 1, "frame": 0, "points": [[1, 1]]}]}', 0, 1e308, 0, 50)
@example('{"objects": [{"id": 1, "frame": ' + HUGE + ', "box": [0, 0, 5, 5]}]}', 0, 0, 0, 0)
def test_track_parameters(apis, prompts, stride, start_s, end_s, max_frames):
    _, _, track, _ = apis
    clean(lambda: track.track(None, "grabcut", prompts, stride, start_s, end_s, max_frames))


def test_models_takes_nothing_and_answers_rows(apis):
    segment, _, _, _ = apis
    rows = segment.models()
    assert [row["model_id"] for row in rows] == ["grabcut"]


@FUZZ
@given(JSON | st.text(max_size=40).map(lambda t: "data:image/png;base64," + t)
       | st.sampled_from(["http://127.0.0.1/x.png", "https://a/b", "/etc/passwd", "data:"]),
       st.sampled_from(["segment", "segment_everything", "segment_text", "track"]))
def test_mcp_file_arguments(value, tool):
    config = AppConfig(models=("grabcut",), default_model="grabcut", max_file_size="1mb")
    try:
        check_file_argument(config, tool, value)
    except ValueError as exc:
        assert str(exc).endswith(".") and "Traceback" not in str(exc)
