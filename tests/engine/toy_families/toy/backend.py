"""The toy family's backend: masks by colour distance, at a 256 x 256 low resolution.

``encode`` keeps the image sampled on a 256 x 256 grid (nearest pixel; the grid covers the
whole image, stretched, as SAM 2.1's logits do). ``predict`` takes the colour under the first
foreground point (or the box's centre), scores each grid cell by ``RADIUS - distance`` (in
RGB units, times ``SHARPNESS``) and, for a box, keeps only the cells inside it. Multimask gives
three candidates of growing radius. Masks at full resolution are the logits > 0, nearest.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sam_backends.base import Backend
from sam_backends.images import to_rgb_array
from sam_backends.speed.torch_common import check_capabilities
from sam_backends.types import Embedding, Prediction, Prompts

LOW_RES = 256
RADIUS = 40.0  # RGB distance below which a pixel belongs to the object
RADII = (25.0, 40.0, 60.0)  # the three multimask candidates
SHARPNESS = 4.0  # logits per RGB unit: steep, so stability scores are high


class ToyBackend(Backend):
    """See the module docstring. Stateless: the embedding carries the sampled image."""

    def __init__(self, spec: Any, device: str, precision: str) -> None:
        self.spec, self.device, self.precision = spec, device, precision

    def encode(self, image: Any) -> Embedding:
        rgb = to_rgb_array(image)
        height, width = rgb.shape[:2]
        rows = np.minimum((np.arange(LOW_RES) + 0.5) * height / LOW_RES, height - 1).astype(int)
        cols = np.minimum((np.arange(LOW_RES) + 0.5) * width / LOW_RES, width - 1).astype(int)
        grid = rgb[rows][:, cols].astype(np.float32)
        return Embedding(self.model_id, self.precision, (height, width), (height, width),
                         {"grid": grid, "image": rgb}, grid.nbytes + rgb.nbytes)

    def predict(self, embedding: Embedding, prompts: Prompts) -> Prediction:
        started = time.perf_counter()
        self.check_embedding(embedding)
        check_capabilities(self.spec, prompts)
        prompts.validate_for_image(embedding.original_size)
        height, width = embedding.original_size
        rgb = embedding.features["image"]
        if prompts.points:
            x, y = prompts.points[0]
        else:
            x0, y0, x1, y1 = prompts.box
            x, y = (x0 + x1) / 2, (y0 + y1) / 2
        colour = rgb[min(int(y), height - 1), min(int(x), width - 1)].astype(np.float32)
        distance = np.linalg.norm(embedding.features["grid"] - colour, axis=-1)
        radii = RADII if prompts.multimask else (RADIUS,)
        logits = np.stack([(r - distance) * SHARPNESS for r in radii]).astype(np.float32)
        if prompts.box is not None:
            x0, y0, x1, y1 = prompts.box
            centres_x = (np.arange(LOW_RES) + 0.5) * width / LOW_RES
            centres_y = (np.arange(LOW_RES) + 0.5) * height / LOW_RES
            inside = ((centres_y >= y0) & (centres_y < y1))[:, None] \
                & ((centres_x >= x0) & (centres_x < x1))[None, :]
            logits = np.where(inside[None], logits, -SHARPNESS * RADIUS)
        scores = np.linspace(0.9, 0.95, len(radii), dtype=np.float32)

        def mask(index: int) -> np.ndarray:
            rows = np.minimum((np.arange(height) + 0.5) * LOW_RES / height, LOW_RES - 1)
            cols = np.minimum((np.arange(width) + 0.5) * LOW_RES / width, LOW_RES - 1)
            return logits[index][rows.astype(int)][:, cols.astype(int)] > 0

        return Prediction(scores, logits, time.perf_counter() - started, mask)
