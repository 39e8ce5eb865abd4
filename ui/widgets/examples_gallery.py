"""A gallery of example images whose items name no path on the server.

``gr.Gallery`` copies each file into its cache and writes the copy's absolute path (and a
``/gradio_api/file=<path>`` URL) into the page and ``GET /config``. This one keeps only the
file's name (as the caption's alt text) and points the browser at ``server.examples_route``;
selecting an item still gives its index, which the views map back to the file. The item's
``path`` is empty: Gradio checks every path a browser event sends back (a selected item
included) against its cache, and a name that is not there fails the event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from workbench.examples import example_url


def examples_gallery(examples: list[Path], **kwargs: Any) -> gr.Gallery:
    """A ``gr.Gallery`` of ``examples`` (paths from ``list_examples``) whose value holds each
    item's name and its ``/samwb/examples/<name>`` address only."""
    gallery = gr.Gallery([str(p) for p in examples], **kwargs)
    items = gallery.value or []
    for path, item in zip(examples, items):
        image = item.get("image") if isinstance(item, dict) else None
        if image is not None:
            image["path"] = ""
            image["orig_name"] = path.name
            image["url"] = example_url(path)
    return gallery
