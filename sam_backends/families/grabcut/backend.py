"""The no-weights baseline: OpenCV GrabCut behind the common encode/predict contract.

It needs no download, so the workbench segments something useful even offline.

How prompts map to GrabCut (labels: sure/probable foreground/background):
    * box: outside sure background, inside probable foreground (what ``GC_INIT_WITH_RECT``
      does), built as an explicit mask so point seeds can be painted on top.
    * points: foreground (label 1) points become small sure-foreground disks, background
      (label 0) points sure-background disks.
    * points without a box: probable background everywhere, probable foreground in a disk around
      each foreground point (radius ``POINT_REGION_FRACTION`` of the longer side), seeds on top.
      At least one foreground point is needed, and only the connected foreground regions that
      contain a foreground point are kept.
    * then ``cv2.grabCut(..., GC_INIT_WITH_MASK)`` for ``ITERATIONS`` rounds, with OpenCV's
      random generator seeded first, so the same image and prompts give the same mask.

Not supported: ``mask_input`` (refinement from a previous prediction's logits) raises
``UnsupportedPromptError``; ``multimask=True`` is accepted but returns one mask (C = 1), since
GrabCut has no notion of alternative candidates (the catalogue lists neither capability).

Speed: images whose longer side exceeds ``WORK_SIDE`` are downscaled (area interpolation) for
GrabCut, and the mask is upscaled back (bilinear on the 0/1 mask, threshold 0.5).

Points without a box are the slow case: every pixel starts as "probable", and OpenCV's max-flow
on a graph that is uncertain everywhere took 1.5-3 s on a 512-px image (a box, whose outside is
sure background, takes 0.3 s). So they run coarse to fine (``fast_points=True``, the default):
    1. GrabCut as described above on the working image scaled down to ``POINT_COARSE_SIDE``;
    2. the coarse mask, upscaled to the working image, fixes everything farther than
       ``POINT_BAND`` pixels from its edge (sure foreground inside, sure background outside);
       GrabCut then decides only the band along the edge, at working resolution, in the crop
       around it (``POINT_REFINE_ITERATIONS`` rounds), the prompts' seeds on top.
``fast_points=False`` keeps the single full-resolution pass (for comparison; see
``benchmarks/bench_grabcut.py``). Boxes always take the single pass.

Outputs, so callers can treat every backend alike:
    * ``scores[0]``: colour separability in [0, 1], not an IoU estimate. For each pixel of the
      region of interest (the box, or the whole image for point prompts) we take the posterior,
      under GrabCut's final foreground/background colour models (equal priors), of the side it
      was assigned to, and average. 0.5 means the colours do not tell object from background;
      1 means they separate perfectly. An empty mask scores 0. Coarse-to-fine point prompts
      score the coarse pass (its image, mask and colour models).
    * ``low_res_logits``: 1 x 256 x 256 in SAM's frame (the longer side scaled to 256, padded
      bottom/right with background): ``20 * (coverage - 0.5)``, where coverage is the fraction
      of foreground pixels in each low-res cell. Positive exactly where the cell is mostly
      foreground, like SAM's logits thresholded at 0.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ...base import Backend, array_nbytes
from ...errors import SamBackendError, UnsupportedPromptError
from ...images import to_rgb_array
from ...registry import ModelSpec
from ...types import LOW_RES_SIZE, Embedding, Prediction, Prompts

WORK_SIDE = 512  # longer side GrabCut works at (pixels)
ITERATIONS = 5
SEED_RADIUS_FRACTION = 0.01  # point seed disk radius, fraction of the working longer side
POINT_REGION_FRACTION = 0.15  # probable-foreground disk around a point, points-only prompts
POINT_COARSE_SIDE = 160  # longer side of the coarse pass for points-only prompts (pixels)
POINT_BAND = 4  # half-width, in working pixels, of the edge band the fine pass decides
POINT_REFINE_ITERATIONS = 2
RNG_SEED = 0
_COMPONENTS = 5  # GMM components per model in OpenCV's GrabCut
_LOGIT_SCALE = 20.0


def load(
    spec: ModelSpec, checkpoint: Path | None, device: str, precision: str,
    fast_points: bool = True,
) -> "GrabCutBackend":
    """Build the backend. GrabCut has no weights and runs on the CPU whatever ``device`` says;
    ``precision`` is recorded as given (it changes nothing here). ``fast_points=False`` runs
    points-only prompts in one full working-resolution pass (slow; kept for comparison)."""
    try:
        import cv2  # noqa: F401
    except ImportError as exc:
        from ...errors import BackendUnavailableError

        raise BackendUnavailableError(
            "GrabCut needs OpenCV: pip install opencv-python-headless"
        ) from exc
    return GrabCutBackend(spec, precision, fast_points=fast_points)


class GrabCutBackend(Backend):
    """OpenCV GrabCut; stateless between calls (the embedding holds the working image)."""

    def __init__(self, spec: ModelSpec, precision: str, fast_points: bool = True) -> None:
        self.spec = spec
        self.device = "cpu"
        self.precision = precision
        self.fast_points = fast_points

    def encode(self, image: Any) -> Embedding:
        """Keep the (possibly downscaled) RGB image; GrabCut's real work depends on prompts.

        ``features``: ``{"image": h x w x 3 uint8 read-only, "scale": work / original}``.
        """
        import cv2

        start = time.perf_counter()
        rgb = to_rgb_array(image)
        height, width = rgb.shape[:2]
        scale = min(1.0, WORK_SIDE / max(height, width))
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            work = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        else:
            work = rgb.copy()
        work.setflags(write=False)
        features = {"image": work, "scale": scale}
        return Embedding(
            model_id=self.model_id,
            precision=self.precision,
            original_size=(height, width),
            input_size=tuple(work.shape[:2]),
            features=features,
            nbytes=array_nbytes(features),
            encode_seconds=time.perf_counter() - start,
        )

    def predict(self, embedding: Embedding, prompts: Prompts) -> Prediction:
        """Segment the object the prompts point at; see the module docstring for the mapping.

        Returns one mask (bool 1 x H x W), one score and 1 x 256 x 256 logits.

        Raises:
            PromptError: empty prompts or coordinates outside the image.
            UnsupportedPromptError: ``mask_input`` given, or only background points.
        """

        start = time.perf_counter()
        self.check_embedding(embedding)
        prompts.validate_for_image(embedding.original_size)
        if prompts.mask_input is not None:
            raise UnsupportedPromptError(
                "GrabCut cannot refine a previous mask (mask_input); add points or a box "
                "instead, or pick a SAM model for mask refinement."
            )
        if prompts.box is None and 1 not in prompts.labels:
            raise UnsupportedPromptError(
                "GrabCut needs a box or at least one foreground point (label 1); background "
                "points alone do not say which object to cut out."
            )
        work = embedding.features["image"]
        scale = float(embedding.features["scale"])
        coarse = POINT_COARSE_SIDE / max(work.shape[:2])
        if prompts.box is None and self.fast_points and coarse < 1.0:
            small, score = _coarse_to_fine(work, prompts, scale, coarse)
        else:
            small, score = _single_pass(work, prompts, scale)
        mask = _upscale(small, embedding.original_size)
        return Prediction.from_masks(
            masks=mask[None],
            scores=np.array([score], np.float32),
            low_res_logits=_low_res_logits(small)[None],
            decode_seconds=time.perf_counter() - start,
        )


def _grabcut(image: np.ndarray, gc_mask: np.ndarray, iterations: int) -> tuple[np.ndarray, ...]:
    """Run seeded GrabCut in place on ``gc_mask``; returns (foreground bool, bgd, fgd models)."""
    import cv2

    bgd_model = np.zeros((1, 13 * _COMPONENTS), np.float64)
    fgd_model = np.zeros((1, 13 * _COMPONENTS), np.float64)
    cv2.setRNGSeed(RNG_SEED)
    try:
        cv2.grabCut(np.ascontiguousarray(image), gc_mask, None, bgd_model, fgd_model,
                    iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error as exc:
        raise SamBackendError(
            f"GrabCut failed on this {image.shape[1]}x{image.shape[0]} image ({exc.err}); try "
            "a larger box or a bigger image."
        ) from None
    foreground = (gc_mask == cv2.GC_FGD) | (gc_mask == cv2.GC_PR_FGD)
    return foreground, bgd_model, fgd_model


def _single_pass(work: np.ndarray, prompts: Prompts, scale: float) -> tuple[np.ndarray, float]:
    """GrabCut at working resolution: (mask h x w bool, score)."""
    gc_mask, roi = _initial_mask(work.shape[:2], prompts, scale)
    small, bgd_model, fgd_model = _grabcut(work, gc_mask, ITERATIONS)
    if prompts.box is None:
        small = _keep_clicked_components(small, prompts, scale)
    return small, _separability(work, small, roi, bgd_model, fgd_model)


def _coarse_to_fine(
    work: np.ndarray, prompts: Prompts, scale: float, coarse: float
) -> tuple[np.ndarray, float]:
    """Points-only prompts: a coarse pass, then the edge band at working resolution (see the
    module docstring). ``coarse`` is coarse side / working side (< 1)."""
    import cv2

    height, width = work.shape[:2]
    size = (max(1, round(width * coarse)), max(1, round(height * coarse)))
    image = cv2.resize(work, size, interpolation=cv2.INTER_AREA)
    first, score = _single_pass(image, prompts, scale * coarse)
    if not first.any():
        return np.zeros((height, width), bool), 0.0
    up = cv2.resize(first.astype(np.uint8), (width, height), interpolation=cv2.INTER_LINEAR) > 0
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * POINT_BAND + 1,) * 2)
    inner = cv2.erode(up.astype(np.uint8), kernel) > 0
    outer = cv2.dilate(up.astype(np.uint8), kernel) > 0
    seeds, _ = _initial_mask((height, width), prompts, scale)
    band = np.full((height, width), cv2.GC_BGD, np.uint8)
    band[outer] = cv2.GC_PR_BGD
    band[up] = cv2.GC_PR_FGD
    band[inner] = cv2.GC_FGD
    sure = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_BGD)
    band[sure] = seeds[sure]
    # The crop around the band, with a margin of sure background for the colour models.
    rows, cols = np.nonzero(outer)
    margin = 4 * POINT_BAND
    r0, r1 = max(0, rows.min() - margin), min(height, rows.max() + margin + 1)
    c0, c1 = max(0, cols.min() - margin), min(width, cols.max() + margin + 1)
    crop = band[r0:r1, c0:c1].copy()
    fixed_fg = np.count_nonzero(crop == cv2.GC_FGD)
    fixed_bg = np.count_nonzero(crop == cv2.GC_BGD)
    if min(fixed_fg, fixed_bg) < _COMPONENTS:  # too thin to learn colours: keep the coarse mask
        return _keep_clicked_components(up, prompts, scale), score
    fine, _, _ = _grabcut(work[r0:r1, c0:c1], crop, POINT_REFINE_ITERATIONS)
    mask = np.zeros((height, width), bool)
    mask[r0:r1, c0:c1] = fine
    return _keep_clicked_components(mask, prompts, scale), score


def _initial_mask(
    shape: tuple[int, int], prompts: Prompts, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """GrabCut's starting label map at working resolution, and the region of interest (bool)."""
    import cv2

    height, width = shape
    side = max(height, width)
    if prompts.box is not None:
        mask = np.full(shape, cv2.GC_BGD, np.uint8)
        x0, y0, x1, y1 = prompts.box
        c0 = min(int(np.floor(x0 * scale)), width - 1)
        r0 = min(int(np.floor(y0 * scale)), height - 1)
        c1 = max(int(np.ceil(x1 * scale)), c0 + 1)
        r1 = max(int(np.ceil(y1 * scale)), r0 + 1)
        mask[r0:r1, c0:c1] = cv2.GC_PR_FGD
        roi = np.zeros(shape, bool)
        roi[r0:r1, c0:c1] = True
    else:
        mask = np.full(shape, cv2.GC_PR_BGD, np.uint8)
        region = max(2, round(POINT_REGION_FRACTION * side))
        for (x, y), label in zip(prompts.points, prompts.labels):
            if label == 1:
                cv2.circle(mask, _pixel(x, y, scale, shape), region, int(cv2.GC_PR_FGD), -1)
        roi = np.ones(shape, bool)
    radius = max(2, round(SEED_RADIUS_FRACTION * side))
    for (x, y), label in zip(prompts.points, prompts.labels):
        value = cv2.GC_FGD if label == 1 else cv2.GC_BGD
        cv2.circle(mask, _pixel(x, y, scale, shape), radius, int(value), -1)
    if np.count_nonzero((mask == cv2.GC_BGD) | (mask == cv2.GC_PR_BGD)) < _COMPONENTS:
        # Nothing left outside (a box over the whole image): let the image's outer ring start as
        # probable background so the background colour model has samples; it can be overruled.
        ring = np.ones(shape, bool)
        ring[1:-1, 1:-1] = False
        mask[ring & (mask != cv2.GC_FGD)] = cv2.GC_PR_BGD
    return mask, roi


