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
import atexit
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from sam_backends.cache import parse_bytes
from sam_backends.device import PRECISIONS
from sam_backends.prompts.prompt_parsing import DEFAULT_MAX_POINTS
from workbench.config import (
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_VIDEO_MAX_DURATION_S,
    DEFAULT_VIDEO_MAX_FILE_SIZE,
    DEFAULT_VIDEO_MAX_FRAMES,
    DEFAULT_VIDEO_MAX_PIXELS,
    AppConfig,
    on_hf_space,
    parse_models,
    space_defaults,
)
from workbench.memory import budget_from_env

if TYPE_CHECKING:
    import gradio as gr

    from workbench.context import AppContext
    from workbench.temp_root import TempRoot

TITLE = "Segment Anything Workbench"
CSS = """
.gradio-container { max-width: 1480px !important; margin: 0 auto; }
/* The short upload boxes at the top of Segment, Compare and Video: Gradio's upload icon would
   sit under the label badge, so the words alone say what to do, below the badge. */
:is(#image-upload, #compare-upload, #video-upload) .icon-wrap { display: none; }
:is(#image-upload, #compare-upload, #video-upload) .upload-container { padding-top: 30px; }
/* A long choice ends in an ellipsis before a dropdown's arrow, not under it. */
.gradio-container .wrap-inner input { padding-right: 28px; text-overflow: ellipsis; }
"""
log = logging.getLogger("samwb")
# Gradio deletes its cached uploads and outputs older than 15 min every 5 min (the session
# keeps its image in memory; downloads are written when asked for).
GRADIO_CACHE_SWEEP = (300, 900)
PROJECT_COMMANDS = ("export", "import", "label")  # ``samwb export ...``: see workbench.projects.cli


def build_demo(config: AppConfig | None = None) -> gr.Blocks:
    """The whole app as a ``gr.Blocks``; ``demo.ctx`` is its ``AppContext``."""
    from sam_backends.speed.accel import tune_allocator

    # First, before any thread exists (importing Gradio starts and ends some): a thread keeps
    # the malloc arena it first gets, and a new thread takes an ended thread's arena.
    tune_allocator()
    import gradio as gr

    from ui.api import build_api
    from ui.compare.view import build_compare_tab
    from ui.mcp_tools import McpBlocks
    from ui.projects.view import build_projects_tab
    from ui.segment.view import build_segment_tab
    from ui.sessions import unload_handler
    from ui.video.view import build_video_tab
    from workbench.context import AppContext

    config = config or AppConfig()
    temp = prepare_environment(config)
    ctx = AppContext(config, temp)
    # McpBlocks: gr.Blocks whose MCP server (--mcp) gets the app's one file limit.
    with McpBlocks(title=TITLE, delete_cache=GRADIO_CACHE_SWEEP,
                   analytics_enabled=config.analytics, config=config) as demo:
        gr.Markdown(f"# {TITLE}")
        with gr.Tabs() as tabs:
            with gr.Tab("Segment", id="segment"):
                segment = build_segment_tab(ctx, demo)
            with gr.Tab("Projects", id="projects"):
                build_projects_tab(ctx, demo, segment, tabs)
            with gr.Tab("Compare", id="compare"):
                build_compare_tab(ctx, demo, segment.state)
            with gr.Tab("Video", id="video"):
                build_video_tab(ctx, demo)
        demo.segment_api = build_api(ctx, demo)
        demo.unload(unload_handler(ctx.sessions))
    demo.ctx = ctx
    return demo


def prepare_environment(config: AppConfig) -> TempRoot:
    """Process settings Gradio reads from the environment, set before any Blocks exists: its
    cache inside this run's temp folder, analytics off unless asked for."""
    from workbench.temp_root import TempRoot

    temp = TempRoot(config.temp_dir, config.temp_max_bytes)
    os.environ["GRADIO_TEMP_DIR"] = str(temp.gradio_dir)
    if not config.analytics:
        os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    temp.start_janitor()
    atexit.register(temp.close)
    return temp


