"""Cut out an object named in words: an LLM finds it, Segment Anything cuts it out.

    python examples/llm_client.py --image dog.jpg --object "the dog" \\
        --llm-url https://api.openai.com/v1 --llm-model gpt-4o-mini --out dog.png

1. The image (as a data: URI) and its size in pixels go to any OpenAI-compatible chat endpoint
   (``POST {--llm-url}/chat/completions``), which is asked for a box around the object, or a
   point on it, as JSON constrained by a JSON schema (``response_format``).
2. The answer is parsed strictly: one JSON object with exactly one of "point" [x, y] and
   "box" [x0, y0, x1, y1], numbers only, inside the image, no other keys. Why so strict: a
   model's answer is free text, and a repaired or guessed number would cut the wrong thing
   out without a word. An invalid answer is sent back once with the reason; a second one
   ends the run.
3. The location goes to the workbench's REST API (``POST {--api-url}/v1/segment``) and the
   cut-out (a PNG, transparent outside the object) is saved to ``--out``.

Coordinates are pixels of the image as displayed (EXIF rotation applied, as the server does):
x to the right, y down, origin at the top-left corner. Keys: ``--llm-key`` or env
``LLM_API_KEY`` (else ``OPENAI_API_KEY``; none for a local server without keys), and
``--api-key`` or env ``SAMWB_API_KEY``. Every failure prints one line and exits with 1.
Needs httpx, pydantic and Pillow (all in the workbench's requirements).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Sequence

import httpx
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    model_validator,
)

DEFAULT_API_URL = "http://127.0.0.1:7860"
WEB_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp",
               "GIF": "image/gif"}  # what chat endpoints take; others are sent as PNG
Number = StrictInt | StrictFloat


class ClientError(Exception):
    """A failure to report as one line (the script then exits with 1)."""


class AnswerError(ClientError):
    """The LLM's answer is not a valid location; the message is also what the model is told."""


class LocationAnswer(BaseModel):
    """The JSON the LLM must answer: exactly one of ``point`` and ``box`` (the other absent or
    null), numbers only, no other keys."""

    model_config = ConfigDict(extra="forbid", strict=True)
    point: Annotated[list[Number], Field(min_length=2, max_length=2)] | None = None
    box: Annotated[list[Number], Field(min_length=4, max_length=4)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> LocationAnswer:
        if (self.point is None) == (self.box is None):
            raise ValueError('give exactly one of "point" and "box" (the other null)')
        return self


@dataclass(frozen=True)
class Location:
    """A point [x, y] or a box [x0, y0, x1, y1] in image pixels, checked against the image."""

    kind: str  # "point" or "box"
    values: tuple[float, ...]

    def prompt(self) -> dict[str, Any]:
        """The object prompt of a ``/v1/segment`` request."""
        if self.kind == "point":
            return {"points": [list(self.values)], "labels": [1]}
        return {"box": list(self.values)}


@dataclass(frozen=True)
class PreparedImage:
    """The bytes sent to both services (the same ones, so both see the same pixels)."""

    data: bytes
    mime: str
    width: int
    height: int

    @property
    def data_uri(self) -> str:
        return f"data:{self.mime};base64," + base64.b64encode(self.data).decode("ascii")


def prepare_image(path: Path) -> PreparedImage:
    """Read ``path``; re-encode as PNG only when needed (EXIF rotation, a format chat
    endpoints do not take), so that the LLM and the server see the same upright pixels."""
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            rotated = image.getexif().get(0x0112, 1) != 1  # the EXIF Orientation tag
            if image.format in WEB_FORMATS and not rotated:
                return PreparedImage(data, WEB_FORMATS[image.format], *image.size)
            upright = ImageOps.exif_transpose(image)
            buffer = io.BytesIO()
            upright.convert("RGBA" if "A" in upright.getbands() else "RGB").save(buffer, "PNG")
            return PreparedImage(buffer.getvalue(), "image/png", *upright.size)
    except OSError as exc:  # includes UnidentifiedImageError
        what = "is not an image Pillow can read" if isinstance(exc, UnidentifiedImageError) \
            else f"cannot be read ({exc.strerror or exc})"
        raise ClientError(f"--image {path} {what}.") from None


def answer_schema(width: int, height: int) -> dict[str, Any]:
    """The JSON schema of ``LocationAnswer`` for ``response_format`` (OpenAI's strict mode:
    every key required, the unused one null, no other keys)."""

    def pair(count: int, what: str) -> dict[str, Any]:
        return {"anyOf": [{"type": "array", "items": {"type": "number", "minimum": 0},
                           "minItems": count, "maxItems": count, "description": what},
                          {"type": "null"}]}

    return {
        "type": "object",
        "properties": {
            "point": pair(2, f"[x, y] on the object; 0 <= x < {width}, 0 <= y < {height}"),
            "box": pair(4, f"[x0, y0, x1, y1] around the object; x1 <= {width}, "
                           f"y1 <= {height}"),
        },
        "required": ["point", "box"],
        "additionalProperties": False,
    }


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    if duplicated:
        raise ValueError(f"duplicate key {duplicated[0]!r}")
    return dict(pairs)


def parse_location(text: str, width: int, height: int) -> Location:
    """The location in the LLM's answer ``text``, or ``AnswerError`` saying what is wrong.

    The whole text must be one JSON object (no code fence, no prose, no NaN, no repeated key)
    that matches ``LocationAnswer``, with a point inside the image (0 <= x < width,
    0 <= y < height) or a box inside it (x0 < x1 <= width, y0 < y1 <= height, >= 1 pixel).
    """
    try:
        data = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates)
    except ValueError as exc:  # JSONDecodeError included
        raise AnswerError(f"the answer is not one JSON object ({exc})") from None
    if not isinstance(data, dict):
        raise AnswerError(f"the answer is JSON {type(data).__name__}, not an object")
    try:
        answer = LocationAnswer.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'answer'}: {error['msg']}"
            for error in exc.errors(include_url=False)[:3])
        raise AnswerError(f"the answer does not match the schema ({problems})") from None
    if answer.point is not None:
        x, y = answer.point
        if not (0 <= x < width and 0 <= y < height):
            raise AnswerError(f"point [{x:g}, {y:g}] is outside the {width}x{height} image "
                              f"(0 <= x < {width}, 0 <= y < {height})")
        return Location("point", (float(x), float(y)))
    x0, y0, x1, y1 = answer.box
    if not (0 <= x0 and 0 <= y0 and x1 <= width and y1 <= height):
        raise AnswerError(f"box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] reaches outside the "
                          f"{width}x{height} image")
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise AnswerError(f"box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] is empty or inverted "
                          "(it needs x0 < x1 and y0 < y1, at least one pixel each way)")
    return Location("box", (float(x0), float(y0), float(x1), float(y1)))


