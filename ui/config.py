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

DEFAULT_PORT = 7860
DEFAULT_MAX_FILE_SIZE = "25mb"  # upload limit enforced by Gradio before our code runs
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000  # refused from the header, before decoding
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
        max_loaded_models: loaded backends kept in memory at once (least recently used go).
        max_image_pixels: larger images are refused with a friendly message.
        max_file_size: Gradio's upload limit, e.g. "25mb".
        fetch_default_on_start: download the default model in the background at start-up.
        examples_dir: folder of example images shown in the segment view.
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
    max_loaded_models: int = 6  # the Compare tab runs up to 6 models side by side
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_file_size: str = DEFAULT_MAX_FILE_SIZE
    max_sessions: int = 200
    fetch_default_on_start: bool = False
    examples_dir: Path | None = ASSETS_DIR

    def __post_init__(self) -> None:
        valid = set(model_ids())
        unknown = [m for m in self.models if m not in valid]
        if unknown:
            raise ValueError(
                f"Unknown model id(s) {', '.join(unknown)}; valid ids: {', '.join(sorted(valid))}."
            )
        if not self.models and not self.extra_models:
            raise ValueError("Offer at least one model (--models grabcut works offline).")

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
