"""Prompts sent as JSON text (the public ``/segment`` API) -> ``Prompts``, strictly and bounded.

The text comes from anyone who can reach the server, so it is checked in the order of what is
cheapest to refuse, all before any model work:

1. its size (``PromptLimits.max_json_chars``): a 274 KB prompt once cost 67 s and 7.4 GB;
2. its nesting depth (``PromptLimits.max_depth``), counted by a scan of the brackets outside
   strings, because ``json.loads`` raises ``RecursionError`` on deep nesting;
3. the JSON itself, with number literals bounded (a 5,000-digit integer makes ``json.loads``
   raise a ``ValueError``; ``NaN`` and ``Infinity`` are not JSON and are refused);
4. strict types, field by field (``"multimask": "false"`` is not a boolean, ``"100"`` is not
   a coordinate): every message names the field (``points[3][0]``) and the type expected;
5. the number of points per object (``PromptLimits.max_points``).

Format (all keys optional)::

    {"points": [[x, y], ...], "labels": [1 | 0, ...], "box": [x0, y0, x1, y1] | null,
     "multimask": true | false}

Coordinates are original-image pixels; labels default to all 1 (foreground). Every failure is
a ``PromptError`` whose message says what to send instead.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import PromptError
from ..types import Prompts

PROMPT_KEYS = ("points", "labels", "box", "multimask")
DEFAULT_MAX_POINTS = 64  # far more than any person clicks on one object
DEFAULT_MAX_JSON_CHARS = 65_536  # 64 points need under 2 KB; 64 KiB leaves room for spaces
DEFAULT_MAX_DEPTH = 64  # valid prompts nest 3 deep; json.loads recurses once per level
MAX_NUMBER_DIGITS = 32  # longer number literals are refused before conversion
EXAMPLE = '{"points": [[120, 80]], "labels": [1]}'

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)  # an unterminated string runs to the end
_NOT_BRACKET = re.compile(r"[^\[\]{}]")


@dataclass(frozen=True)
class PromptLimits:
    """Bounds on one prompt request, checked before any model work.

    Attributes:
        max_points: points per object (``--max-points``; the UI enforces the same cap).
        max_json_chars: characters of the prompt JSON text.
        max_depth: nesting levels of ``[`` and ``{`` in the JSON text.
    """

    max_points: int = DEFAULT_MAX_POINTS
    max_json_chars: int = DEFAULT_MAX_JSON_CHARS
    max_depth: int = DEFAULT_MAX_DEPTH

    def __post_init__(self) -> None:
        for name in ("max_points", "max_json_chars", "max_depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"PromptLimits.{name} must be a positive whole number, "
                                 f"got {value!r}.")


def too_many_points_message(count: int, max_points: int) -> str:
    """The one wording of the point cap, so every entrance that refuses it says the same."""
    return (f"At most {max_points} points per object (max_points), got {count:,}; "
            "segment the object with fewer points or a box.")


def parse_prompts(text: str | None, limits: PromptLimits = PromptLimits()) -> Prompts:
    """``Prompts`` from JSON text; an empty text means no prompt (rejected later, per image).

    Raises:
        PromptError: too long or too deep, not JSON, not an object, unknown keys, values of
            the wrong type, or more points than ``limits.max_points``.
    """
    if text is None:
        return prompts_from_json({}, limits)
    if not isinstance(text, str):
        raise PromptError(f"The prompts must be JSON text, got {_kind(text)}; send e.g. "
                          f"{EXAMPLE}.")
    if len(text) > limits.max_json_chars:
        raise PromptError(
            f"The prompts JSON is {len(text):,} characters, more than the limit of "
            f"{limits.max_json_chars:,} (max_json_chars); send at most {limits.max_points} "
            "points per object, without padding."
        )
    if not text.strip():
        return prompts_from_json({}, limits)
    depth = json_depth(text)
    if depth > limits.max_depth:
        raise PromptError(
            f"The prompts JSON nests {depth} levels deep, more than the limit of "
            f"{limits.max_depth} (max_depth); prompts need 3 levels, e.g. {EXAMPLE}."
        )
    return prompts_from_json(_loads(text), limits)


def prompts_from_json(data: Any, limits: PromptLimits = PromptLimits()) -> Prompts:
    """``Prompts`` from an already decoded JSON value (dict, list, str, number, bool, None).

    Raises:
        PromptError: as ``parse_prompts``, for everything after the JSON decoding.
    """
    if not isinstance(data, dict):
        raise PromptError(f"The prompts must be a JSON object such as {EXAMPLE}, got "
                          f"{_kind(data)}.")
    unknown = sorted(str(key) for key in data if key not in PROMPT_KEYS)
    if unknown:
        shown = ", ".join(repr(key)[:40] for key in unknown[:5])
        raise PromptError(f"Unknown prompt key(s) {shown}; use {', '.join(PROMPT_KEYS)}.")
    points = _points(data.get("points"), limits.max_points)
    labels = _labels(data.get("labels"), len(points))
    box = _box(data.get("box"))
    multimask = data.get("multimask", False)
    if not isinstance(multimask, bool):
        raise PromptError(f"multimask must be a JSON boolean (true or false), got "
                          f"{_kind(multimask)}.")
    return Prompts(points=points, labels=labels, box=box, multimask=multimask)


def json_depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` outside JSON strings (cheap: no parsing, no recursion)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(0, depth - 1)
    return deepest


# --- decoding -------------------------------------------------------------------------------


def loads_bounded(text: str, what: str, example: str,
                  max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """JSON text decoded with the prompt parser's safety bounds, for any small JSON input
    (e.g. the "everything" and text-prompt parameters): nesting deeper than ``max_depth`` and
    number literals over ``MAX_NUMBER_DIGITS`` characters are refused before ``json.loads``
    could recurse or build a huge integer, as are NaN and Infinity.

    Raises:
        PromptError: naming ``what`` ("The parameters") and showing ``example``.
    """
    depth = json_depth(text)
    if depth > max_depth:
        raise PromptError(f"{what} nest {depth} levels deep, more than the limit of "
                          f"{max_depth}; send e.g. {example}.")

    def number(literal: str) -> float | int:
        if len(literal) > MAX_NUMBER_DIGITS:
            raise PromptError(f"{what} contain a number written with {len(literal):,} "
                              f"characters ({literal[:12]}...); numbers are at most "
                              f"{MAX_NUMBER_DIGITS} characters long.")
        value = float(literal) if any(c in literal for c in ".eE") else int(literal)
        if isinstance(value, float) and not math.isfinite(value):
            raise PromptError(f"The number {literal[:40]} in {what.lower()} is too large.")
        return value

    def constant(name: str) -> Any:
        raise PromptError(f"{name} is not a valid JSON number; {what.lower()} take finite "
                          "numbers.")

    try:
        return json.loads(text, parse_int=number, parse_float=number, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise PromptError(f"{what} are not valid JSON ({exc.msg} at character {exc.pos}); "
                          f"send e.g. {example}.") from None
    except RecursionError:  # the depth scan should prevent this; keep the message if not
        raise PromptError(f"{what} nest too deeply; send e.g. {example}.") from None



def _loads(text: str) -> Any:
    try:
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                          parse_constant=_parse_constant)
    except json.JSONDecodeError as exc:
        raise PromptError(
            f"The prompts are not valid JSON ({exc.msg} at character {exc.pos}); send e.g. "
            f"{EXAMPLE}."
        ) from None
    except RecursionError:  # the depth scan should prevent this; keep the message if not
        raise PromptError(f"The prompts JSON nests too deeply; send e.g. {EXAMPLE}.") from None


def _check_digits(literal: str) -> None:
    if len(literal) > MAX_NUMBER_DIGITS:
        raise PromptError(
            f"The prompts contain a number written with {len(literal):,} characters "
            f"({literal[:12]}...); coordinates are pixels, at most {MAX_NUMBER_DIGITS} "
            "characters long."
        )


def _parse_int(literal: str) -> int:
    _check_digits(literal)
    return int(literal)


def _parse_float(literal: str) -> float:
    _check_digits(literal)
    value = float(literal)
    if not math.isfinite(value):
        raise PromptError(f"The number {literal} is too large; coordinates must be finite "
                          "pixel positions.")
    return value


def _parse_constant(name: str) -> Any:
    raise PromptError(f"{name} is not a valid JSON number; coordinates must be finite numbers.")


# --- strict types ---------------------------------------------------------------------------


def _kind(value: Any) -> str:
    """How a JSON value reads in a message: 'the string "false"', 'a boolean (true)'..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, str):
        shown = value if len(value) <= 20 else value[:20] + "..."
        return f"the string {json.dumps(shown)}"
    if isinstance(value, int) and abs(value) >= 10**MAX_NUMBER_DIGITS:
        return "a number too large for a pixel coordinate"  # repr of huge ints raises
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return f"a {type(value).__name__}"


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PromptError(f"{field} must be a JSON number, got {_kind(value)}.")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise PromptError(f"{field} is {_kind(value)}; coordinates must be finite numbers.")
    return number


def _points(value: Any, max_points: int) -> list[tuple[float, float]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PromptError(f"points must be a list of [x, y] pairs, got {_kind(value)}.")
    if len(value) > max_points:
        raise PromptError(too_many_points_message(len(value), max_points))
    points = []
    for i, point in enumerate(value):
        if not isinstance(point, list) or len(point) != 2:
            raise PromptError(f"points[{i}] must be an [x, y] list of 2 numbers, got "
                              f"{_kind(point)}.")
        points.append((_number(point[0], f"points[{i}][0]"), _number(point[1], f"points[{i}][1]")))
    return points


def _labels(value: Any, count: int) -> list[int]:
    if value is None:
        return [1] * count
    if not isinstance(value, list):
        raise PromptError(f"labels must be a list of 1 (foreground) or 0 (background), got "
                          f"{_kind(value)}.")
    if len(value) != count:
        raise PromptError(f"Got {count} point(s) but {len(value):,} label(s); give exactly one "
                          "label (1 = foreground, 0 = background) per point.")
    for i, label in enumerate(value):
        if isinstance(label, bool) or not isinstance(label, int) or label not in (0, 1):
            raise PromptError(f"labels[{i}] must be the integer 1 (foreground) or 0 "
                              f"(background), got {_kind(label)}.")
    return list(value)


def _box(value: Any) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 4:
        raise PromptError(f"box must be [x0, y0, x1, y1] (4 numbers) or null, got "
                          f"{_kind(value)}.")
    x0, y0, x1, y1 = (_number(v, f"box[{i}]") for i, v in enumerate(value))
    return (x0, y0, x1, y1)