def ask_messages(image: PreparedImage, thing: str) -> list[dict[str, Any]]:
    """The chat messages asking where ``thing`` is."""
    instructions = (
        f"The image is {image.width} pixels wide and {image.height} pixels high. Coordinates "
        "are pixels of this image: x from the left edge to the right, y from the top edge "
        f"down, (0, 0) the top-left corner. Locate {thing} and answer with only a JSON "
        'object: {"box": [x0, y0, x1, y1], "point": null} for a box around it (top-left and '
        'bottom-right corners), or {"point": [x, y], "box": null} for a point on it when a '
        "box would not fit it well. Numbers only, no other keys, no other text.")
    return [
        {"role": "system", "content": "You locate objects in images for a segmentation tool "
                                      "and answer with JSON only."},
        {"role": "user", "content": [
            {"type": "text", "text": instructions},
            {"type": "image_url", "image_url": {"url": image.data_uri}},
        ]},
    ]


def _error_text(response: httpx.Response) -> str:
    """The message of an error response, in one line (OpenAI's and the workbench's shapes)."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:200] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        parts = [str(error.get("code") or ""), str(error.get("message") or "")]
        if error.get("field"):
            parts.append(f"(field {error['field']})")
        return " ".join(part for part in parts if part)[:300]
    return " ".join(json.dumps(body).split())[:200]


def post_json(http: httpx.Client, url: str, body: dict[str, Any], key: str | None,
              service: str) -> dict[str, Any]:
    """POST ``body`` to ``url``; the JSON answer, or ``ClientError`` naming ``service``."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = http.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise ClientError(f"{service} at {url} could not be reached: {exc}") from None
    if response.status_code != 200:
        raise ClientError(f"{service} answered HTTP {response.status_code}: "
                          f"{_error_text(response)}")
    try:
        data = response.json()
    except ValueError:
        raise ClientError(f"{service} answered something that is not JSON.") from None
    if not isinstance(data, dict):
        raise ClientError(f"{service} answered JSON that is not an object.")
    return data


def answer_text(completion: dict[str, Any]) -> str:
    """The text of the first choice of a chat completion (``AnswerError`` when empty)."""
    try:
        message = completion["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        raise ClientError("The LLM's reply has no choices[0].message; is --llm-url an "
                          "OpenAI-compatible endpoint?") from None
    if message.get("refusal"):
        raise ClientError(f"The LLM refused: {' '.join(str(message['refusal']).split())}")
    content = message.get("content")
    if isinstance(content, list):  # some servers answer with content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str) or not content.strip():
        raise AnswerError("the answer is empty")
    return content


