"""Single-point prompts to low-res logits, many at a time, on a cached ``Embedding``.

The grid's prompts are decoded exactly as upstream's generators decode them (one foreground
point each, ``multimask_output`` as asked) but nothing is upscaled here: the result stays at
the decoder's 256 x 256 resolution, where ``generator`` filters and de-duplicates.

Two ways to run the mask decoder, chosen per backend:

* ``"fast"`` (every CPU backend, and any backend with a fast decoder): ``FastMaskDecoder``,
  one prompt per call. In fp32 it computes what the upstream decoder computes (logits within
  about 1e-5, ``tests/engine/test_fast_path.py``) with about 3x fewer operations on a CPU; the bf16
  backends use their own (bf16) instance on the features they already store. On a CPU the
  upstream decoder batched over 64 prompts is slower per prompt than one at a time (it copies
  the 4096 x 256 image rows per prompt), so batching buys nothing there.
* ``"upstream"`` (fp32 on a GPU): the upstream prompt encoder and mask decoder on the whole
  batch, as upstream's generators call them.

Frames: points come in original-image pixels (x, y). The 256 x 256 logits cover the model's
input frame: for SAM 1 the resized image padded to 1024 x 1024 (so only ``valid_size`` of it
holds the image), for SAM 2.1 the image stretched to 1024 x 1024 (all of it). The backend says
which (its ``grid_*`` methods, written in its family's folder), so nothing here names a family.

A family whose facts say ``Everything(sam_grid=False)`` has no SAM decoder to batch; its grid
is decoded by ``PredictGridDecoder`` through the public ``backend.predict``, one point at a
time, from ``Prediction.low_res_logits`` (which must cover the whole image, stretched).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..output_checks import require_finite
from ..types import Embedding

LOW_RES = 256  # side of the decoder's logits for every SAM 1 / SAM 2.1 model


class GridDecoder:
    """Decodes batches of single foreground points for one backend and embedding.

    Args:
        backend: a loaded SAM 1 / SAM 2.1 ``TorchBackend`` (exact or fast precision) whose
            family says ``Everything(sam_grid=True)``: it has the ``grid_*`` methods.
        embedding: ``backend.encode(image)``'s result (already checked by the caller).
        multimask: three candidates per point (outputs 1-3) or one (output 0; SAM 2.1 falls
            back by stability as its predictor does).
        strategy: "fast" or "upstream"; default as in the module docstring.
        iou_floor: the IoU filter that will follow (``pred_iou_thresh``; 0 for none). With the
            fast decoder, a point none of whose candidates can score above it is not upscaled
            (``FastMaskDecoder.decode_unless``): its logits come back as zeros and its scores
            as computed, so the filter drops it exactly as it would have. With multimask, so
            does each candidate at or below it of a point that is upscaled.

    Attributes:
        valid_size: (h, w) of the low-res grid covering the image (SAM 1: ceil(input / 4));
            ``valid_size_at(scale)`` gives it for logits upscaled ``scale`` times.
        upscale_size: (h, w) of the low-res region the full-resolution upscaling reads
            (``valid_size`` plus one row/column of the padding for SAM 1's bilinear kernel;
            all of it when the logits cover the image).
    """

    def __init__(
        self, backend: Any, embedding: Embedding, multimask: bool, strategy: str | None = None,
        iou_floor: float = 0.0,
    ) -> None:
        self.backend = backend
        self.embedding = embedding
        self.multimask = multimask
        self.iou_floor = float(iou_floor)
        self.skipped = 0  # points not upscaled because no candidate could pass iou_floor
        self.prompt_encoder, self.mask_decoder = backend.grid_modules()
        self._cover = backend.grid_cover(embedding)
        self.valid_size = self.valid_size_at(1)
        self.upscale_size = (min(LOW_RES, self.valid_size[0] + 1),
                             min(LOW_RES, self.valid_size[1] + 1))
        fast = getattr(backend, "fast_decoder", None)
        if strategy is None:
            strategy = "fast" if fast is not None or backend.device == "cpu" else "upstream"
        if strategy not in ("fast", "upstream"):
            raise ValueError(f"strategy must be 'fast' or 'upstream', got {strategy!r}")
        if strategy == "upstream" and fast is not None:
            raise ValueError("a fast-precision backend stores features for its fast decoder; "
                             "use strategy='fast'")
        self.strategy = strategy
        self._fast = fast
        self._prepared = embedding.features
        if strategy == "fast" and fast is None:
            from ..speed.fast_decoder import FastMaskDecoder

            self._fast = FastMaskDecoder(
                self.mask_decoder, self.prompt_encoder.get_dense_pe(),
                self.prompt_encoder.no_mask_embed.weight,
            )
            features = embedding.features
            self._prepared = self._fast.prepare(features["image_embed"],
                                                features.get("high_res_feats"))
        if strategy == "fast":  # this run's own tables: the embedding (and its cache) unchanged
            self._prepared = {**self._prepared, **self._fast.fold_tables(self._prepared)}

    def valid_size_at(self, scale: int) -> tuple[int, int]:
        """(h, w) of the logits upscaled ``scale`` times that cover the image (not padding)."""
        side = LOW_RES * scale
        return (min(side, math.ceil(self._cover[0] * side)),
                min(side, math.ceil(self._cover[1] * side)))

    def model_frame(self, points: np.ndarray) -> Any:
        """Original pixels (B x 2, x y) -> the encoder's input frame, float32 B x 1 x 2."""
        import torch

        scale = self.backend.grid_scale(self.embedding)
        coords = torch.as_tensor(points * scale, dtype=torch.float32, device=self.backend.device)
        return coords[:, None, :]

    def __call__(self, points: np.ndarray) -> tuple[Any, Any]:
        """Points B x 2 (original pixels) -> (logits B x C x 256 x 256 fp32, scores B x C fp32).

        Raises:
            ModelOutputError: the decoder produced NaN/Inf (damaged weights).
        """
        import torch

        coords = self.model_frame(np.asarray(points, dtype=np.float64).reshape(-1, 2))
        labels = torch.ones(coords.shape[:2], dtype=torch.int, device=coords.device)
        with self.backend._decoder_context():
            sparse, dense = self.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
            if self.strategy == "fast":
                outputs = [self._decode_one(sparse[i: i + 1]) for i in range(sparse.shape[0])]
                logits = torch.cat([o[0] for o in outputs])
                scores = torch.cat([o[1] for o in outputs])
            else:
                logits, scores = self._upstream(sparse, dense)
        logits, scores = logits.float(), scores.float()
        require_finite(self.backend.spec, self.backend.precision, "masks and scores",
                       [logits, scores])
        return logits, scores

    def _decode_one(self, sparse: Any) -> tuple[Any, Any]:
        """One point's (logits 1 x C x 256 x 256, scores 1 x C) with the fast decoder; a point
        that ``iou_floor`` rules out gets zero logits and its own scores (see the class)."""
        import torch

        if self.iou_floor <= 0.0:
            return self._fast(self._prepared, sparse, None, self.multimask)
        seen = []

        def ruled_out(iou: Any) -> bool:  # none of the scores it can report exceeds the floor
            seen.append(self._candidate_scores(iou))
            return not bool((seen[0] > self.iou_floor).any())

        decoded = self._fast.decode_unless(self._prepared, sparse, None, self.multimask,
                                           ruled_out, floor=self.iou_floor)
        if decoded is not None:
            return decoded
        self.skipped += 1
        return torch.zeros((1, seen[0].shape[1], LOW_RES, LOW_RES)), seen[0]

    def _candidate_scores(self, iou: Any) -> Any:
        """The scores a point reports, 1 x C: outputs 1-3 with multimask; otherwise output 0 or,
        where the decoder falls back by stability (SAM 2.1), the best of 1-3, and since which
        one depends on the mask, the higher of the two stands for both."""
        if self.multimask:
            return iou[:, 1:]
        if self._fast.stability_fallback:
            return iou[:, :1].maximum(iou[:, 1:].amax(dim=1, keepdim=True))
        return iou[:, :1]

    def _upstream(self, sparse: Any, dense: Any) -> tuple[Any, Any]:
        """The upstream mask decoder on the whole batch (image repeated per prompt)."""
        return self.backend.grid_decode_batch(self.embedding.features, sparse, dense,
                                              self.multimask)

    def masks(self, planes: np.ndarray, threshold: float) -> np.ndarray:
        """Low-res logits K x 256 x 256 float32 -> bool K x H x W, as the backend's predictor
        upscales them."""
        return self.backend.grid_masks(planes, self.embedding, threshold)


