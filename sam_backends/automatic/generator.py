"""``segment_everything``: a grid of point prompts on a cached embedding -> ``Instances``.

The same pipeline as upstream's ``SamAutomaticMaskGenerator`` / ``SAM2AutomaticMaskGenerator``
(one crop, no m2m), with the expensive part moved to low resolution:

    grid of points --decode (batches)--> 256 x 256 logits + predicted IoU per candidate
      --predicted IoU > pred_iou_thresh-->
      --stability >= stability_score_thresh, boxes (logits upscaled 2x: 512 x 512)-->
      --box NMS at box_nms_thresh-->
      --upscale ONLY the survivors to H x W, threshold at mask_threshold-->
      --min_mask_region_area: holes/islands removed, NMS again (full resolution, as upstream)-->
      Instances (boxes from the final masks, highest score first)

Upstream upscales every candidate (192 per batch of 64 points) to the original size and
computes stability scores, boxes and RLE there; most of its time goes to that. Here a
candidate costs one decoder call plus work on 512 x 512 logits, and only the few dozen that
survive NMS are upscaled. A grid point none of whose candidates can pass the predicted-IoU
filter is not even upscaled to 256 x 256 (the decoder's two upscaling products, most of a
decode, wait for its IoUs: ``GridDecoder(iou_floor=...)``). What can differ from upstream: a
candidate whose stability score lies within about 0.03 of the threshold, or whose box IoU
within a pixel's rounding of the NMS threshold, may be decided the other way
(``tests/engine/test_everything.py`` and ``benchmarks/bench_everything.py`` measure the
agreement).

Cancellation: ``cancel()`` is polled before each batch and before post-processing; when it
returns True, ``EverythingCancelledError`` is raised (nothing partial is returned: candidates
before NMS are not a usable result). ``progress(done, total)`` is called with the number of
grid points decoded so far, from 0 to total, in the calling thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import PromptError, SamBackendError, UnsupportedPromptError
from ..instances import Instances
from ..masks import mask_boxes
from ..types import Embedding
from .decoding import LOW_RES, GridDecoder, grid_decoder
from .filters import low_res_boxes, nms, remove_small_regions, stability_scores
from .grid import grid_points
from .params import EverythingParams

FP16_MAX = 65000.0  # candidates' logits are stored in fp16 (half the memory), clamped to this
# Stability scores and NMS boxes are measured on the logits upscaled 2x (512 x 512, bilinear):
# at 256 x 256 the pixel-scale detail of the logits makes areas differ from full resolution by
# up to 0.3 in stability (random weights); at 512 by at most about 0.03, for ~3 ms a candidate.
STABILITY_SCALE = 2
STABILITY_CHUNK = 16  # candidates upscaled at once (16 MiB of temporaries)


class EverythingCancelledError(SamBackendError):
    """``segment_everything`` stopped because ``cancel()`` returned True.

    Attributes:
        done: grid points decoded before it stopped; total: points in the grid.
    """

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"Segment everything was cancelled after {done} of {total} points.")
        self.done = done
        self.total = total


def segment_everything(
    backend: Any,
    embedding: Embedding,
    params: EverythingParams | None = None,
    *,
    cancel: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Instances:
    """Every object the model finds from a grid of single-point prompts.

    Args:
        backend: a backend from ``create_backend`` (any precision, device) whose family can
            segment everything (``Family.everything``; SAM 1 and SAM 2.1 decode the grid as
            upstream's generators do, other families through ``predict``).
        embedding: ``backend.encode(image)`` (cached; the encoder does not run again).
        params: grid and filter settings (default: upstream's defaults).
        cancel: polled between batches; returning True stops with ``EverythingCancelledError``.
        progress: called as ``progress(done, total)`` in grid points, after each batch.

    Returns:
        ``Instances`` at the original resolution: masks N x H x W bool, scores (predicted IoU,
        clipped to [0, 1]) highest first, boxes XYXY of the masks (x1/y1 exclusive), labels
        "", and ``seconds`` {"decode": ..., "postprocess": ...}. Empty masks are dropped.

    Raises:
        UnsupportedPromptError: the backend's family cannot segment everything (GrabCut).
        PromptError: ``params`` is not an ``EverythingParams``.
        SamBackendError: the embedding belongs to another model or precision.
        ModelOutputError: the decoder produced NaN/Inf.
        EverythingCancelledError: ``cancel()`` returned True.
    """
    import torch

    params = EverythingParams() if params is None else params
    if not isinstance(params, EverythingParams):
        raise PromptError(f"params must be an EverythingParams, got {type(params).__name__}.")
    _check_backend(backend)
    if not isinstance(embedding, Embedding):
        raise SamBackendError("segment_everything() needs the Embedding returned by encode(), "
                              f"got {type(embedding).__name__}.")
    backend.check_embedding(embedding)
    points = grid_points(params.points_per_side, embedding.original_size)
    total = len(points)
    step = params.points_per_batch
    started = time.perf_counter()
    with torch.inference_mode():
        iou_thresh = params.iou_threshold(backend.spec.family)
        decoder = grid_decoder(backend, embedding, params.multimask_output, iou_thresh)
        pool = _Candidates(decoder, params, iou_thresh)
        _report(progress, 0, total)
        for begin in range(0, total, step):
            _check_cancel(cancel, begin, total)
            pool.add(*decoder(points[begin: begin + step]))
            _report(progress, min(total, begin + step), total)
        _check_cancel(cancel, total, total)
        decoded = time.perf_counter()
        logits, scores, boxes = pool.result()
        keep = nms(boxes, scores, params.box_nms_thresh)
        masks = _upscale(decoder, logits[keep], params.mask_threshold)
    scores = scores[keep]
    if params.min_mask_region_area > 0:
        masks, scores, boxes = _small_regions(masks, scores, params)
    else:
        boxes = mask_boxes(masks)
    nonempty = np.flatnonzero(boxes[:, 2] > boxes[:, 0])  # an empty mask's box is zeros
    masks, scores, boxes = _compact(masks, nonempty), scores[nonempty], boxes[nonempty]
    seconds = {"decode": decoded - started, "postprocess": time.perf_counter() - decoded}
    return Instances(masks, np.clip(scores, 0.0, 1.0), boxes, ("",) * len(masks),
                     backend.model_id, seconds)


def _compact(masks: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``masks[keep]`` (``keep`` ascending indices) without a second N x H x W array: the kept
    planes move down in place and the first ``len(keep)`` are returned (a view).

    The full-resolution stack is the largest thing segment everything makes (235 MB for 109
    masks of an 1800 x 1200 photo), and a fresh array that size is written page by page: on
    the 2-core test VM each new one cost 2-3 s of page faults, as long as the rest of the
    post-processing, while nothing is empty in almost every run.
    """
    for position, index in enumerate(keep):
        if position != index:
            masks[position] = masks[index]
    return masks[: len(keep)]


def _check_backend(backend: Any) -> None:
    from ..families import get_family

    spec = getattr(backend, "spec", None)
    if spec is None or get_family(spec.family).everything is None:
        name = getattr(spec, "display_name", type(backend).__name__)
        raise UnsupportedPromptError(
            f"{name} cannot segment everything: it needs a model that decodes a grid of point "
            "prompts. Pick a SAM 1 or SAM 2.1 model."
        )


def _report(progress: Callable[[int, int], None] | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _check_cancel(cancel: Callable[[], bool] | None, done: int, total: int) -> None:
    if cancel is not None and cancel():
        raise EverythingCancelledError(done, total)


class _Candidates:
    """Candidates passing the low-res filters: logits (fp16, the region upscaling reads),
    scores and boxes (in 2x low-res pixels), accumulated batch by batch."""

    def __init__(self, decoder: GridDecoder, params: EverythingParams, iou_thresh: float):
        self.valid = decoder.valid_size_at(STABILITY_SCALE)
        self.stored = decoder.upscale_size
        self.params = params
        self.iou_thresh = iou_thresh
        self.logits: list[Any] = []
        self.scores: list[np.ndarray] = []
        self.boxes: list[np.ndarray] = []

    def add(self, logits: Any, scores: Any) -> None:
        """Filter one batch: logits B x C x 256 x 256, scores B x C (as upstream's order)."""
        params = self.params
        logits, scores = logits.flatten(0, 1), scores.flatten()
        if self.iou_thresh > 0.0:  # upstream filters only with a positive threshold
            keep = scores > self.iou_thresh
            logits, scores = logits[keep], scores[keep]
        stability, boxes = self._measure(logits)
        if params.stability_score_thresh > 0.0:
            keep = stability >= params.stability_score_thresh
            logits, scores, boxes = logits[keep], scores[keep], boxes[keep]
        sh, sw = self.stored
        self.logits.append(logits[:, :sh, :sw].clamp(-FP16_MAX, FP16_MAX).half().cpu())
        self.scores.append(scores.cpu().numpy())
        self.boxes.append(boxes.cpu().numpy())

    def _measure(self, logits: Any) -> tuple[Any, Any]:
        """Stability scores (K) and boxes (K x 4, in STABILITY_SCALE x low-res pixels) of the
        image part of K x 256 x 256 logits, upscaled STABILITY_SCALE times in chunks."""
        import torch
        from torch.nn import functional as F

        params = self.params
        vh, vw = self.valid
        stability, boxes = [], []
        for chunk in torch.split(logits, STABILITY_CHUNK):
            up = F.interpolate(chunk[:, None], scale_factor=STABILITY_SCALE, mode="bilinear",
                               align_corners=False)[:, 0, :vh, :vw]
            stability.append(stability_scores(up, params.mask_threshold,
                                              params.stability_score_offset))
            boxes.append(low_res_boxes(up, params.mask_threshold))
        if not stability:
            return torch.zeros(0), torch.zeros((0, 4))
        return torch.cat(stability), torch.cat(boxes)

    def result(self) -> tuple[Any, np.ndarray, np.ndarray]:
        """(logits K x h x w fp16, scores K float32, boxes K x 4 in 2x low-res pixels)."""
        import torch

        if not self.logits:
            return torch.zeros((0, *self.stored), dtype=torch.half), np.zeros(0, np.float32), \
                np.zeros((0, 4), np.float32)
        return (torch.cat(self.logits), np.concatenate(self.scores).astype(np.float32),
                np.concatenate(self.boxes).astype(np.float32))


def _upscale(decoder: GridDecoder, logits: Any, threshold: float) -> np.ndarray:
    """Stored low-res logits K x h x w -> bool K x H x W, as each family's predictor upscales
    (``decoder.masks``; SAM: ``fast_upscale``, OpenCV bilinear, equal to upstream's up to float
    rounding)."""
    planes = np.zeros((len(logits), LOW_RES, LOW_RES), dtype=np.float32)
    sh, sw = decoder.upscale_size
    planes[:, :sh, :sw] = logits.float().numpy()
    return decoder.masks(planes, threshold)


def _small_regions(
    masks: np.ndarray, scores: np.ndarray, params: EverythingParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upstream's ``postprocess_small_regions``: holes then islands under the area removed,
    then NMS preferring unchanged masks (ties: higher predicted IoU, which is the order in).
    Returns the kept masks, scores and boxes (the NMS's boxes, so none is measured twice)."""
    area = params.min_mask_region_area
    unchanged = []
    for index, mask in enumerate(masks):  # ``masks`` is this run's own array: fixed in place
        mask, changed_holes = remove_small_regions(mask, area, "holes")
        mask, changed_islands = remove_small_regions(mask, area, "islands")
        if changed_holes or changed_islands:
            masks[index] = mask
        unchanged.append(not (changed_holes or changed_islands))
    boxes = mask_boxes(masks)
    if not unchanged:
        return masks, scores, boxes
    rank = np.arange(len(masks)) / len(masks)  # 0 for the best predicted IoU
    preference = np.asarray(unchanged, dtype=np.float32) + 0.5 * (1.0 - rank)
    keep = nms(boxes, preference, max(params.box_nms_thresh, params.crop_nms_thresh))
    keep = np.sort(keep)  # back to predicted-IoU order
    return _compact(masks, keep), scores[keep], boxes[keep]
