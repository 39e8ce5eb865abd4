"""Gradio's side of the session registry: a tab that closes frees its sessions at once."""

from __future__ import annotations

from typing import Any, Callable

import gradio as gr

from workbench.session import SessionRegistry


def unload_handler(registry: SessionRegistry, suffix: str = "") -> Callable[[gr.Request], None]:
    """A ``demo.unload`` handler that frees the closing tab's session of one view at once
    (views key their sessions by the tab's ``session_hash`` plus their own ``suffix``).

    Gradio finds the request parameter by its ``gr.Request`` annotation, so this lives on
    Gradio's side of the layer line.
    """

    def release_closing_tab(request: gr.Request) -> None:
        registry.release(request.session_hash + suffix)

    return release_closing_tab


def client_address(request: Any) -> str | None:
    """The address of the client behind a ``gr.Request`` (None when Gradio gives none), for
    the registry's per-address limit on new sessions."""
    return getattr(getattr(request, "client", None), "host", None)


def caller_of(request: Any) -> str:
    """Who a Gradio API call is, for the lanes' round-robin: the page or client session
    (``session_hash``), else the address; calls without either share one turn."""
    session = getattr(request, "session_hash", None)
    if session:
        return f"session:{session}"
    address = client_address(request)
    return f"address:{address}" if address else "anonymous"
