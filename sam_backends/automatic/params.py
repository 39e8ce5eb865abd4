"""The parameters of "segment everything", named as upstream's automatic mask generators.

Names, meanings and defaults follow ``segment_anything.SamAutomaticMaskGenerator`` and
``sam2.automatic_mask_generator.SAM2AutomaticMaskGenerator``, so a setting copied from either
means the same thing here. What differs:

* ``pred_iou_thresh`` defaults to None: the upstream default of the model's family (0.88 for
  SAM 1, 0.8 for SAM 2.1; ``Family.everything`` in ``sam_backends/families/``); any number in
  [0, 1] overrides it for both.
* ``mask_threshold`` (SAM 2's name) applies to SAM 1 too (upstream SAM 1 always uses 0.0).
* Crop layers are not implemented: ``crop_n_layers`` must be 0 (its upstream default); the
  whole image is one crop. ``crop_nms_thresh`` still takes part, as upstream, in the NMS that
  follows ``min_mask_region_area`` post-processing.
* Not offered: ``point_grids`` (use ``points_per_side``), ``output_mode`` (the result is an
  ``Instances`` of boolean masks), SAM 2's ``use_m2m`` refinement.
* Bounds upstream leaves to chance: at most 64 points per side (4,096 prompts), at most 1,024
  points per batch, thresholds in [0, 1]. Anything else is refused with an
  ``EverythingParamError`` naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..errors import PromptError

MAX_POINTS_PER_SIDE = 64
MAX_POINTS_PER_BATCH = 1024
MAX_STABILITY_SCORE_OFFSET = 32.0  # mask logits; larger offsets make every mask "stable"
_UNIT_FIELDS = ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh", "crop_nms_thresh")


class EverythingParamError(PromptError):
    """A "segment everything" parameter out of range; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class EverythingParams:
    """Settings for ``segment_everything``; validated on construction.

    Attributes:
        points_per_side: the grid has points_per_side x points_per_side single-point prompts,
            spaced evenly over the image (cell centres, as upstream), 1..64.
        points_per_batch: prompts decoded per step; progress and cancellation are checked
            between steps. 1..1024.
        pred_iou_thresh: keep candidates whose predicted IoU is above this, in [0, 1];
            None: the family's upstream default (SAM 1 0.88, SAM 2.1 0.8).
        stability_score_thresh: keep candidates whose stability score (IoU of the masks
            thresholded at mask_threshold +- stability_score_offset) is at least this, [0, 1].
        stability_score_offset: the logit shift for the stability score, >= 0.
        mask_threshold: logits above this are foreground (a finite number; upstream 0.0).
        box_nms_thresh: box IoU above which the lower-scoring of two candidates is dropped,
            in [0, 1].
        crop_n_layers: must be 0 (crop layers are not implemented).
        crop_nms_thresh: in [0, 1]; with crop_n_layers=0 only used (as upstream, taking the
            larger of it and box_nms_thresh) in the NMS after min_mask_region_area.
        min_mask_region_area: if > 0, holes and disconnected islands smaller than this many
            original-image pixels are removed from each kept mask (upstream semantics: a mask
            whose every island is smaller keeps its largest one), then NMS runs again.
        multimask_output: three candidates per point (upstream default) or one.
    """

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float | None = None
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    mask_threshold: float = 0.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    min_mask_region_area: int = 0
    multimask_output: bool = True

    def __post_init__(self) -> None:
        _check_int("points_per_side", self.points_per_side, 1, MAX_POINTS_PER_SIDE,
                   f" (a {MAX_POINTS_PER_SIDE} x {MAX_POINTS_PER_SIDE} grid is already "
                   f"{MAX_POINTS_PER_SIDE ** 2:,} prompts)")
        _check_int("points_per_batch", self.points_per_batch, 1, MAX_POINTS_PER_BATCH)
        _check_int("min_mask_region_area", self.min_mask_region_area, 0, None)
        _check_int("crop_n_layers", self.crop_n_layers, 0, None)
        if self.crop_n_layers != 0:
            raise EverythingParamError(
                "crop_n_layers",
                f"crop_n_layers={self.crop_n_layers} is not supported: crop layers are not "
                "implemented, so it must be 0 (the whole image is one crop).",
            )
        for name in _UNIT_FIELDS:
            value = getattr(self, name)
            if name == "pred_iou_thresh" and value is None:
                continue
            _check_number(name, value)
            if not 0.0 <= float(value) <= 1.0:
                raise EverythingParamError(name, f"{name} must be in [0, 1]; got {value!r}.")
        _check_number("stability_score_offset", self.stability_score_offset)
        if not 0 <= self.stability_score_offset <= MAX_STABILITY_SCORE_OFFSET:
            raise EverythingParamError(
                "stability_score_offset",
                f"stability_score_offset must be between 0 and {MAX_STABILITY_SCORE_OFFSET} "
                f"(mask logits; upstream's default is 1.0); got {self.stability_score_offset!r}.",
            )
        _check_number("mask_threshold", self.mask_threshold)
        if not isinstance(self.multimask_output, bool):
            raise EverythingParamError(
                "multimask_output",
                f"multimask_output must be True or False; got {self.multimask_output!r}.",
            )

    def iou_threshold(self, family: str) -> float:
        """``pred_iou_thresh``, or the default of ``family`` (its ``Family.everything``, the
        upstream generator's default) when it is None.

        Raises:
            UnsupportedPromptError: the family cannot segment everything.
        """
        if self.pred_iou_thresh is not None:
            return float(self.pred_iou_thresh)
        from ..errors import UnsupportedPromptError
        from ..families import get_family

        facts = get_family(family).everything
        if facts is None:
            raise UnsupportedPromptError(f"The {family} family cannot segment everything.")
        return facts.pred_iou_thresh

    def as_dict(self) -> dict[str, object]:
        """The fields as a plain dict (for logs, JSON and benchmark tables)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _check_int(name: str, value: object, low: int, high: int | None, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EverythingParamError(name, f"{name} must be a whole number; got {value!r}.")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise EverythingParamError(name, f"{name} must be {bound}{why}; got {value:,}.")


def _check_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EverythingParamError(name, f"{name} must be a number; got {value!r}.")
    if not math.isfinite(value):
        raise EverythingParamError(name, f"{name} must be a finite number; got {value!r}.")
