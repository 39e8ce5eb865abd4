"""Low-res logits to full-resolution boolean masks with OpenCV (the fast path's post-processing).

The upstream predictors upscale with ``torch.nn.functional.interpolate(mode="bilinear",
align_corners=False)`` on every candidate mask and then threshold at 0. ``cv2.resize`` with
``INTER_LINEAR`` samples the same half-pixel-centred bilinear grid (no antialiasing, as
upstream), in a fraction of the time: for three 1800x1200 masks about 6 ms against 56 ms of
CPU on one core here. Results equal upstream's up to float rounding, so a pixel can differ only
where the interpolated logit is within rounding of the threshold.

Shapes: ``low_res`` is C x 256 x 256 float32 (numpy); masks come back C x H x W bool.
"""

from __future__ import annotations

import numpy as np


def _resize(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of one float32 plane (row-strided views are fine) to height x width."""
    import cv2

    return cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR)


def sam1_masks(
    low_res: np.ndarray,
    input_size: tuple[int, int],
    original_size: tuple[int, int],
    encoder_size: int = 1024,
    threshold: float = 0.0,
) -> np.ndarray:
    """``Sam.postprocess_masks`` then ``> threshold``: to 1024, crop the padding, to H x W.

    Args:
        input_size: (h, w) of the resized image inside the padded encoder input.
        original_size: (H, W) of the image the user gave.
    """
    height, width = original_size
    masks = np.empty((low_res.shape[0], height, width), dtype=bool)
    for index, plane in enumerate(np.ascontiguousarray(low_res, dtype=np.float32)):
        padded = _resize(plane, encoder_size, encoder_size)
        cropped = padded[: input_size[0], : input_size[1]]  # a view: no copy
        np.greater(_resize(cropped, width, height), threshold, out=masks[index])
    return masks


def sam2_masks(
    low_res: np.ndarray, original_size: tuple[int, int], threshold: float = 0.0
) -> np.ndarray:
    """``SAM2Transforms.postprocess_masks`` (no hole filling) then ``> threshold``."""
    height, width = original_size
    masks = np.empty((low_res.shape[0], height, width), dtype=bool)
    for index, plane in enumerate(np.ascontiguousarray(low_res, dtype=np.float32)):
        np.greater(_resize(plane, width, height), threshold, out=masks[index])
    return masks
