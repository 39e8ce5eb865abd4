"""Property tests (hypothesis, bounded): whatever arrives from outside, each entrance either
returns its value or raises its own typed error, never anything else.

    prompt parser      arbitrary JSON values and text -> Prompts | PromptError
    image loader       arbitrary and mutated image bytes -> RGB uint8 H x W x 3 | ImageError
    UI event payloads  arbitrary dicts -> the value | UserError
    /track prompts     arbitrary JSON values and text -> entries | PromptError
"""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from PIL import Image, features  # noqa: E402

from sam_backends import ImageError, PromptError, Prompts  # noqa: E402
from sam_backends.images import load_image  # noqa: E402
from sam_backends.prompts.prompt_parsing import (  # noqa: E402
    PROMPT_KEYS,
    PromptLimits,
    parse_prompts,
    prompts_from_json,
)
from workbench.errors import UserError  # noqa: E402
from workbench.event_payloads import (  # noqa: E402
    PointClick,
    box_from_event,
    index_from_event,
    object_id_from_event,
    point_from_event,
)

FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMITS = PromptLimits(max_points=8, max_json_chars=4096, max_depth=16)

SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8))
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=6), children, max_size=5),
    max_leaves=25,
)
NUMBERS = st.integers(-10, 2000) | st.floats(-10, 2000) | SCALARS
# Values shaped like prompts, so the parser's deeper checks are reached often.
PROMPT_LIKE = st.fixed_dictionaries({}, optional={
    "points": st.lists(st.lists(NUMBERS, min_size=1, max_size=3), max_size=10) | JSON,
    "labels": st.lists(st.sampled_from([0, 1, True, 2, "1", None, 1.0]), max_size=10) | JSON,
    "box": st.lists(NUMBERS, min_size=3, max_size=5) | JSON,
    "multimask": st.booleans() | JSON,
})


def check_prompts(call):
    try:
        result = call()
    except PromptError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        return
    assert isinstance(result, Prompts)
    assert len(result.points) <= LIMITS.max_points


@FUZZ
@given(JSON | PROMPT_LIKE)
def test_parser_on_arbitrary_json_values(data):
    check_prompts(lambda: prompts_from_json(data, LIMITS))


@FUZZ
@given(JSON | PROMPT_LIKE)
def test_parser_on_arbitrary_json_text(data):
    try:
        text = json.dumps(data)  # NaN / Infinity included: Python writes them, JSON does not
    except ValueError:
        return
    check_prompts(lambda: parse_prompts(text, LIMITS))


JSONISH = '[]{}",:0123456789.eE-+ tfnrulase\\'  # the characters JSON is made of
TEXT = (st.text(max_size=300) | st.text(alphabet=JSONISH, max_size=300)
        | st.builds(lambda key, body: "{" + key + body,
                    st.sampled_from([f'"{k}": ' for k in PROMPT_KEYS]),
                    st.text(alphabet="[]{},0123456789.-e ", max_size=80)))


@FUZZ
@given(TEXT)
def test_parser_on_arbitrary_text(text):
    check_prompts(lambda: parse_prompts(text, LIMITS))


# --- images ---------------------------------------------------------------------------------


def _sample(fmt: str) -> bytes:
    rng = np.random.default_rng(len(fmt))
    image = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    if fmt == "GIF":
        image = image.convert("P")
    data = io.BytesIO()
    image.save(data, fmt)
    return data.getvalue()


FORMATS = ["PNG", "JPEG", "GIF", "TIFF", "BMP"] + (["WEBP"] if features.check("webp") else [])
SAMPLES = {fmt: _sample(fmt) for fmt in FORMATS}


def check_image(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about odd chunks, EXIF, palettes...
        try:
            array = load_image(data, max_pixels=250_000)
        except ImageError as exc:
            assert str(exc)
            return
    assert isinstance(array, np.ndarray) and array.dtype == np.uint8
    assert array.ndim == 3 and array.shape[2] == 3 and array.flags.c_contiguous


@st.composite
def mutated(draw):
    data = bytearray(SAMPLES[draw(st.sampled_from(FORMATS))])
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 16))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at:]
    return bytes(data)


