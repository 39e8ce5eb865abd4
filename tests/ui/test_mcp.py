"""``python app.py --mcp``: the ``/segment`` and ``/models`` endpoints as MCP tools.

The real app (GrabCut only: no weights, fast) is started with the MCP server on and driven by
the real ``mcp`` client over streamable HTTP, as an agent would: list the tools, read their
descriptions and schemas, call them. Images go in as data URIs: the HTTP guard refuses file
references that are URLs (the server never fetches a URL a caller names).
"""

from __future__ import annotations

import ast
import asyncio
import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from app_harness import running_app
from PIL import Image

mcp = pytest.importorskip("mcp", reason="the MCP tests need: pip install mcp==1.30.0")

from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from workbench.config import AppConfig  # noqa: E402

CALL_TIMEOUT_S = 60
HEIGHT, WIDTH = 40, 60
BOX = [15, 5, 45, 35]  # around the bright square at x 20..39, y 10..29
MAX_FILE_MB = 8  # the app's upload limit here: above the MCP library's own 4 MiB messages


def png_data_uri() -> str:
    """A dark 60x40 image with a bright 20x20 square, as a PNG data URI."""
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[10:30, 20:40] = 220
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@pytest.fixture(scope="module")
def mcp_url():
    config = AppConfig(models=("grabcut",), default_model="grabcut", examples_dir=None,
                       mcp_server=True, max_file_size=f"{MAX_FILE_MB}mb")
    with running_app(config) as running:
        assert running.demo.mcp_server, getattr(running.demo, "mcp_error", "MCP server is off")
        yield running.url + "gradio_api/mcp/"


def with_session(url: str, work) -> Any:
    """Run ``await work(session)`` in a fresh MCP client session, bounded in time."""
    import httpx

    async def main() -> Any:
        async with httpx.AsyncClient(timeout=CALL_TIMEOUT_S) as http:
            async with streamable_http_client(url, http_client=http) as (read, write, _):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await work(session)

    return asyncio.run(asyncio.wait_for(main(), CALL_TIMEOUT_S))


def find_result(content: list[Any]) -> dict[str, Any]:
    """The segment result dict in a tool's text content. Gradio writes each output with
    ``str()``, so it is a Python literal (single quotes), not JSON; both are accepted."""
    for item in content:
        if item.type != "text":
            continue
        for parse in (json.loads, ast.literal_eval):
            try:
                value = parse(item.text)
            except (ValueError, SyntaxError):
                continue
            for candidate in (value if isinstance(value, (list, tuple)) else [value]):
                if isinstance(candidate, dict) and "masks" in candidate:
                    return candidate
    raise AssertionError(f"no segment result in {content!r}")


def test_flag_turns_the_mcp_server_on():
    from app import config_from_args

    assert config_from_args([]).mcp_server is False
    assert config_from_args(["--mcp"]).mcp_server is True


def test_tools_are_listed_with_descriptions_for_a_model(mcp_url):
    async def work(session):
        return (await session.list_tools()).tools

    tools = {tool.name: tool for tool in with_session(mcp_url, work)}
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    mcp_part = readme[readme.index("**MCP**"):readme.index("## Evaluate models")]
    listed = set(re.findall(r"`(\w+)`", mcp_part.split("(video)")[0].split("sse`):")[1]))
    assert set(tools) == listed, "README lists the MCP tools that exist"
    segment = tools["segment"]
    for phrase in ("pixels", "top-left", "data URI", "COCO RLE", "[x0, y0, x1, y1]"):
        assert phrase in segment.description, phrase
    schema = segment.inputSchema
    assert set(schema["properties"]) == {"image", "model_id", "prompts"}  # no gr.Request
    assert schema["required"] == ["image"]
    assert "data URI" in schema["properties"]["image"]["description"]
    assert "model_id" in tools["models"].description


def test_segment_tool_returns_masks(mcp_url):
    async def work(session):
        return await session.call_tool("segment", {
            "image": png_data_uri(), "model_id": "grabcut", "prompts": json.dumps({"box": BOX})})

    answer = with_session(mcp_url, work)
    assert not answer.isError, answer.content
    result = find_result(answer.content)
    assert result["image"]["width"] == WIDTH and result["image"]["height"] == HEIGHT
    best = result["masks"][result["best"]]
    assert best["segmentation"]["size"] == [HEIGHT, WIDTH]
    x, y, w, h = best["bbox"]
    assert BOX[0] <= x and x + w <= BOX[2] and BOX[1] <= y and y + h <= BOX[3]


