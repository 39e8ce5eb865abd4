"""The MCP tools' one file limit, told to agents and enforced before any upload.

Gradio serves the named endpoints as MCP tools (``--mcp``): a file argument arrives as a data
URI inside the JSON-RPC message, which Gradio decodes, stores and uploads to its own queue. Left
alone, the MCP library refuses messages over 4 MiB with a bare HTTP 413 (a transport error for
the agent, for any image over about 3 MB) while the app takes 25 MB uploads, and an image URL
reached Gradio's queue and came back as "400 Bad Request for .../queue/join".

Now (issue 19, item 6) there is one limit, the upload limit (``--max-file-size``, and for
``track`` the video limit as well), and:

* each tool that takes a file says it in its description (what an agent reads);
* a file over it, or a URL, is a tool error that says the limit and what to send instead,
  raised before anything is decoded or uploaded;
* the transport takes messages up to ``AppConfig.mcp_body_limit`` (room for a data URI of a
  file half as large again as the limit), so a file somewhat over the limit gets that tool
  error, not a transport error. Beyond that, the HTTP guard answers 413 with the limit.

``McpBlocks`` is ``gr.Blocks`` with one hook: when Gradio attaches its MCP server
(``blocks.mcp_server_obj = GradioMCPServer(blocks)`` at launch), ``adapt_mcp_server`` adjusts
it. Everything here touches Gradio's MCP server only through three attributes:
``convert_strings_to_filedata`` (its conversion of file arguments), ``handle_streamable_http``
(whose session manager holds the body limit) and the block functions' ``api_description``.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from workbench.config import AppConfig

log = logging.getLogger("samwb.ui")

TOOLS_WITH_FILES = ("segment", "segment_everything", "segment_text", "track")


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.0f} MB" if nbytes >= 10e6 else f"{nbytes / 1e6:.1f} MB"


def file_limit(config: AppConfig, tool: str) -> int:
    """The largest file (decoded bytes) ``tool`` takes: the upload limit; for ``track`` the
    smaller of it and the video limit."""
    if tool == "track":
        return min(config.upload_bytes, config.video_file_bytes)
    return config.upload_bytes


def limit_sentence(config: AppConfig, tool: str) -> str:
    """What a tool's description says about its file argument's size."""
    what = "video" if tool == "track" else "image"
    advice = ("a shorter or smaller clip" if tool == "track"
              else "a smaller image (JPEG, or at most about 4000 px on the long side)")
    return (f"The {what} may be at most {_mb(file_limit(config, tool))} (before base64); a "
            f"larger {what} or a URL is refused with a tool error: send {advice} as a data URI.")


def check_file_argument(config: AppConfig, tool: str, value: Any) -> None:
    """Raise ``ValueError`` (an MCP tool error) when a file argument is a URL, not a data URI,
    or decodes to more than the tool's limit. Checked on the text: nothing is decoded."""
    if not isinstance(value, str):
        return
    what = "video" if tool == "track" else "image"
    limit = file_limit(config, tool)
    if value.startswith(("http://", "https://")):
        raise ValueError(
            f"The {what} is a URL, and this server fetches nothing a caller names. Send the "
            f"{what} itself as a data URI (data:image/jpeg;base64,...) of at most {_mb(limit)}.")
    if not value.startswith("data:"):
        raise ValueError(f"The {what} must be a data URI (data:image/png;base64,...), not a "
                         "path or a name.")
    size = (len(value) - value.find(",") - 1) * 3 // 4  # base64: 4 characters per 3 bytes
    if size > limit:
        advice = ("a shorter or smaller clip" if tool == "track" else
                  "a smaller image: JPEG-compressed, or scaled down to about 4000 px on the "
                  "long side")
        raise ValueError(f"The {what} is about {_mb(size)}; this server takes at most "
                         f"{_mb(limit)} per {what}. Send {advice}.")


def describe_limits(blocks: gr.Blocks, config: AppConfig) -> None:
    """Append each file-taking tool's limit to its description (``api_description``), keeping
    what Gradio writes from the docstring (the text before ``Args:`` and the returns)."""
    from gradio.utils import get_function_description

    for block_fn in blocks.fns.values():
        if block_fn.api_name not in TOOLS_WITH_FILES or block_fn.fn is None:
            continue
        description, _, returns = get_function_description(block_fn.fn)
        text = f"{description.rstrip()} {limit_sentence(config, block_fn.api_name)}"
        if returns:
            text += " Returns: " + ", ".join(returns)
        block_fn.api_description = text


def _set_transport_limit(server: Any, limit: int) -> None:
    """Raise the MCP library's 4 MiB message limit to ``limit`` (streamable HTTP)."""
    handler = getattr(server, "handle_streamable_http", None)
    names = getattr(getattr(handler, "__code__", None), "co_freevars", ())
    for name, cell in zip(names, getattr(handler, "__closure__", None) or ()):
        if name == "manager":
            body_limit = getattr(cell.cell_contents, "asgi_app", None)
            if hasattr(body_limit, "max_body_size"):
                body_limit.max_body_size = limit
                return
    log.warning("the MCP message limit could not be set; it stays at the MCP library's own")


def adapt_mcp_server(server: Any, blocks: gr.Blocks, config: AppConfig) -> None:
    """Give Gradio's MCP ``server`` this app's file limit: described, checked, transported."""
    describe_limits(blocks, config)
    _set_transport_limit(server, config.mcp_body_limit)
    convert = server.convert_strings_to_filedata

    def checked(value: Any, filedata_positions: list[list[str | int]]) -> Any:
        for position in filedata_positions:
            node: Any = value
            for key in position:
                try:
                    node = node[key]
                except (KeyError, IndexError, TypeError):
                    node = None
                    break
            # Only track takes a "video"; every other tool's file is its "image".
            tool = "track" if position and position[0] == "video" else "segment"
            check_file_argument(config, tool, node)
        return convert(value, filedata_positions)

    server.convert_strings_to_filedata = checked


class McpBlocks(gr.Blocks):
    """``gr.Blocks`` whose MCP server, when Gradio attaches one at launch, gets this app's one
    file limit (``adapt_mcp_server``); ``config`` is the app's ``AppConfig``."""

    def __init__(self, *args: Any, config: AppConfig, **kwargs: Any) -> None:
        self._samwb_config = config
        super().__init__(*args, **kwargs)

    @property
    def mcp_server_obj(self) -> Any:
        return self.__dict__.get("_samwb_mcp_server")

    @mcp_server_obj.setter
    def mcp_server_obj(self, server: Any) -> None:
        if server is not None:
            adapt_mcp_server(server, self, self._samwb_config)
        self.__dict__["_samwb_mcp_server"] = server