def guard_middleware(config: AppConfig, temp: TempRoot | None = None,
                     on_refusal: Any = None) -> Any:
    """The HTTP guard in front of every route (see ``server.middleware``); ``on_refusal``
    counts the refusals for ``/metrics``."""
    from starlette.middleware import Middleware

    from server.middleware import GuardMiddleware, GuardSettings

    settings = GuardSettings(max_body_bytes=config.body_limit,
                             frame_ancestors=config.frame_policy, temp=temp,
                             mcp_max_body_bytes=config.mcp_body_limit, on_refusal=on_refusal)
    return Middleware(GuardMiddleware, settings=settings)


def page_head_middleware() -> Any:
    """Puts the page's early scripts (``ui.page_head``) first in its ``<head>``
    (``server.page_head``): they must run before Gradio's own modules."""
    from starlette.middleware import Middleware

    from server.page_head import PageHeadMiddleware
    from ui.page_head import early_head_html

    return Middleware(PageHeadMiddleware, snippet=early_head_html())


def refusal_counter(ctx: AppContext) -> Any:
    """``(status, path)`` -> counted in ``ctx.observe`` under the path's route family."""
    from workbench.observe import route_family

    return lambda status, path: ctx.observe.status(status, route_family(path))


def rest_api_routes(ctx: AppContext) -> list[Any]:
    """The routes beside the UI: the Segment canvas's fast path ``/samwb/segment``
    (``server.live_route``), the example images ``/samwb/examples``, the REST API
    ``/healthz``, ``/readyz``, ``/v1``, and ``/metrics`` (``server.metrics_route``)."""
    from server.examples_route import examples_routes
    from server.live_route import live_routes
    from server.metrics_route import metrics_routes
    from server.rest.app import build_security, rest_routes

    security = build_security(ctx.config)
    rest = rest_routes(ctx, security)
    return (live_routes(ctx) + examples_routes(ctx) + rest
            + metrics_routes(ctx, security, rest))


def launch(demo: gr.Blocks, **overrides: Any) -> Any:
    """Start the server for ``demo`` with its config (keyword ``overrides`` go to launch)."""
    import gradio as gr

    from server.queue_polling import calm_queue_polling
    from ui.compare.view import CSS as COMPARE_CSS
    from ui.projects.view import CSS as PROJECTS_CSS
    from ui.proposals.compare_panel import CSS as COMPARE_PROPOSALS_CSS
    from ui.proposals.panel import CSS as PROPOSALS_CSS
    from ui.segment.project_bar import CSS as PROJECT_BAR_CSS
    from ui.segment.view import CSS as SEGMENT_CSS
    from ui.video.view import CSS as VIDEO_CSS

    config: AppConfig = demo.ctx.config
    demo.queue(default_concurrency_limit=1, max_size=config.queue_max_size)
    if not calm_queue_polling(demo):  # an idle app rests (server/queue_polling.py)
        log.info("This Gradio's queue has no idle polling settings; left at its defaults.")
    options = dict(
        # FastAPI(routes=...) registers the REST routes before Gradio's own.
        app_kwargs={"middleware": [guard_middleware(config, demo.ctx.temp,
                                                     refusal_counter(demo.ctx)),
                                   page_head_middleware()],
                    "routes": rest_api_routes(demo.ctx)},
        server_name=config.host,
        server_port=config.port,
        share=config.share,
        max_file_size=config.max_file_size,
        state_session_capacity=config.max_sessions,
        theme=gr.themes.Soft(primary_hue="indigo"),
        css=(CSS + SEGMENT_CSS + PROPOSALS_CSS + COMPARE_PROPOSALS_CSS + PROJECT_BAR_CSS
             + PROJECTS_CSS + COMPARE_CSS + VIDEO_CSS),
        # None (not False) lets Gradio's env GRADIO_MCP_SERVER=true turn it on, e.g. on a Space.
        mcp_server=config.mcp_server or None,
        auth=list(config.ui_auth) or None,
    )
    options.update(overrides)
    demo.ctx.start_idle_trim()  # freed memory back to the system when quiet (workbench.memory)
    return demo.launch(**options)