def test_segment_tool_with_progress_returns_the_cutout_image(mcp_url):
    """With a progress token (as chat clients send) every output is its own content item, and
    the cut-out comes back as an MCP image: an RGBA PNG, transparent outside the object."""
    notes: list[str | None] = []

    async def progress(_done: float, _total: float | None, message: str | None) -> None:
        notes.append(message)

    async def work(session):
        return await session.call_tool(
            "segment", {"image": png_data_uri(), "model_id": "grabcut",
                        "prompts": json.dumps({"points": [[30, 20]], "labels": [1],
                                               "box": BOX})},
            progress_callback=progress)

    answer = with_session(mcp_url, work)
    assert not answer.isError, answer.content
    assert find_result(answer.content)["masks"]
    images = [item for item in answer.content if item.type == "image"]
    assert len(images) == 1 and images[0].mimeType == "image/png"
    cutout = np.asarray(Image.open(io.BytesIO(base64.b64decode(images[0].data))))
    assert cutout.shape == (HEIGHT, WIDTH, 4)
    assert cutout[20, 30, 3] == 255 and cutout[2, 2, 3] == 0
    assert notes  # progress notifications arrived


def test_models_tool_lists_grabcut(mcp_url):
    async def work(session):
        return await session.call_tool("models", {})

    answer = with_session(mcp_url, work)
    assert not answer.isError, answer.content
    text = " ".join(item.text for item in answer.content if item.type == "text")
    rows = ast.literal_eval(text)
    assert [row["model_id"] for row in rows] == ["grabcut"] and rows[0]["present"] is True


@pytest.mark.parametrize("arguments, words", [
    ({"prompts": json.dumps({"box": [0, 0, 500, 35]})}, "outside"),  # past the 60-pixel width
    ({"prompts": "{not json"}, "json"),
    ({"image": "http://127.0.0.1:9/dog.png"}, ""),  # URLs are refused, never fetched
])
def test_bad_calls_are_tool_errors(mcp_url, arguments, words):
    async def work(session):
        return await session.call_tool("segment", {
            "image": png_data_uri(), "model_id": "grabcut", **arguments})

    answer = with_session(mcp_url, work)
    assert answer.isError
    assert words in " ".join(item.text for item in answer.content).lower()


def png_with_padding(padding: int) -> bytes:
    """The test image as a PNG of about ``padding`` bytes more: a private ancillary chunk
    (``prVt``) that decoders skip, so the picture stays 60x40 however large the file is."""
    import struct
    import zlib

    data = base64.b64decode(png_data_uri().split(",", 1)[1])
    chunk = b"prVt" + bytes(padding)
    extra = struct.pack(">I", padding) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return data[:33] + extra + data[33:]  # after the signature (8) and IHDR (25)


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def test_every_file_tool_states_the_one_limit(mcp_url):
    async def work(session):
        return (await session.list_tools()).tools

    tools = {tool.name: tool for tool in with_session(mcp_url, work)}
    for name in ("segment", "segment_everything", "segment_text", "track"):
        assert f"at most {MAX_FILE_MB}.0 MB" in tools[name].description, name
        assert "data URI" in tools[name].description, name
    assert "Returns:" in tools["segment"].description  # Gradio's own part is kept


def test_an_image_over_the_mcp_library_s_4_mib_is_taken(mcp_url):
    """5 MB: over the MCP library's default message limit, within the app's upload limit."""
    image = png_with_padding(5_000_000)

    async def work(session):
        return await session.call_tool("segment", {
            "image": data_uri(image), "model_id": "grabcut",
            "prompts": json.dumps({"box": BOX})})

    answer = with_session(mcp_url, work)
    assert not answer.isError, answer.content
    assert find_result(answer.content)["image"]["width"] == WIDTH


def test_an_image_over_the_limit_is_a_tool_error_that_says_the_limit(mcp_url):
    image = png_with_padding((MAX_FILE_MB + 1) * 1_000_000)

    async def work(session):
        return await session.call_tool("segment", {
            "image": data_uri(image), "model_id": "grabcut",
            "prompts": json.dumps({"box": BOX})})

    answer = with_session(mcp_url, work)
    assert answer.isError
    text = " ".join(item.text for item in answer.content)
    assert f"at most {MAX_FILE_MB}.0 MB" in text and "JPEG" in text, text


def test_an_image_url_is_refused_with_the_reason(mcp_url):
    async def work(session):
        return await session.call_tool("segment_everything", {
            "image": "http://127.0.0.1:9/dog.png", "model_id": "grabcut"})

    answer = with_session(mcp_url, work)
    assert answer.isError
    text = " ".join(item.text for item in answer.content)
    assert "fetches nothing" in text and "data URI" in text, text
    assert "queue/join" not in text
