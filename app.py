"""Segment Anything Workbench: ``python app.py`` opens the app at http://127.0.0.1:7860.

A factory, in the style of Gradio's own demos:

* ``build_demo(config)`` assembles the Blocks app around one ``AppContext`` (shared embedding
  cache and loaded models); it loads no model and touches no network.
* ``demo`` (module attribute) is built on first access, for ``gradio app.py`` reload mode and
  for hosting platforms that import the module.
* ``main()`` parses flags (only under ``__main__``) and launches. On a Hugging Face Space
  (env ``SPACE_ID``) it binds 0.0.0.0 on ``GRADIO_SERVER_PORT`` (7860) and fetches the default
  model in the background at start-up, with a status line in the log and on the page.
"""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ui.config import (
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_MAX_IMAGE_PIXELS,
    AppConfig,
    on_hf_space,
    parse_models,
    space_defaults,
)

if TYPE_CHECKING:
    import gradio as gr

    from ui.context import AppContext

TITLE = "Segment Anything Workbench"
CSS = """
.gradio-container { max-width: 1480px !important; margin: 0 auto; }
"""
log = logging.getLogger("samwb")


def build_demo(config: AppConfig | None = None) -> gr.Blocks:
    """The whole app as a ``gr.Blocks``; ``demo.ctx`` is its ``AppContext``."""
    import gradio as gr

    from ui.api import build_api
    from ui.compare import build_compare_tab
    from ui.context import AppContext
    from ui.segment import build_segment_tab, release_on_unload

    config = config or AppConfig()
    ctx = AppContext(config)
    with gr.Blocks(title=TITLE, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(f"# {TITLE}")
        with gr.Tabs():
            with gr.Tab("Segment", id="segment"):
                build_segment_tab(ctx, demo)
            with gr.Tab("Compare", id="compare"):
                build_compare_tab(ctx, demo)
        build_api(ctx)
        demo.unload(release_on_unload(ctx))
    demo.ctx = ctx
    return demo


def launch(demo: gr.Blocks, **overrides: Any) -> Any:
    """Start the server for ``demo`` with its config (keyword ``overrides`` go to launch)."""
    import gradio as gr

    from ui.segment import CSS as SEGMENT_CSS

    config: AppConfig = demo.ctx.config
    demo.queue(default_concurrency_limit=1)
    options = dict(
        server_name=config.host,
        server_port=config.port,
        share=config.share,
        max_file_size=config.max_file_size,
        state_session_capacity=config.max_sessions,
        theme=gr.themes.Soft(primary_hue="indigo"),
        css=CSS + SEGMENT_CSS,
    )
    options.update(overrides)
    return demo.launch(**options)


def start_prefetch(ctx: AppContext, model_id: str) -> threading.Thread | None:
    """Download ``model_id`` in the background (on a Space), keeping a status line updated."""
    if not ctx.status(model_id).download_command or ctx.status(model_id).present:
        return None
    name = ctx.spec(model_id).display_name

    def note(text: str) -> None:
        ctx.startup_note = text
        print(f"[start-up] {text}", flush=True)

    def run() -> None:
        note(f"Fetching {name} at start-up; it will be selectable when done "
             "(reload the page).")
        try:
            ctx.download(model_id)
        except Exception as exc:  # noqa: BLE001 - reported on the page, the app keeps running
            note(f"Could not fetch {name} at start-up: {exc}")
            return
        note(f"{name} was fetched at start-up.")

    thread = threading.Thread(target=run, name="prefetch", daemon=True)
    thread.start()
    return thread


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python app.py",
        description=f"{TITLE}: click or drag a box to cut objects out with Segment Anything.",
    )
    parser.add_argument("--host", default=None,
                        help="address to bind (default 127.0.0.1; 0.0.0.0 on a HF Space)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default 7860, or env GRADIO_SERVER_PORT on a HF Space)")
    parser.add_argument("--share", action="store_true",
                        help="also open a temporary public gradio.live link")
    parser.add_argument("--models", default=None,
                        help="model ids to offer, comma-separated (default: all); "
                             "e.g. sam2.1-tiny,sam-vit-b,grabcut")
    parser.add_argument("--default-model", default=None,
                        help="model selected at start when its weights are present "
                             "(default sam2.1-tiny)")
    parser.add_argument("--device", default=None, choices=("auto", "cpu", "cuda", "mps"),
                        help="where models run (default: best available; env SAM_DEVICE)")
    parser.add_argument("--precision", default=None, choices=("auto", "fp32", "bf16", "fp16"),
                        help="fp32 is exact; auto picks the fastest faithful mode "
                             "(env SAM_PRECISION)")
    parser.add_argument("--checkpoint-dir", type=Path, default=None,
                        help="folder holding checkpoints (default ./checkpoints; "
                             "env SAM_CHECKPOINT_DIR)")
    parser.add_argument("--cache-bytes", default=None,
                        help="embedding cache bound, e.g. 2GiB or 512MiB (env SAM_CACHE_BYTES)")
    parser.add_argument("--max-file-size", default=DEFAULT_MAX_FILE_SIZE,
                        help=f"upload size limit (default {DEFAULT_MAX_FILE_SIZE})")
    parser.add_argument("--max-image-pixels", type=int, default=DEFAULT_MAX_IMAGE_PIXELS,
                        help=f"refuse larger images (default {DEFAULT_MAX_IMAGE_PIXELS:,})")
    return parser


def config_from_args(argv: Sequence[str] | None = None) -> AppConfig:
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = space_defaults() if on_hf_space() else {}
    if args.host is not None:
        values["host"] = args.host
    if args.port is not None:
        values["port"] = args.port
    values.update(
        share=args.share,
        models=parse_models(args.models),
        device=None if args.device in (None, "auto") else args.device,
        precision=args.precision,
        checkpoint_dir=args.checkpoint_dir,
        cache_bytes=args.cache_bytes,
        max_file_size=args.max_file_size,
        max_image_pixels=args.max_image_pixels,
    )
    if args.default_model:
        values["default_model"] = args.default_model
    return AppConfig(**values)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = config_from_args(argv)
    demo = build_demo(config)
    if config.fetch_default_on_start:
        start_prefetch(demo.ctx, config.default_model)
    launch(demo)


def __getattr__(name: str) -> Any:
    """``app.demo`` is built on first access (no work at import time)."""
    if name == "demo":
        config = AppConfig(**space_defaults()) if on_hf_space() else AppConfig()
        value = build_demo(config)
        globals()["demo"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