def start_prefetch(ctx: AppContext, model_id: str) -> threading.Thread | None:
    """Download ``model_id`` in the background (on a Space), keeping a status line updated;
    then warm it (``workbench.warm_start``) unless ``--no-warm-start``."""
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
        if ctx.config.warm_start:
            from workbench.warm_start import start_warm_start

            start_warm_start(ctx, model_id)

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
    parser.add_argument("--precision", default=None, choices=PRECISIONS,
                        help="fp32 is exact; auto picks the fastest faithful mode: bf16 where "
                             "it is native, else fp32-fast (env SAM_PRECISION)")
    parser.add_argument("--checkpoint-dir", type=Path, default=None,
                        help="folder holding checkpoints (default ./checkpoints; "
                             "env SAM_CHECKPOINT_DIR)")

    def examples_dir(text: str) -> Path | None:
        from workbench.config import parse_examples_dir

        try:
            return parse_examples_dir(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parser.add_argument("--examples-dir", type=examples_dir, default=argparse.SUPPRESS,
                        metavar="DIR",
                        help="folder of your own example images (png/jpg/webp) to offer "
                             "instead of the generated ones in assets/; 'none' shows none")

    def custom_checkpoint(text: str) -> tuple[str, Path]:
        """``ID=PATH`` -> (catalogue id, existing file); refused at start, not at first use."""
        from sam_backends.registry import get_spec, model_ids

        model_id, _, path = text.partition("=")
        model_id, path = model_id.strip(), path.strip()
        if not model_id or not path:
            raise argparse.ArgumentTypeError(f"expected ID=PATH (sam-vit-b=ft.pth), got {text!r}")
        if model_id not in model_ids() or not get_spec(model_id).has_weights:
            weighted = [m for m in model_ids() if get_spec(m).has_weights]
            raise argparse.ArgumentTypeError(
                f"{model_id!r} is not a model with weights; use one of: {', '.join(weighted)}")
        file = Path(path).expanduser()
        if get_spec(model_id).needs_checkpoint and not file.is_file():
            raise argparse.ArgumentTypeError(f"custom checkpoint for {model_id} not found: {file}")
        if not get_spec(model_id).needs_checkpoint and not (file / "config.json").is_file():
            raise argparse.ArgumentTypeError(
                f"custom model folder for {model_id} not found: {file} (a folder written by "
                "transformers' save_pretrained, with config.json)")
        return model_id, file

    parser.add_argument("--checkpoint", dest="checkpoints", metavar="ID=PATH", action="append",
                        type=custom_checkpoint, default=[],
                        help="load your own (e.g. fine-tuned) weights for a model, in its official "
                             "format, without the official hash check; shown as custom; "
                             "repeatable, e.g. --checkpoint sam-vit-b=/path/to/file.pth "
                             "(env SAM_CHECKPOINT_<ID>, e.g. SAM_CHECKPOINT_SAM_VIT_B)")
    parser.add_argument("--cache-bytes", default=None,
                        help="embedding cache bound, e.g. 2GiB or 512MiB (env SAM_CACHE_BYTES)")
    parser.add_argument("--memory-budget", type=parse_bytes, default=None, metavar="SIZE",
                        help="one bound for the app's memory, e.g. 6GiB: the embedding cache, "
                             "page sessions and the REST image store take shares of what the "
                             "models' weights and one request's work leave (README, 'Memory'; "
                             "env SAMWB_MEMORY_BUDGET; default: none)")
    parser.add_argument("--max-loaded-models", type=int, default=6, metavar="N",
                        help="models kept loaded at once, least recently used unloaded first "
                             "(default 6; the memory budget counts the N largest offered)")
    parser.add_argument("--max-file-size", default=DEFAULT_MAX_FILE_SIZE,
                        help=f"upload size limit (default {DEFAULT_MAX_FILE_SIZE})")
    parser.add_argument("--max-image-pixels", type=int, default=DEFAULT_MAX_IMAGE_PIXELS,
                        help=f"refuse larger images (default {DEFAULT_MAX_IMAGE_PIXELS:,})")
    parser.add_argument("--max-points", type=int, default=DEFAULT_MAX_POINTS,
                        help="points per object, in the page, /segment and REST /v1; more "
                             f"are refused before any model work (default {DEFAULT_MAX_POINTS})")
    limits = parser.add_argument_group("limits and protection (see SECURITY.md)")
    limits.add_argument("--max-body-bytes", type=parse_bytes, default=None,
                        help="refuse request bodies above this with 413 (default: the upload "
                             "limit + 1 MiB)")
    limits.add_argument("--everything-max-bytes", type=parse_bytes, default=1 << 30,
                        metavar="SIZE",
                        help="memory one 'segment everything' run may hold at worst; larger "
                             "grids run in smaller batches or are refused with the largest "
                             "grid allowed (default 1GiB)")
    limits.add_argument("--click-rate", type=float, default=40.0, metavar="N",
                        help="canvas clicks, boxes and hovers per client address per second "
                             "(bursts of twice as many); more get 429 with Retry-After "
                             "(default 40; a page sends at most 30 hovers a second; 0: off)")
    limits.add_argument("--queue-max-size", type=int, default=64,
                        help="events waiting in the queue, all users together (default 64)")
    limits.add_argument("--api-max-waiting", type=int, default=8,
                        help="API calls waiting behind the running one; more are refused at "
                             "once (default 8)")
    limits.add_argument("--request-timeout", type=float, default=120.0,
                        help="seconds after which an API call stops at its next step "
                             "(default 120)")
    limits.add_argument("--temp-dir", type=Path, default=None,
                        help="parent of this run's temp folder (default <system temp>/samwb-<uid>)")
    limits.add_argument("--temp-max-bytes", type=parse_bytes, default=2 << 30,
                        help="bound of the temp folder, e.g. 2GiB: writes past it are refused "
                             "(507); files untouched for 15 min are cleared first")
    limits.add_argument("--operator-details", action=argparse.BooleanOptionalAction,
                        default=None,
                        help="show server paths and commands in messages (default: only when "
                             "bound to a loopback address and not on a Space)")
    limits.add_argument("--frame-ancestors", default=None,
                        help="who may embed the page in a frame, as CSP sources (default "
                             "'self'; on a Space also huggingface.co)")
    limits.add_argument("--ui-auth", action="append", default=None, metavar="USER:PASSWORD",
                        help="put the page behind Gradio's login (repeatable; or env "
                             "SAMWB_UI_AUTH='user:password')")
    limits.add_argument("--analytics", action="store_true",
                        help="turn Gradio's usage analytics on (off by default)")
    limits.add_argument("--no-warm-start", dest="warm_start", action="store_false",
                        help="do not load the default model and run its encoder once in the "
                        "background at start-up (on by default: the first upload is then "
                        "ready sooner)")
    rest = parser.add_argument_group("REST API keys and limits (see SECURITY.md)")
    rest.add_argument("--api-keys", type=Path, default=None, metavar="FILE",
                      help="key file of the /v1 API (hashes only; create one with python -m "
                           "server.security.keys create --name me --file keys.json; env "
                           "SAMWB_API_KEYS_FILE, or its JSON text in SAMWB_API_KEYS)")
    rest.add_argument("--api-open-local", action="store_true",
                      help="open /v1 without keys for local use (loopback clients only; refused "
                           "with a non-loopback --host or --share)")

    def per_minute(text: str) -> int:
        if not (text.strip().isascii() and text.strip().isdigit()):
            raise argparse.ArgumentTypeError(f"expected a whole number >= 0 (0: off), got {text!r}")
        return int(text)

    rest.add_argument("--rate-limit", type=per_minute, default=60, metavar="N",
                      help="/v1 requests per key per minute, bursts included; more get 429 with "
                           "Retry-After (default 60, 0: off)")
    rest.add_argument("--auth-failures-per-min", type=per_minute, default=20, metavar="N",
                      help="failed /v1 authentications per client address per minute before "
                           "it is refused for a minute (default 20, 0: off)")
    rest.add_argument("--url-fetch-hosts", default="", metavar="HOSTS",
                      help="let /v1 fetch https:// images from these hosts, exact names, "
                           "comma-separated, e.g. a.com,b.org (default: no URL fetching; "
                           "private and loopback addresses and redirects are always refused)")
    rest.add_argument("--url-fetch-timeout", type=float, default=10.0, metavar="S",
                      help="seconds for the whole fetch of one image URL (default 10)")
    video = parser.add_argument_group("video limits (checked on the header, before decoding)")
    video.add_argument("--video-max-duration", type=float, default=DEFAULT_VIDEO_MAX_DURATION_S,
                       metavar="S", help="seconds of the selected part of a clip "
                                         f"(default {DEFAULT_VIDEO_MAX_DURATION_S:g})")
    video.add_argument("--video-max-frames", type=int, default=DEFAULT_VIDEO_MAX_FRAMES,
                       metavar="N", help="frames processed per clip, after stride "
                                         f"(default {DEFAULT_VIDEO_MAX_FRAMES})")
    video.add_argument("--video-max-pixels", type=int, default=DEFAULT_VIDEO_MAX_PIXELS,
                       metavar="N", help="width x height of a frame "
                                         f"(default {DEFAULT_VIDEO_MAX_PIXELS:,}: 1080p)")
    video.add_argument("--video-max-file-size", default=DEFAULT_VIDEO_MAX_FILE_SIZE,
                       metavar="SIZE", help="size of a clip, e.g. 100mb; uploads are also "
                                            "bound by --max-file-size "
                                            f"(default {DEFAULT_VIDEO_MAX_FILE_SIZE})")
    video.add_argument("--video-timeout", type=float, default=600.0, metavar="S",
                       help="seconds after which a /track call stops at its next frame "
                            "(default 600)")
    projects = parser.add_argument_group("projects (a folder of images annotated end to end)")
    projects.add_argument("--project", type=Path, default=None, metavar="DIR",
                          help="open the folder DIR as a project (made on first use; images "
                               "are referenced, never copied or changed): every page of this "
                               "app works in it and every change is saved at once")
    projects.add_argument("--project-cache-bytes", type=parse_bytes, default=2 << 30,
                          metavar="SIZE",
                          help="image embeddings of --project kept on disk in its "
                               ".samwb-cache folder, so the next image and a restart need no "
                               "encode (default 2GiB; 0: none)")
    projects.add_argument("--projects-root", type=Path, default=None, metavar="ROOT",
                          help="let the Projects view open the folders under ROOT as "
                               "projects (by name; a trusted team's server only)")
    parser.add_argument("--metrics", default="loopback", choices=("loopback", "key", "off"),
                        help="who may read GET /metrics (Prometheus): loopback (default: this "
                             "machine only, never through a proxy or --share), key (a /v1 API "
                             "key with the metrics scope) or off")
    parser.add_argument("--mcp", action="store_true",
                        help="also serve /segment and /models as MCP tools for agents at "
                             "/gradio_api/mcp/ (off by default; env GRADIO_MCP_SERVER=true too)")
    return parser


def ui_logins(pairs: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``["ann:secret"]`` -> ``(("ann", "secret"),)``; a pair without both parts is refused."""
    logins = []
    for pair in pairs:
        user, _, password = pair.partition(":")
        if not user.strip() or not password:
            raise SystemExit(f"--ui-auth expects USER:PASSWORD, got {user.strip() or '?'}:...")
        logins.append((user.strip(), password))
    return tuple(logins)


def config_from_args(argv: Sequence[str] | None = None) -> AppConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
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
        memory_budget=args.memory_budget if args.memory_budget is not None else budget_from_env(),
        max_loaded_models=args.max_loaded_models,
        max_file_size=args.max_file_size,
        max_image_pixels=args.max_image_pixels,
        max_points=args.max_points,
        max_body_bytes=args.max_body_bytes,
        queue_max_size=args.queue_max_size,
        api_max_waiting=args.api_max_waiting,
        request_timeout_s=args.request_timeout,
        temp_dir=args.temp_dir,
        temp_max_bytes=args.temp_max_bytes,
        project_dir=args.project,
        project_cache_bytes=args.project_cache_bytes,
        projects_root=args.projects_root,
        operator_details=args.operator_details,
        frame_ancestors=args.frame_ancestors,
        analytics=args.analytics,
        warm_start=args.warm_start,
        api_keys_file=args.api_keys,
        api_open_local=args.api_open_local,
        rate_limit_per_min=args.rate_limit,
        auth_failures_per_min=args.auth_failures_per_min,
        everything_max_bytes=args.everything_max_bytes,
        click_rate_per_s=args.click_rate,
        click_burst=max(1, round(2 * args.click_rate)),
        mcp_server=args.mcp,
        metrics_access=args.metrics,
        url_fetch_hosts=tuple(h.strip().lower() for h in args.url_fetch_hosts.split(",")
                              if h.strip()),
        url_fetch_timeout_s=args.url_fetch_timeout,
        video_max_duration_s=args.video_max_duration,
        video_max_frames=args.video_max_frames,
        video_max_pixels=args.video_max_pixels,
        video_max_file_size=args.video_max_file_size,
        video_timeout_s=args.video_timeout,
        ui_auth=ui_logins(args.ui_auth or ([os.environ["SAMWB_UI_AUTH"]]
                                           if os.environ.get("SAMWB_UI_AUTH") else [])),
    )
    if args.max_loaded_models < 1:
        raise ValueError(f"--max-loaded-models must be at least 1, got {args.max_loaded_models}.")
    if args.max_points < 1:
        raise ValueError(f"--max-points must be at least 1, got {args.max_points}.")
    if args.default_model:
        values["default_model"] = args.default_model
    custom = dict(args.checkpoints)  # the last --checkpoint for an id wins
    not_offered = [m for m in custom if m not in values["models"]]
    if not_offered:
        parser.error(f"--checkpoint given for {', '.join(not_offered)}, which --models does not "
                     "offer; add it to --models")
    values["custom_checkpoints"] = tuple(custom.items())
    if hasattr(args, "examples_dir"):  # given: a folder, or None for 'none'
        values["examples_dir"] = args.examples_dir
    return AppConfig(**values)


def stop_on_sigterm() -> None:
    """SIGTERM (``docker stop``, systemd, Kubernetes) stops the app as Ctrl-C does: the server
    closes and the run's temp folder is removed. Without this Python dies at once on SIGTERM,
    leaving the folder for the next start to find."""
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: Sequence[str] | None = None) -> None:
    """``samwb [options]`` serves the app; ``samwb export|import ...`` works on a project
    without a browser (``workbench.projects.cli``)."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in PROJECT_COMMANDS:
        from workbench.projects.cli import main as project_main

        raise SystemExit(project_main(args))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stop_on_sigterm()
    config = config_from_args(args)
    from workbench.memory import MemoryBudgetError
    from workbench.projects.model import ProjectError

    try:
        demo = build_demo(config)
    except (ProjectError, MemoryBudgetError) as exc:  # locked, too small...: say so and stop
        raise SystemExit(f"samwb: {exc}") from None
    log.info(demo.ctx.memory.describe())
    fetching = config.fetch_default_on_start and start_prefetch(demo.ctx, config.default_model)
    if config.warm_start and not fetching:  # a fetch warms the model once it is done
        from workbench.warm_start import start_warm_start

        start_warm_start(demo.ctx, demo.ctx.default_model())
    try:
        launch(demo)
    finally:
        demo.ctx.close()


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
