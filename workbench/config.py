"""How the app is configured: one frozen value built from flags, environment and defaults.

``app.py`` parses the command line into an ``AppConfig``; tests build one directly (with extra
random-weight models). On a Hugging Face Space (env ``SPACE_ID``) the defaults change: bind
0.0.0.0 on ``GRADIO_SERVER_PORT`` (7860) and fetch the default model at start-up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sam_backends import DEFAULT_MODEL_ID, ModelSpec, model_ids
from sam_backends.cache import parse_bytes
from sam_backends.prompts.prompt_parsing import DEFAULT_MAX_JSON_CHARS, DEFAULT_MAX_POINTS

DEFAULT_PORT = 7860
DEFAULT_MAX_FILE_SIZE = "25mb"  # upload limit enforced by Gradio before our code runs
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000  # refused from the header, before decoding
# Video (refused from the header, before decoding): a 2-core CPU tracks ~1 frame/s with
# SAM 2.1 tiny, so 300 frames is five minutes of work; 1080p and a minute of footage.
DEFAULT_VIDEO_MAX_DURATION_S = 60.0
DEFAULT_VIDEO_MAX_FRAMES = 300
DEFAULT_VIDEO_MAX_PIXELS = 1920 * 1080
DEFAULT_VIDEO_MAX_FILE_SIZE = "25mb"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
METRICS_ACCESS = ("loopback", "key", "off")  # who may read GET /metrics
SPACE_FRAME_ANCESTORS = "'self' https://huggingface.co https://*.huggingface.co https://*.hf.space"
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"


def on_hf_space() -> bool:
    """True when running on a Hugging Face Space (which sets ``SPACE_ID``)."""
    return bool(os.environ.get("SPACE_ID", "").strip())


@dataclass(frozen=True)
class ExtraModel:
    """A model outside the catalogue (tests: random weights).

    ``checkpoint``: an explicit file; None means the spec's ``checkpoint_file`` inside the
    checkpoints folder, downloaded from ``spec.url`` on demand like a catalogue model.
    """

    spec: ModelSpec
    checkpoint: Path | None = None


@dataclass(frozen=True)
class AppConfig:
    """Everything ``build_demo`` and ``launch`` need.

    Attributes:
        models: catalogue ids offered in the UI and the API, in display order.
        extra_models: models outside the catalogue (offered after ``models``).
        default_model: the model selected at start when its weights are available.
        device, precision: passed to ``sam_backends.create_backend`` (None: automatic).
        checkpoint_dir: where checkpoints live (None: the engine's default folder).
        cache_bytes: bound of the shared embedding cache ("2GiB", an int, or None: default).
        memory_budget: the one bound of the app's memory ("6GiB", an int; ``--memory-budget``,
            env ``SAMWB_MEMORY_BUDGET``), split by ``workbench.memory.plan_memory`` into the
            cache's, the sessions' and the REST image store's bounds; None: no budget.
        max_loaded_models: loaded backends kept in memory at once (least recently used go).
        max_image_pixels: larger images are refused with a friendly message.
        max_file_size: Gradio's upload limit, e.g. "25mb".
        max_points: points per object, in the UI and the API; more are refused before any
            model work (20,000 points once cost 67 s and 7.4 GB).
        max_prompt_chars: size limit of the API's prompt JSON text.
            Both are read once, into ``AppContext.limits`` (``workbench.limits.Limits``).
        fetch_default_on_start: download the default model in the background at start-up.
        warm_start: load the default model and run its encoder once in the background when
            ``python app.py`` starts (``workbench.warm_start``; ``--no-warm-start``), so the
            first upload does not pay for it; stepped aside as soon as a person's work comes.
        examples_dir: folder of example images shown in the segment view (``.png``, ``.jpg``,
            ``.jpeg``, ``.webp``, sorted by name); None shows none. Default: the repository's
            ``assets/`` (``python app.py --examples-dir DIR``, see ``parse_examples_dir``).
        custom_checkpoints: (catalogue id, file) pairs: the user's own (fine-tuned) weights for
            a catalogue model, loaded instead of the official file and never hash-checked
            (``python app.py --checkpoint sam-vit-b=/path/file.pth``); env
            ``SAM_CHECKPOINT_<MODEL ID>`` does the same for ids not listed here.
        max_body_bytes: request bodies above this get 413 before they are read (None: the
            upload limit plus 1 MiB for the multipart envelope).
        queue_max_size: events waiting in Gradio's queue, all users together; beyond it a
            caller gets "busy, retry" at once.
        api_max_waiting: API calls waiting behind the one that runs; more are refused at once.
        request_timeout_s: an API call still unfinished after this is stopped at its next step.
        project_dir: the operator's project folder (``--project DIR``), opened at start-up and
            shared by every page of this app (``workbench.projects.service``); None: pages
            make their own projects from uploads.
        project_cache_bytes: image embeddings of ``project_dir`` kept on disk
            (``<project>/.samwb-cache/embeddings``, least recently used go beyond it), so the
            next image and a restart need no encode; 0 keeps none (``--project-cache-bytes``).
        projects_root: folders under it may be opened as projects from the Projects view
            (``--projects-root ROOT``; by name only); None: none.
        temp_dir: parent of this run's temp folder (None: <system temp>/samwb-<uid>).
        temp_max_bytes: bound of the temp folder (oldest files are deleted beyond it).
        analytics: Gradio's usage analytics (off unless asked for).
        ui_auth: (user, password) pairs for Gradio's own login in front of the page (and its
            gradio_client API); empty: no login. The REST API has its own keys.
        operator_details: show file paths and shell commands in messages (None: only when
            bound to a loopback address and not on a Space, i.e. the person is the operator).
        frame_ancestors: who may embed the page in a frame (CSP frame-ancestors; None: 'self',
            plus huggingface.co on a Space).
        api_keys_file: the REST API's key file (hashes only;
            ``python -m server.security.keys create``);
            None: env ``SAMWB_API_KEYS_FILE``, and/or the file's JSON text in ``SAMWB_API_KEYS``.
        api_open_local: the explicit flag that opens the REST API without keys for local use
            (loopback clients only); refused unless bound to a loopback address without share.
        rate_limit_per_min: REST requests per key per minute, bursts included (0: no limit).
        auth_failures_per_min: failed REST authentications per client address per minute;
            beyond it the address gets 429, even with a correct key, for a minute (0: no limit).
        click_rate_per_s, click_burst: requests per client address to the canvas's click route
            (``/samwb/segment``: clicks, boxes, hovers), a second sustained and in a burst; more
            get 429 with ``Retry-After`` (``--click-rate``; 0: no limit). The page sends at most
            30 hovers a second, so one polite page never reaches the default.
        everything_max_bytes: the memory one "segment everything" run may hold at worst
            (``sam_backends.automatic.fit_memory``): its grid points are decoded in batches
            small enough to fit, and a grid whose candidates alone cannot is refused with the
            largest grid allowed (``--everything-max-bytes``; None: no bound). 1 GiB allows
            51 x 51 with three candidates a point (in smaller batches), 64 x 64 with one.
        mcp_server: also serve the ``/segment`` and ``/models`` endpoints as MCP tools at
            ``/gradio_api/mcp/`` (``--mcp``). Off by default so that an agent-facing endpoint
            is a choice; False leaves it to Gradio's own env ``GRADIO_MCP_SERVER``.
        url_fetch_hosts: hosts the REST API may fetch ``https://`` images from, exact names
            (``--url-fetch-hosts a.com,b.org``); empty: URL fetching is off (the default).
        url_fetch_allow_private: FOR TESTS ONLY: also fetch from loopback/private addresses
            and over plain ``http://`` (a local test server); never on a real deployment, where
            it reopens the SSRF hole the checks close.
        url_fetch_timeout_s: the whole fetch of one image URL, connection to last byte.
        video_max_duration_s, video_max_frames, video_max_pixels, video_max_file_size: the
            video view's and ``/track``'s limits (``sam_backends.video.VideoLimits``), checked
            on the header before any frame is decoded: seconds of the selected part, frames
            processed (after stride), width x height of a frame, size of the file (uploads
            are also bound by ``max_file_size``). Defaults suit a 2-core CPU Space.
        video_timeout_s: a ``/track`` call still unfinished after this stops at its next frame.
        metrics_access: who may read ``GET /metrics`` (``--metrics``): "loopback" (default:
            clients on this machine only, never through a proxy or ``--share``), "key" (a REST
            API key with the ``metrics`` scope) or "off" (no route).
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    share: bool = False
    models: tuple[str, ...] = field(default_factory=lambda: tuple(model_ids()))
    extra_models: tuple[ExtraModel, ...] = ()
    default_model: str = DEFAULT_MODEL_ID
    device: str | None = None
    precision: str | None = None
    checkpoint_dir: Path | None = None
    cache_bytes: int | str | None = None
    memory_budget: int | str | None = None
    max_loaded_models: int = 6  # the Compare tab runs up to 6 models side by side
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_file_size: str = DEFAULT_MAX_FILE_SIZE
    max_sessions: int = 200
    new_sessions_per_minute: int = 60  # per client address (workbench.session.SessionRegistry)
    max_points: int = DEFAULT_MAX_POINTS  # per object, every entrance (workbench.limits)
    max_prompt_chars: int = DEFAULT_MAX_JSON_CHARS  # characters of the API's prompt JSON
    fetch_default_on_start: bool = False
    warm_start: bool = True
    examples_dir: Path | None = ASSETS_DIR
    custom_checkpoints: tuple[tuple[str, Path], ...] = ()
    max_body_bytes: int | None = None
    queue_max_size: int = 64
    api_max_waiting: int = 8
    request_timeout_s: float = 120.0
    temp_dir: Path | None = None
    temp_max_bytes: int = 2 << 30
    project_dir: Path | None = None
    projects_root: Path | None = None
    project_cache_bytes: int = 2 << 30
    analytics: bool = False
    ui_auth: tuple[tuple[str, str], ...] = ()
    operator_details: bool | None = None
    frame_ancestors: str | None = None
    api_keys_file: Path | None = None
    api_open_local: bool = False
    rate_limit_per_min: int = 60
    auth_failures_per_min: int = 20
    click_rate_per_s: float = 40.0
    click_burst: int = 80
    everything_max_bytes: int | None = 1 << 30
    mcp_server: bool = False
    url_fetch_hosts: tuple[str, ...] = ()
    url_fetch_allow_private: bool = False
    url_fetch_timeout_s: float = 10.0
    video_max_duration_s: float = DEFAULT_VIDEO_MAX_DURATION_S
    video_max_frames: int = DEFAULT_VIDEO_MAX_FRAMES
    video_max_pixels: int = DEFAULT_VIDEO_MAX_PIXELS
    video_max_file_size: int | str = DEFAULT_VIDEO_MAX_FILE_SIZE
    video_timeout_s: float = 600.0
    metrics_access: str = "loopback"

    def __post_init__(self) -> None:
        valid = set(model_ids())
        unknown = [m for m in self.models if m not in valid]
        if unknown:
            raise ValueError(
                f"Unknown model id(s) {', '.join(unknown)}; valid ids: {', '.join(sorted(valid))}."
            )
        if self.metrics_access not in METRICS_ACCESS:
            raise ValueError(f"--metrics must be one of {', '.join(METRICS_ACCESS)}, got "
                             f"{self.metrics_access!r}.")
        if not self.models and not self.extra_models:
            raise ValueError("Offer at least one model (--models grabcut works offline).")
        if self.api_open_local and (self.host not in LOOPBACK_HOSTS or self.share):
            exposed = f"--host {self.host}" if self.host not in LOOPBACK_HOSTS else "--share"
            raise ValueError(
                "--api-open-local opens the REST API without keys, for this machine only; it "
                f"cannot be combined with {exposed}. Create a key instead: python -m "
                "server.security.keys create --name me --file keys.json, then start the app with "
                "--api-keys keys.json.")

    @property
    def upload_bytes(self) -> int:
        """``max_file_size`` in bytes: the largest image accepted, however it arrives."""
        return parse_bytes(self.max_file_size)

    @property
    def video_file_bytes(self) -> int:
        """``video_max_file_size`` in bytes."""
        return parse_bytes(self.video_max_file_size)

    @property
    def body_limit(self) -> int:
        """The request-body limit in bytes (see ``max_body_bytes``)."""
        if self.max_body_bytes is not None:
            return int(self.max_body_bytes)
        return self.upload_bytes + (1 << 20)

    @property
    def mcp_body_limit(self) -> int:
        """The request-body limit of the MCP transport (``/gradio_api/mcp``): a file argument
        travels as a base64 data URI (4/3 of the file) inside JSON, so room for a file half as
        large again as ``upload_bytes``: one somewhat over the limit reaches the tool, which
        refuses it with a message that says the limit (``ui.mcp_tools``)."""
        return self.upload_bytes * 3 // 2 + (1 << 20)

    @property
    def shows_operator_details(self) -> bool:
        """True when messages may name server paths and commands (see ``operator_details``)."""
        if self.operator_details is not None:
            return self.operator_details
        return self.host in LOOPBACK_HOSTS and not on_hf_space() and not self.share

    @property
    def frame_policy(self) -> str:
        if self.frame_ancestors:
            return self.frame_ancestors
        return SPACE_FRAME_ANCESTORS if on_hf_space() else "'self'"

    @property
    def offered_ids(self) -> tuple[str, ...]:
        return tuple(self.models) + tuple(e.spec.model_id for e in self.extra_models)


def space_defaults() -> dict:
    """Overrides for a Hugging Face Space: bind where Spaces expect it, prefetch the default."""
    port = os.environ.get("GRADIO_SERVER_PORT", "").strip() or str(DEFAULT_PORT)
    return {"host": "0.0.0.0", "port": int(port), "fetch_default_on_start": True}


def parse_models(text: str | None) -> tuple[str, ...]:
    """``"sam2.1-tiny,grabcut"`` (commas and/or spaces) -> ids; None or "all" -> catalogue."""
    if text is None or text.strip().lower() in ("", "all"):
        return tuple(model_ids())
    return tuple(part for part in text.replace(",", " ").split() if part)



def parse_examples_dir(text: str) -> Path | None:
    """``--examples-dir`` value -> a folder; ``"none"`` (or empty) -> None: no examples.

    Raises:
        ValueError: the folder does not exist (argparse shows the message and exits).
    """
    if text.strip().lower() in ("", "none"):
        return None
    folder = Path(text).expanduser()
    if not folder.is_dir():
        raise ValueError(f"--examples-dir: {text} is not a folder (give a folder of .png/.jpg "
                         "images, or 'none' to show no examples)")
    return folder
