"""The model picker: labels, a status line, and downloading weights with visible progress.

Offline, every SAM model shows "not downloaded" with a Download button and the exact command;
GrabCut needs no weights and always works. With network, choosing a missing model downloads it
(``gr.Progress`` shows MB done), verified by the engine before it is used. A model running the
user's own weights (``--checkpoint ID=PATH`` or env ``SAM_CHECKPOINT_<MODEL ID>``) is marked
"custom", so nobody mistakes a fine-tuned model's masks for the official model's.
"""

from __future__ import annotations

from typing import Any, Callable

from workbench.context import AppContext


def choices(ctx: AppContext) -> list[tuple[str, str]]:
    """Dropdown choices (label, model id); custom and missing weights are marked in the label."""
    rows = []
    for model_id in ctx.model_ids:
        status = ctx.status(model_id)
        label = status.display_name + (" · custom" if status.custom else "")
        if not status.present:
            label += " · missing" if status.custom else " · not downloaded"
        rows.append((label, model_id))
    return rows


def _size(size_bytes: int | None) -> str:
    if not size_bytes:
        return "size unknown"
    return f"{size_bytes / 1e9:.1f} GB" if size_bytes >= 1e9 else f"{size_bytes / 1e6:.0f} MB"


def status_markdown(ctx: AppContext, model_id: str) -> str:
    """One or two lines about the selected model: ready, or how to get it."""
    spec = ctx.spec(model_id)
    status = ctx.status(model_id)
    note = ctx.family(model_id).note
    params = f" · {spec.num_params / 1e6:.0f} M parameters" if spec.num_params else ""
    if status.custom:
        path = ctx.checkpoint_file(model_id)
        state = "is ready" if status.present else "is missing its checkpoint file"
        named = (f" `{path.name if path else '?'}`" if ctx.config.shows_operator_details
                 else "")  # a file name on the server is for the operator, not a visitor
        text = (f"**{spec.display_name}** (custom checkpoint{named}) "
                f"{state}: {note}; your own weights, not the official file.")
    elif status.present:
        text = f"**{spec.display_name}** is ready: {note}{params}."
    elif status.download_command and ctx.offline:
        text = (f"**{spec.display_name} is not downloaded** ({_size(status.size_bytes)}), and "
                "this server does not download models. Pick a model that is ready.")
        if ctx.config.shows_operator_details:
            text += (f" (The server runs offline: run `{status.download_command}` where there "
                     "is internet, or start it without SAM_OFFLINE.)")
    elif status.download_command:
        text = (f"**{spec.display_name} is not downloaded** ({_size(status.size_bytes)}). "
                "Click **Download model**")
        text += (f", or run `{status.download_command}` on the server."
                 if ctx.config.shows_operator_details else ".")
    elif ctx.config.shows_operator_details:
        path = ctx.checkpoint_file(model_id)
        text = f"**{spec.display_name}**: checkpoint file `{path}` is missing."
    else:
        text = f"**{spec.display_name}**: its weights are not on this server."
    if ctx.startup_note:
        text += f"\n\n{ctx.startup_note}"
    return text


def needs_download(ctx: AppContext, model_id: str) -> bool:
    """True when the model is absent and this server may fetch it (not when it runs
    offline: then nothing starts a download that can only fail)."""
    status = ctx.status(model_id)
    return not status.present and status.download_command is not None and not ctx.offline


def download_with_progress(ctx: AppContext, model_id: str,
                           progress: Callable[..., Any] | None) -> None:
    """Download ``model_id``'s weights, reporting MB done through ``progress`` (gr.Progress).

    Raises:
        DownloadError: offline, HTTP error or checksum mismatch (the message says what to run).
    """
    name = ctx.spec(model_id).display_name

    def report(done: int, total: int) -> None:
        if progress is None:
            return
        if total:
            progress(done / total, desc=f"Downloading {name}: {done / 1e6:.0f} / "
                                        f"{total / 1e6:.0f} MB")
        else:
            progress(None, desc=f"Downloading {name}: {done / 1e6:.0f} MB")

    report(0, ctx.spec(model_id).size_bytes or 0)
    ctx.download(model_id, on_progress=report)


def panel_updates(ctx: AppContext, model_id: str) -> tuple[Any, str, Any]:
    """(dropdown update, status markdown, download-button update) for ``model_id``."""
    import gradio as gr

    return (
        gr.update(choices=choices(ctx), value=model_id),
        status_markdown(ctx, model_id),
        gr.update(visible=needs_download(ctx, model_id)),
    )


def missing_choices(ctx: AppContext) -> list[tuple[str, str]]:
    """(label, model id) of the offered models that are not downloaded but can be, with their
    size: what a "Download" picker outside the Segment view offers."""
    rows = []
    for model_id in ctx.model_ids:
        if needs_download(ctx, model_id):
            status = ctx.status(model_id)
            rows.append((f"{status.display_name} ({_size(status.size_bytes)})", model_id))
    return rows
