"""What a labelling run asks for (``LabelRun``) and how a worker loads its models (``Models``).

Both are frozen, picklable values: the driver builds them once, and every executor (threads,
processes, Ray actors on other machines) receives the same ones, so what runs on a cluster is
what was tested locally.

The run key (``LabelRun.run_key``) is a hash of what decides the objects (mode, models, phrases,
thresholds, grid), never of which images or how they run: the same command run again, with
another ``--images`` glob, more workers or on Ray, continues the same run instead of starting a
new one. Objects a run makes carry ``run_key`` + their index, and each finished image a marker
(``marker_key``) stored with them in one transaction (``workbench.labeling.driver``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from sam_backends.registry import ModelSpec

MODES = ("text", "everything", "boxes")
DEFAULT_THRESHOLD = 0.5  # the page's "Score threshold" slider (workbench.proposals.logic)
DEFAULT_POINTS = 16  # the page's "Points per side" default (workbench.proposals.engines)
EVERYTHING_CLASS = "object"  # the class of "everything" objects, as the page names them
DETECTOR = "owlv2"  # text for a SAM 1 / SAM 2.1 model: OWLv2 boxes, then SAM (as the page)
STATE_PREFIX = "label/"


class LabelRunError(ValueError):
    """A run that cannot be made as asked; the message says what to change."""


@dataclass(frozen=True)
class LabelRun:
    """One auto-labelling run over a project.

    Attributes:
        model_id: the SAM model that makes the masks ("sam2.1-tiny", "sam-vit-b", "sam3").
        mode: "text" (phrases), "everything" (a grid of points) or "boxes" (boxes given per
            image, e.g. from a detector's label files, each cut out by SAM).
        phrases: the text prompt's phrases ("car", "person"); one class per phrase.
        threshold: least score kept: the detection score for text, predicted IoU for
            everything (the page's slider, 0.5).
        points_per_side: the "everything" grid (the page's default, 16).
        images: a glob over the project's image paths ("**/*" = all; "train/*.jpg").
        max_pixels: images with more pixels are refused from their header (None: the engine's
            limit, env SAM_MAX_PIXELS).
        boxes: "boxes" mode: the folder of YOLO detection label files (``<stem>.txt``: ``class
            cx cy w h``, normalised; class names in ``classes.txt`` or ``data.yaml``).
    """

    model_id: str
    mode: str = "text"
    phrases: tuple[str, ...] = ()  # a "car, person" string is split the same way
    threshold: float = DEFAULT_THRESHOLD
    points_per_side: int = DEFAULT_POINTS
    images: str = "**/*"
    max_pixels: int | None = None
    boxes: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise LabelRunError(f"Unknown mode {self.mode!r}; pick one of {', '.join(MODES)}.")
        if self.mode == "text" and not self.phrases:
            raise LabelRunError("A text run needs at least one phrase, e.g. --text \"car\".")
        if self.mode == "boxes" and not self.boxes:
            raise LabelRunError("A boxes run needs the folder of box label files (--boxes DIR).")
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise LabelRunError(f"The threshold is in [0, 1], got {self.threshold}.")
        object.__setattr__(self, "phrases", self._checked_phrases())

    def _checked_phrases(self) -> tuple[str, ...]:
        """The phrases as the page's text prompt reads them (split at commas, trimmed, repeats
        dropped) within its limits (``sam_backends.text.phrases``): every entrance, the page and
        ``samwb label``, gets the same bounds and messages."""
        if self.mode != "text":
            return tuple(self.phrases)
        from sam_backends.errors import PromptError
        from sam_backends.text.phrases import parse_phrases

        try:
            return parse_phrases(self.phrases)
        except PromptError as exc:
            raise LabelRunError(str(exc)) from None

    @property
    def run_key(self) -> str:
        """"run:<12 hex>:": the prefix of this run's objects' run keys (see the module doc)."""
        decides = {"model": self.model_id, "mode": self.mode,
                   "phrases": list(self.phrases) if self.mode == "text" else [],
                   "threshold": float(self.threshold),
                   "points": int(self.points_per_side) if self.mode == "everything" else 0,
                   "boxes": self.boxes if self.mode == "boxes" else ""}
        digest = hashlib.sha256(json.dumps(decides, sort_keys=True).encode()).hexdigest()
        return f"run:{digest[:12]}:"

    def marker_key(self, image_id: int) -> str:
        """The state key that says "image ``image_id`` is done for this run"."""
        return f"{self.marker_prefix}{int(image_id)}"

    @property
    def marker_prefix(self) -> str:
        return f"{STATE_PREFIX}{self.run_key}"

    def class_names(self) -> tuple[str, ...]:
        """The classes this run files its objects under (made when missing)."""
        if self.mode == "text":
            return self.phrases
        if self.mode == "everything":
            return (EVERYTHING_CLASS,)
        return ()

    def describe(self) -> str:
        if self.mode == "text":
            return f"text \"{', '.join(self.phrases)}\" with {self.model_id}"
        if self.mode == "everything":
            return f"everything ({self.points_per_side} per side) with {self.model_id}"
        return f"boxes cut out with {self.model_id}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "phrases": list(self.phrases)}


@dataclass(frozen=True)
class Models:
    """How a worker loads the run's models: resolved by the driver, loaded once per worker.

    Attributes:
        spec: the SAM model's catalogue entry (resolved on the driver, so workers need no
            catalogue of their own and tests can pass reduced-size specs).
        checkpoint: its weights file (or Hugging Face folder); None: the catalogue's file in
            ``checkpoint_dir``.
        detector: the OWLv2 folder when the text is read by a detector; None otherwise.
        device, precision: as ``create_backend`` takes them (None: the best available).
        threads: PyTorch threads per worker (None: the executor decides).
    """

    spec: ModelSpec
    checkpoint: str | None = None
    checkpoint_dir: str | None = None
    detector: str | None = None
    device: str | None = None
    precision: str | None = None
    threads: int | None = None

    def with_threads(self, threads: int | None) -> Models:
        return replace(self, threads=threads)