class PredictGridDecoder:
    """Decodes grid points through ``backend.predict``, for families with no SAM grid decoder.

    The same interface as ``GridDecoder`` (``valid_size``, ``upscale_size``, ``valid_size_at``,
    calling it, ``masks``), so ``generator`` filters its candidates the same way. Each point is
    one ``predict`` call (``Prompts(points=[(x, y)], labels=[1], multimask=...)``); its
    ``low_res_logits`` (C x 256 x 256) cover the whole image, stretched, and are upscaled to the
    original size bilinearly (``fast_upscale.sam2_masks``, the stretched frame), unless the
    backend says otherwise: a padded frame (SAM-HQ's, as SAM 1's) is a backend with
    ``grid_cover(embedding)`` and ``grid_masks(planes, embedding, threshold)``.
    """

    def __init__(self, backend: Any, embedding: Embedding, multimask: bool) -> None:
        self.backend = backend
        self.embedding = embedding
        self.multimask = multimask
        cover = getattr(backend, "grid_cover", None)
        self._cover = (1.0, 1.0) if cover is None else cover(embedding)
        self.valid_size = self.valid_size_at(1)
        self.upscale_size = (min(LOW_RES, self.valid_size[0] + 1),
                             min(LOW_RES, self.valid_size[1] + 1))

    def valid_size_at(self, scale: int) -> tuple[int, int]:
        side = LOW_RES * scale
        return (min(side, math.ceil(self._cover[0] * side)),
                min(side, math.ceil(self._cover[1] * side)))

    def __call__(self, points: np.ndarray) -> tuple[Any, Any]:
        """Points B x 2 (original pixels) -> (logits B x C x 256 x 256 fp32, scores B x C fp32).

        Raises:
            ModelOutputError: a prediction's logits are not C x 256 x 256 or hold NaN/Inf.
        """
        import torch

        from ..errors import ModelOutputError
        from ..types import Prompts

        logits, scores = [], []
        for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2):
            prompts = Prompts(points=[(float(x), float(y))], labels=[1],
                              multimask=self.multimask)
            prediction = self.backend.predict(self.embedding, prompts)
            low_res = np.asarray(prediction.low_res_logits, dtype=np.float32)
            if low_res.ndim != 3 or low_res.shape[1:] != (LOW_RES, LOW_RES):
                raise ModelOutputError(
                    f"{self.backend.model_id} returned low-res logits of shape {low_res.shape}; "
                    f"segment everything needs C x {LOW_RES} x {LOW_RES}.")
            logits.append(torch.from_numpy(low_res))
            scores.append(torch.as_tensor(np.asarray(prediction.scores, dtype=np.float32)))
        if not logits:
            return (torch.zeros((0, 1, LOW_RES, LOW_RES)), torch.zeros((0, 1)))
        logits_t, scores_t = torch.stack(logits), torch.stack(scores)
        require_finite(self.backend.spec, self.backend.precision, "masks and scores",
                       [logits_t, scores_t])
        return logits_t, scores_t

    def masks(self, planes: np.ndarray, threshold: float) -> np.ndarray:
        if hasattr(self.backend, "grid_masks"):
            return self.backend.grid_masks(planes, self.embedding, threshold)
        from ..speed.fast_upscale import sam2_masks

        return sam2_masks(planes, self.embedding.original_size, threshold=threshold)


def grid_decoder(backend: Any, embedding: Embedding, multimask: bool,
                 iou_floor: float = 0.0) -> Any:
    """The decoder the backend's family asks for (``Family.everything.sam_grid``); ``iou_floor``
    as ``GridDecoder`` takes it (families decoded through ``predict`` ignore it)."""
    from ..families import get_family

    facts = get_family(backend.spec.family).everything
    if facts is not None and facts.sam_grid:
        return GridDecoder(backend, embedding, multimask, iou_floor=iou_floor)
    return PredictGridDecoder(backend, embedding, multimask)
