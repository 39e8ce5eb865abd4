"""The API's prompt JSON: bounded (size, depth, points) and strictly typed, each failure a
``PromptError`` that names the field or the limit."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from sam_backends import PromptError, Prompts
from sam_backends.prompts.prompt_parsing import (
    PROMPT_KEYS,
    PromptLimits,
    json_depth,
    parse_prompts,
    prompts_from_json,
)


def parse(data, **limits):
    return parse_prompts(json.dumps(data), PromptLimits(**limits))


def test_a_valid_prompt_round_trips():
    prompts = parse({"points": [[10, 20.5], [3, 4]], "labels": [1, 0], "box": [1, 2, 30, 40],
                     "multimask": True})
    assert prompts == Prompts(points=[(10, 20.5), (3, 4)], labels=[1, 0], box=(1, 2, 30, 40),
                              multimask=True)
    assert parse({"points": [[1, 2]]}).labels == (1,)  # labels default to foreground
    assert parse({"box": None}).is_empty and parse_prompts("").is_empty
    assert parse_prompts(None).is_empty and parse_prompts("  \n").is_empty
    assert PROMPT_KEYS == ("points", "labels", "box", "multimask")


def test_ui_api_still_exports_the_parser():
    from ui import api

    assert api.parse_prompts is parse_prompts and api.PROMPT_KEYS is PROMPT_KEYS


# --- item 1: size limits --------------------------------------------------------------------


def test_limits_defaults_and_validation():
    limits = PromptLimits()
    assert (limits.max_points, limits.max_json_chars, limits.max_depth) == (64, 65536, 64)
    for bad in (0, -1, 1.5, True, "64"):
        with pytest.raises(ValueError, match="positive whole number"):
            PromptLimits(max_points=bad)


def test_too_many_points_is_refused_quickly_with_the_limit_named():
    points = [[1, 1]] * 20_000
    start = time.perf_counter()
    with pytest.raises(PromptError, match=r"At most 64 points per object.*20,000"):
        parse({"points": points}, max_json_chars=10**7)
    assert time.perf_counter() - start < 1.0
    parse({"points": [[1, 1]] * 64})  # exactly the limit is fine
    with pytest.raises(PromptError, match="At most 5 points"):
        parse({"points": [[1, 1]] * 6}, max_points=5)


def test_the_20000_point_request_is_refused_by_its_size():
    text = json.dumps({"points": [[123.25, 456.5]] * 20_000, "labels": [1] * 20_000})
    assert len(text) > 270_000
    with pytest.raises(PromptError, match=r"characters, more than the limit of 65,536"):
        parse_prompts(text)
    with pytest.raises(PromptError, match="limit of 100 "):
        parse_prompts(" " * 101, PromptLimits(max_json_chars=100))


def test_labels_longer_than_points_are_refused_before_reading_them():
    with pytest.raises(PromptError, match=r"1 point\(s\) but 100,000 label\(s\)"):
        prompts_from_json({"points": [[1, 2]], "labels": [1] * 100_000})


# --- item 7: strict types -------------------------------------------------------------------


@pytest.mark.parametrize("data, message", [
    ({"multimask": "false"}, r'multimask must be a JSON boolean.*string "false"'),
    ({"multimask": 1}, "multimask must be a JSON boolean"),
    ({"multimask": None}, "multimask must be a JSON boolean"),
    ({"points": [["100", 5]]}, r'points\[0\]\[0\] must be a JSON number.*string "100"'),
    ({"points": [[1, 2], [3, 4], [5, 6], [7, True]]}, r"points\[3\]\[1\] must be a JSON number.*"
                                                      r"boolean \(true\)"),
    ({"points": [[None, 2]]}, r"points\[0\]\[0\] must be a JSON number, got null"),
    ({"points": False}, "points must be a list of .x, y. pairs, got a boolean"),
    ({"points": {"x": 1}}, "points must be a list"),
    ({"points": [[1, 2, 3]]}, r"points\[0\] must be an \[x, y\] list of 2 numbers"),
    ({"points": [5]}, r"points\[0\] must be an \[x, y\] list"),
    ({"points": [[1, 2]], "labels": [True]}, r"labels\[0\] must be the integer 1.*boolean"),
    ({"points": [[1, 2]], "labels": ["1"]}, r"labels\[0\] must be the integer 1"),
    ({"points": [[1, 2]], "labels": [1.0]}, r"labels\[0\] must be the integer 1"),
    ({"points": [[1, 2]], "labels": [2]}, r"labels\[0\] must be the integer 1"),
    ({"points": [[1, 2]], "labels": 1}, "labels must be a list"),
    ({"box": [1, 2, 3]}, r"box must be \[x0, y0, x1, y1\] \(4 numbers\) or null"),
    ({"box": "1,2,3,4"}, r"box must be .*string"),
    ({"box": [1, 2, "3", 4]}, r"box\[2\] must be a JSON number"),
    ({"box": [1, 2, False, 4]}, r"box\[2\] must be a JSON number"),
    ({"dots": []}, "Unknown prompt key"),
])
def test_strict_types_name_the_field(data, message):
    with pytest.raises(PromptError, match=message):
        parse(data)


@pytest.mark.parametrize("text", ["[1, 2]", '"points"', "3", "null", "true"])
def test_the_prompts_must_be_an_object(text):
    with pytest.raises(PromptError, match="must be a JSON object"):
        parse_prompts(text)


def test_not_text():
    with pytest.raises(PromptError, match="must be JSON text"):
        parse_prompts(b'{"box": [1, 2, 3, 4]}')  # type: ignore[arg-type]


def test_prompts_refuse_strings_and_booleans_as_coordinates():
    for bad in ("100", True, np.bool_(True), b"12"):
        with pytest.raises(PromptError, match="must be a number"):
            Prompts(points=[(bad, 1)], labels=[1])
        with pytest.raises(PromptError, match="must be a number"):
            Prompts(box=(0, 0, bad, 10))
    assert Prompts(points=[(np.float32(2.5), np.int64(3))], labels=[1]).points == ((2.5, 3.0),)
    with pytest.raises(PromptError, match="finite"):
        Prompts(points=[(10**400, 1)], labels=[1])  # too large for a float: not OverflowError


# --- item 8: the generic path ---------------------------------------------------------------


def test_deep_nesting_is_refused_before_parsing():
    text = "[" * 100_000 + "]" * 100_000
    start = time.perf_counter()
    with pytest.raises(PromptError, match=r"nests 100000 levels deep.*limit of 64"):
        parse_prompts(text, PromptLimits(max_json_chars=10**6))
    assert time.perf_counter() - start < 1.0
    deep = '{"points": ' + "[" * 70 + "]" * 70 + "}"
    with pytest.raises(PromptError, match="nests 71 levels"):
        parse_prompts(deep)


def test_depth_ignores_brackets_inside_strings():
    assert json_depth('{"points": [[1, 2]]}') == 3
    assert json_depth('{"a": "[[[[[[[[[[", "b": "\\"[[["}') == 1
    assert json_depth("]]]][") == 1
    assert json_depth('"unterminated [[[[') == 0


def test_huge_numbers_are_refused_with_a_message():
    digits = "9" * 5000
    with pytest.raises(PromptError, match="5,000 characters"):
        parse_prompts('{"points": [[' + digits + ", 1]]}")
    with pytest.raises(PromptError, match="too large"):
        parse_prompts('{"points": [[1e999, 1]]}')
    with pytest.raises(PromptError, match="not a valid JSON number"):
        parse_prompts('{"points": [[NaN, 1]]}')
    with pytest.raises(PromptError, match="not a valid JSON number"):
        parse_prompts('{"box": [0, 0, Infinity, 1]}')
    with pytest.raises(PromptError, match="coordinates must be finite"):
        prompts_from_json({"points": [[10**400, 1]]})


@pytest.mark.parametrize("text", ["{not json", '{"points": [[1, 2]', "\x00", '{"a": "\\x"}'])
def test_malformed_json(text):
    with pytest.raises(PromptError, match="not valid JSON"):
        parse_prompts(text)


def test_max_points_flag(monkeypatch):
    import app

    monkeypatch.delenv("SPACE_ID", raising=False)
    assert app.config_from_args([]).max_points == 64
    assert app.config_from_args(["--max-points", "10"]).max_points == 10
    assert "--max-points" in app.build_parser().format_help()
    with pytest.raises(ValueError, match="--max-points must be at least 1"):
        app.config_from_args(["--max-points", "0"])
