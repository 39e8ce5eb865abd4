"""Shared pieces of the SAM 1 / SAM 2.1 parity tests: prompt cases and the comparison.

Prompt cases are written in fractions of the image size so every case fits every image shape;
``prompts_for`` turns them into pixel ``Prompts`` (sub-pixel floats, as clicks on a scaled canvas
give). ``upstream_predict`` feeds the same values to an upstream predictor as numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sam_backends import Prediction, Prompts

# (x, y) and boxes as fractions of (width, height).
PROMPT_CASES: dict[str, dict[str, Any]] = {
    "positive point": {"points": [(0.3, 0.4)], "labels": [1]},
    "positive and negative points": {
        "points": [(0.3, 0.4), (0.7, 0.65), (0.52, 0.21)],
        "labels": [1, 0, 1],
    },
    "box": {"box": (0.1, 0.15, 0.6, 0.8)},
    "box and points": {
        "box": (0.1, 0.15, 0.6, 0.8),
        "points": [(0.35, 0.5), (0.55, 0.2)],
        "labels": [1, 0],
    },
    "corner points and full box": {
        "box": (0.0, 0.0, 1.0, 1.0),
        "points": [(0.0, 0.0), (0.9999, 0.9999)],
        "labels": [0, 1],
    },
}

# Shapes as (height, width): landscape, portrait and an odd size with no common factor.
IMAGE_SHAPES: dict[str, tuple[int, int]] = {
    "landscape": (300, 500),
    "portrait": (500, 300),
    "odd": (257, 391),
}


def prompts_for(case: str, shape: tuple[int, int], **extra: Any) -> Prompts:
    """The ``PROMPT_CASES[case]`` prompts in pixels of an image of ``shape`` (H, W)."""
    height, width = shape
    spec = PROMPT_CASES[case]
    points = [(x * width, y * height) for x, y in spec.get("points", ())]
    box = spec.get("box")
    if box is not None:
        box = (box[0] * width, box[1] * height, box[2] * width, box[3] * height)
    return Prompts(points=points, labels=spec.get("labels", ()), box=box, **extra)


def upstream_predict(predictor: Any, prompts: Prompts) -> tuple[np.ndarray, ...]:
    """Call an upstream ``predict`` with the same prompts, as the upstream docs show."""
    return predictor.predict(
        point_coords=np.array(prompts.points) if prompts.points else None,
        point_labels=np.array(prompts.labels) if prompts.points else None,
        box=np.array(prompts.box) if prompts.box is not None else None,
        mask_input=None if prompts.mask_input is None else np.array(prompts.mask_input),
        multimask_output=prompts.multimask,
    )


def assert_matches_upstream(
    prediction: Prediction, upstream: tuple[np.ndarray, ...], shape: tuple[int, int]
) -> None:
    """Masks equal pixel for pixel; scores within 1e-5; low-res logits close."""
    masks, scores, low_res = upstream
    count = 3 if masks.shape[0] == 3 else 1
    assert prediction.masks.dtype == np.bool_
    assert prediction.masks.shape == (count, *shape)
    assert prediction.scores.dtype == np.float32 and prediction.scores.shape == (count,)
    assert prediction.low_res_logits.dtype == np.float32
    assert prediction.low_res_logits.shape == (count, 256, 256)
    np.testing.assert_array_equal(prediction.masks, masks.astype(bool))
    np.testing.assert_allclose(prediction.scores, scores, rtol=0, atol=1e-5)
    np.testing.assert_allclose(prediction.low_res_logits, low_res, rtol=1e-5, atol=1e-5)
