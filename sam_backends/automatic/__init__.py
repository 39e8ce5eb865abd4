""""Segment everything": a grid of point prompts on a cached embedding, as ``Instances``.

    >>> from sam_backends import create_backend
    >>> from sam_backends.automatic import EverythingParams, segment_everything
    >>> backend = create_backend("sam2.1-tiny")
    >>> embedding = backend.encode(image)                      # once per image, cached
    >>> found = segment_everything(backend, embedding, EverythingParams(points_per_side=16))
    >>> found.masks.shape, found.scores[:3]                     # (N, H, W) bool, best first

Parameters are named as upstream's ``SamAutomaticMaskGenerator`` / ``SAM2AutomaticMaskGenerator``
(``params``); filtering and NMS run on the decoder's low-res logits and only the survivors are
upscaled (``generator``), which is what makes it an order of magnitude faster on a CPU.
"""

from .generator import EverythingCancelledError, segment_everything
from .memory import fit_memory, largest_grid, peak_bytes
from .params import (
    MAX_POINTS_PER_BATCH,
    MAX_POINTS_PER_SIDE,
    EverythingParamError,
    EverythingParams,
)

__all__ = [
    "EverythingCancelledError",
    "EverythingParamError",
    "EverythingParams",
    "MAX_POINTS_PER_BATCH",
    "MAX_POINTS_PER_SIDE",
    "fit_memory",
    "largest_grid",
    "peak_bytes",
    "segment_everything",
]