def locate(http: httpx.Client, args: argparse.Namespace, image: PreparedImage) -> Location:
    """Ask the LLM where the object is; one retry, shown the reason, after an invalid answer."""
    messages = ask_messages(image, args.object)
    body: dict[str, Any] = {"model": args.llm_model, "messages": messages, "temperature": 0}
    if args.response_format == "json_schema":
        body["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "object_location", "strict": True,
            "schema": answer_schema(image.width, image.height)}}
    elif args.response_format == "json_object":
        body["response_format"] = {"type": "json_object"}
    url = args.llm_url.rstrip("/") + "/chat/completions"
    for attempt in (1, 2):  # body["messages"] is ``messages``: the retry extends it
        completion = post_json(http, url, body, args.llm_key, "The LLM endpoint")
        text = ""
        try:
            text = answer_text(completion)
            return parse_location(text, image.width, image.height)
        except AnswerError as exc:
            if attempt == 2:
                raise AnswerError(f"The LLM's answer was invalid twice: {exc}.") from None
            messages += [{"role": "assistant", "content": text},
                         {"role": "user", "content": f"That answer was refused: {exc}. Answer "
                                                     "again with only the JSON object."}]
    raise AssertionError("unreachable")


def segment(http: httpx.Client, args: argparse.Namespace, image: PreparedImage,
            location: Location) -> tuple[bytes, dict[str, Any]]:
    """The cut-out PNG and the object record from ``POST /v1/segment``."""
    body: dict[str, Any] = {"image": image.data_uri, "objects": [location.prompt()],
                            "cutout": "full", "overlay": False}
    if args.model:
        body["model"] = args.model
    url = args.api_url.rstrip("/") + "/v1/segment"
    answer = post_json(http, url, body, args.api_key, "The segment API")
    objects = answer.get("objects")
    if not isinstance(objects, list) or not objects:
        raise ClientError("The segment API returned no mask for the location.")
    cutout = objects[0].get("cutout") if isinstance(objects[0], dict) else None
    prefix = "data:image/png;base64,"
    if not isinstance(cutout, str) or not cutout.startswith(prefix):
        raise ClientError("The segment API's answer has no cut-out data: URI.")
    try:
        return base64.b64decode(cutout[len(prefix):], validate=True), objects[0]
    except ValueError:
        raise ClientError("The segment API's cut-out is not valid base64.") from None


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python examples/llm_client.py",
        description="Ask an LLM where an object is, then cut it out with the workbench.")
    parser.add_argument("--image", type=Path, required=True, help="the image file")
    parser.add_argument("--object", required=True, help='what to cut out, e.g. "the dog"')
    parser.add_argument("--llm-url", default=env("LLM_URL"), required=not env("LLM_URL"),
                        help="base URL of an OpenAI-compatible API, e.g. "
                             "https://api.openai.com/v1 (env LLM_URL)")
    parser.add_argument("--llm-key", default=env("LLM_API_KEY") or env("OPENAI_API_KEY"),
                        help="its key (env LLM_API_KEY or OPENAI_API_KEY; none: no header)")
    parser.add_argument("--llm-model", default=env("LLM_MODEL"), required=not env("LLM_MODEL"),
                        help="a vision-capable chat model, e.g. gpt-4o-mini (env LLM_MODEL)")
    parser.add_argument("--response-format", default="json_schema",
                        choices=("json_schema", "json_object", "none"),
                        help="how the answer is constrained (default json_schema; the answer "
                             "is checked strictly either way)")
    parser.add_argument("--api-url", default=env("SAMWB_URL", DEFAULT_API_URL),
                        help=f"the workbench (default {DEFAULT_API_URL}; env SAMWB_URL)")
    parser.add_argument("--api-key", default=env("SAMWB_API_KEY"),
                        help="its REST API key (env SAMWB_API_KEY)")
    parser.add_argument("--model", default=None,
                        help="a segmentation model id from GET /v1/models (default: the "
                             "server's)")
    parser.add_argument("--out", type=Path, default=Path("cutout.png"),
                        help="where the cut-out PNG goes (default cutout.png)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds per HTTP request (default 120)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        image = prepare_image(args.image)
        with httpx.Client(timeout=args.timeout) as http:
            location = locate(http, args, image)
            png, record = segment(http, args, image, location)
        try:
            args.out.write_bytes(png)
        except OSError as exc:
            raise ClientError(f"--out {args.out} cannot be written ({exc.strerror})") from None
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    values = ", ".join(f"{value:g}" for value in location.values)
    score = record.get("score")
    print(f"Saved {args.out}: {args.object} at {location.kind} [{values}]"
          + (f", mask score {score:.3f}" if isinstance(score, (int, float)) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
