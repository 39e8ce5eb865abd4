"""``Timeline``: the Video view's per-object timeline under the frame, a ``gr.HTML`` custom
component like ``ui.widgets.canvas`` (see there for why ``gr.HTML``).

One thin row per object (its canvas colour and name) across the processed frames: where it was
tracked, where it is seen, where it was prompted and where corrected, and the frame shown. Its
value is ``workbench.video.timeline.Timeline.as_value()``; ``timeline.js`` draws it on two
``<canvas>`` elements (``timeline.css``). A click or drag on it, or Enter and the arrow keys when
it has focus, fires ``seek`` with ``{"frame": i}`` (read by
``workbench.event_payloads.frame_from_event``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

HERE = Path(__file__).resolve().parent
_TEMPLATE = '<div class="tl-host"></div>'  # never changes: timeline.js owns the DOM


def _asset(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


class Timeline(gr.HTML):
    """The objects over the frames (see the module docstring): ``seek`` event."""

    def __init__(self, value: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(value=value, html_template=_TEMPLATE,
                         css_template=_asset("timeline.css"),
                         js_on_load=_asset("timeline.js"), **kwargs)