@FUZZ
@given(st.binary(max_size=512))
def test_image_loader_on_arbitrary_bytes(data):
    check_image(data)


@FUZZ
@given(mutated())
def test_image_loader_on_mutated_images(data):
    check_image(data)


def test_the_samples_load():
    for fmt, data in SAMPLES.items():
        assert load_image(data).shape == (6, 8, 3), fmt


# --- UI event payloads ----------------------------------------------------------------------

PAYLOAD = (st.dictionaries(st.sampled_from(["x", "y", "button", "shift", "box", "index", "id"])
                           | st.text(max_size=4), JSON | NUMBERS, max_size=6) | JSON)


@FUZZ
@given(PAYLOAD, st.integers(0, 5), st.lists(st.integers(1, 6), max_size=4))
def test_event_payload_helpers(data, count, known):
    for call, kind in ((lambda: point_from_event(data), PointClick),
                       (lambda: box_from_event(data), tuple),
                       (lambda: index_from_event(data, count), int),
                       (lambda: object_id_from_event(data, known), int)):
        try:
            value = call()
        except UserError as exc:
            assert str(exc)
            continue
        assert isinstance(value, kind)
    try:
        click = point_from_event(data)
    except UserError:
        return
    assert np.isfinite([click.x, click.y]).all()


# --- the /track API's prompts ----------------------------------------------------------------

def track_entry(ids, frames, coords, prompts=st.nothing()):
    points = st.lists(st.lists(coords, min_size=2, max_size=2), min_size=1, max_size=10)
    well_formed = (points.map(lambda pts: {"points": pts, "labels": [1] * len(pts)})
                   | st.lists(coords, min_size=4, max_size=4).map(lambda box: {"box": box}))
    return st.builds(
        lambda head, prompt, name: {**head, **prompt, **name},
        st.fixed_dictionaries({"id": ids, "frame": frames}),
        well_formed | prompts,
        st.fixed_dictionaries({}, optional={"name": st.text(max_size=90)}),
    )


# Plausible entries (most are accepted, so what comes out is checked too) and broken ones.
PLAUSIBLE = track_entry(st.integers(1, 12), st.integers(0, 50), st.floats(0, 500))
BROKEN = track_entry(st.integers(-1, 12) | NUMBERS, st.integers(-1, 50) | NUMBERS,
                     st.floats(0, 500) | NUMBERS, PROMPT_LIKE)
TRACK_LIKE = st.one_of(
    st.fixed_dictionaries({"objects": st.lists(PLAUSIBLE, min_size=1, max_size=4)}),
    st.fixed_dictionaries({"objects": st.lists(PLAUSIBLE | BROKEN | JSON, max_size=6) | JSON}),
    JSON,
)


def check_track_prompts(text):
    from ui.video.api import MAX_OBJECTS, parse_track_prompts
    from workbench.objects import PromptSet

    try:
        entries = parse_track_prompts(text, LIMITS)
    except PromptError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        return
    assert entries and len({entry[0] for entry in entries}) <= MAX_OBJECTS
    for object_id, name, frame, prompts in entries:
        assert isinstance(object_id, int) and object_id >= 1
        assert isinstance(frame, int) and frame >= 0
        assert name is None or (isinstance(name, str) and len(name) <= 80)
        assert isinstance(prompts, PromptSet) and not prompts.is_empty
        assert len(prompts.points) <= LIMITS.max_points


@FUZZ
@given(TRACK_LIKE)
def test_track_prompts_on_json_values(data):
    check_track_prompts(json.dumps(data))


@FUZZ
@given(st.text(max_size=300))
def test_track_prompts_on_arbitrary_text(text):
    check_track_prompts(text)
