"""What a model family is: its facts, as one typed value, next to its loader.

Every ``families/<name>/__init__.py`` defines ``FAMILY`` (a ``Family``) and ``load()``; code
outside ``families/`` asks ``get_family(spec.family)`` for a fact instead of comparing family
names, so a new family is one folder plus its catalogue entries. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Everything:
    """How a family segments everything (a grid of single-point prompts).

    Attributes:
        pred_iou_thresh: the default predicted-IoU filter, as the family's upstream automatic
            mask generator sets it (SAM 1 0.88, SAM 2.1 0.8); ``EverythingParams`` overrides it.
        sam_grid: True when the backend decodes a batch of grid points with SAM's own prompt
            encoder and mask decoder on the cached features (``automatic.decoding.GridDecoder``,
            reproducing upstream's generators); False: point by point through the backend's
            public ``predict`` (``automatic.decoding.PredictGridDecoder``), which any family
            whose ``Prediction.low_res_logits`` cover the whole image can use.
    """

    pred_iou_thresh: float
    sam_grid: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.pred_iou_thresh <= 1.0:
            raise ValueError(f"pred_iou_thresh must be in [0, 1], got {self.pred_iou_thresh!r}")


@dataclass(frozen=True)
class Family:
    """The facts of one model family (everything the app asks about it without loading it).

    Attributes:
        name: the family's folder name under ``families/`` (``ModelSpec.family``).
        note: one line shown with the model in the picker, e.g. "Segment Anything (2023)".
        runs_on_torch: False for a family that must not pay for importing torch (GrabCut):
            ``create_backend`` then runs it on the CPU in its exact precision.
        everything: how it segments everything, or None when it cannot.
        video: True when the family's package offers ``load_video()`` (a video tracker model).
        encodes: True when a model computes an image embedding once per image (cached and
            reused by every click); False when it works on the pixels at each click (GrabCut),
            so the page shows no "encoding" step for it.
        score_name: what the family's mask score measures, as the page words it ("score" for
            SAM's predicted IoU; GrabCut's is a colour separation).
        encoder_gmacs: multiply-adds (G) of each model's image encoder per 1024 x 1024 image,
            by model id; relative costs for encode-time estimates (models not listed get none).
            Within one family the speed per multiply-add is alike, across families ~2x apart.
        video_proposal: why the Video view proposes this family's model on a CPU without native
            bf16, in one line (empty: it is not proposed there).
        text_video: True when the family's package offers ``load_text_video()`` and
            ``start_text_video()``: a video model that finds and tracks what words name by
            itself (SAM 3), a second engine beside ``video.text_tracking.TextTracker``.
        encoder_blocks: where the image encoder's transformer blocks are, as a dotted attribute
            path from the loaded upstream model (the backend's ``model``), e.g.
            ``"image_encoder.blocks"``; background encodes pause between these blocks
            (``sam_backends.background``). Empty: the encoder runs whole.
        precisions: the precisions its loader runs ("fp32" exact, and any fast ones:
            "fp32-fast", "bf16"); ``precision="auto"`` resolves among these
            (``device.resolve_precision``), so a family without a fast path runs exact fp32.
    """

    name: str
    note: str
    runs_on_torch: bool = True
    everything: Everything | None = None
    video: bool = False
    encodes: bool = True
    score_name: str = "score"
    encoder_gmacs: tuple[tuple[str, float], ...] = ()
    encoder_blocks: str = ""
    precisions: tuple[str, ...] = ("fp32",)
    video_proposal: str = ""
    text_video: bool = False

    def encoder_cost(self, model_id: str) -> float | None:
        """The encoder's G multiply-adds for ``model_id``, or None when not measured."""
        return dict(self.encoder_gmacs).get(model_id)


def facts_of_model(model_id: str | None) -> Family | None:
    """The family facts of a catalogue model id; None for an id the catalogue does not hold
    (a model added at run time with its own spec), whose callers then assume SAM's defaults."""
    from ..errors import UnknownModelError
    from ..registry import get_spec
    from . import get_family

    if not model_id:
        return None
    try:
        return get_family(get_spec(model_id).family)
    except UnknownModelError:
        return None