def _pixel(x: float, y: float, scale: float, shape: tuple[int, int]) -> tuple[int, int]:
    """Original-image (x, y) -> the working-image pixel that contains it."""
    height, width = shape
    return (min(int(x * scale), width - 1), min(int(y * scale), height - 1))


def _keep_clicked_components(mask: np.ndarray, prompts: Prompts, scale: float) -> np.ndarray:
    """Keep only the connected foreground regions that contain a foreground point: without a
    box, nothing else bounds GrabCut, and same-coloured regions elsewhere are not the object."""
    import cv2

    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    clicked = {
        labels[y, x]
        for (x, y), label in ((_pixel(px, py, scale, mask.shape), lab)
                              for (px, py), lab in zip(prompts.points, prompts.labels))
        if label == 1
    }
    clicked.discard(0)
    return np.isin(labels, sorted(clicked))


def _upscale(small: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    height, width = size
    if small.shape == (height, width):
        return small.copy()
    soft = cv2.resize(small.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return soft > 0.5


def _low_res_logits(small: np.ndarray) -> np.ndarray:
    """SAM-frame 256 x 256 logits from a working-resolution mask (see module docstring)."""
    import cv2

    height, width = small.shape
    scale = LOW_RES_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    coverage = cv2.resize(small.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    frame = np.zeros((LOW_RES_SIZE, LOW_RES_SIZE), np.float32)
    frame[: size[1], : size[0]] = coverage
    return (_LOGIT_SCALE * (frame - 0.5)).astype(np.float32)


def _separability(
    image: np.ndarray, foreground: np.ndarray, roi: np.ndarray,
    bgd_model: np.ndarray, fgd_model: np.ndarray,
) -> float:
    """Mean posterior of the assigned side over the ROI (see module docstring)."""
    if not foreground.any():
        return 0.0
    pixels = image[roi].astype(np.float64)
    assigned = foreground[roi]
    log_fg = _gmm_log_density(pixels, fgd_model)
    log_bg = _gmm_log_density(pixels, bgd_model)
    p_fg = 1.0 / (1.0 + np.exp(np.clip(log_bg - log_fg, -50.0, 50.0)))
    return float(np.mean(np.where(assigned, p_fg, 1.0 - p_fg)))


def _gmm_log_density(pixels: np.ndarray, model: np.ndarray) -> np.ndarray:
    """Log density of N x 3 colours under OpenCV's GrabCut GMM, stored as 1 x 65 float64:
    5 weights, then 5 x 3 means, then 5 x 3 x 3 covariances."""
    coefs = model.reshape(-1)
    weights = coefs[:_COMPONENTS]
    means = coefs[_COMPONENTS : 4 * _COMPONENTS].reshape(_COMPONENTS, 3)
    covs = coefs[4 * _COMPONENTS :].reshape(_COMPONENTS, 3, 3)
    terms = []
    for k in range(_COMPONENTS):
        if weights[k] <= 0:
            continue
        cov = covs[k] + np.eye(3) * 1e-6
        inverse = np.linalg.inv(cov)
        diff = pixels - means[k]
        mahalanobis = np.einsum("ni,ij,nj->n", diff, inverse, diff)
        log_norm = -0.5 * (3 * np.log(2 * np.pi) + np.log(np.linalg.det(cov)))
        terms.append(np.log(weights[k]) + log_norm - 0.5 * mahalanobis)
    if not terms:
        return np.full(len(pixels), -np.inf)
    stacked = np.stack(terms)
    top = stacked.max(axis=0)
    return top + np.log(np.exp(stacked - top).sum(axis=0))
