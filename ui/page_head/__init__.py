"""Scripts the app's page runs before any of Gradio's own modules: ``early_head_html()`` is
put first in the page's ``<head>`` by ``server.page_head`` (``app.launch`` joins the two).

Why not Gradio's ``head=``: Gradio adds that from its own code once the app mounts, after its
first modules loaded and kept references to browser functions (``idle_frames.js`` replaces one
of them, ``requestAnimationFrame``, so it has to run first).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

SCRIPTS = ("idle_frames.js",)  # in the order they run; each file is one plain script


@lru_cache(maxsize=1)
def early_head_html() -> str:
    """The ``<script>`` elements of ``SCRIPTS``, inline (the page asks for nothing more)."""
    folder = Path(__file__).resolve().parent
    parts = []
    for name in SCRIPTS:
        text = (folder / name).read_text(encoding="utf-8")
        if "</script" in text.lower():
            raise ValueError(f"{name} must not contain '</script': it is inlined in the page")
        parts.append(f"<script>{text}</script>")
    return "".join(parts)
