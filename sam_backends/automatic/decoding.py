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
holds the image), for SAM 2.1 the image stretched to 1024 x 1024 (all of it).
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
        backend: a loaded SAM 1 / SAM 2.1 ``TorchBackend`` (exact or fast precision).
        embedding: ``backend.encode(image)``'s result (already checked by the caller).
        multimask: three candidates per point (outputs 1-3) or one (output 0; SAM 2.1 falls
            back by stability as its predictor does).
        strategy: "fast" or "upstream"; default as in the module docstring.

    Attributes:
        valid_size: (h, w) of the low-res grid covering the image (SAM 1: ceil(input / 4));
            ``valid_size_at(scale)`` gives it for logits upscaled ``scale`` times.
        upscale_size: (h, w) of the low-res region the full-resolution upscaling reads
            (``valid_size`` plus one row/column of the padding for SAM 1's bilinear kernel).
    """

    def __init__(
        self, backend: Any, embedding: Embedding, multimask: bool, strategy: str | None = None
    ) -> None:
        self.backend = backend
        self.embedding = embedding
        self.multimask = multimask
        self.family = backend.spec.family
        model = backend.model
        if self.family == "sam1":
            self.prompt_encoder, self.mask_decoder = model.prompt_encoder, model.mask_decoder
            self._cover = tuple(s / model.image_encoder.img_size for s in embedding.input_size)
            self.valid_size = self.valid_size_at(1)
            self.upscale_size = (min(LOW_RES, self.valid_size[0] + 1),
                                 min(LOW_RES, self.valid_size[1] + 1))
        else:
            self.prompt_encoder = model.sam_prompt_encoder
            self.mask_decoder = model.sam_mask_decoder
            self._cover = (1.0, 1.0)
            self.valid_size = self.upscale_size = (LOW_RES, LOW_RES)
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

    def valid_size_at(self, scale: int) -> tuple[int, int]:
        """(h, w) of the logits upscaled ``scale`` times that cover the image (not padding)."""
        side = LOW_RES * scale
        return (min(side, math.ceil(self._cover[0] * side)),
                min(side, math.ceil(self._cover[1] * side)))

    def model_frame(self, points: np.ndarray) -> Any:
        """Original pixels (B x 2, x y) -> the encoder's input frame, float32 B x 1 x 2."""
        import torch

        height, width = self.embedding.original_size
        if self.family == "sam1":  # ResizeLongestSide.apply_coords
            in_h, in_w = self.embedding.input_size
            scale = np.array([in_w / width, in_h / height])
        else:  # SAM2Transforms.transform_coords(normalize=True)
            size = self.backend.model.image_size
            scale = np.array([size / width, size / height])
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
                outputs = [self._fast(self._prepared, sparse[i: i + 1], None, self.multimask)
                           for i in range(sparse.shape[0])]
                logits = torch.cat([o[0] for o in outputs])
                scores = torch.cat([o[1] for o in outputs])
            else:
                logits, scores = self._upstream(sparse, dense)
        logits, scores = logits.float(), scores.float()
        require_finite(self.backend.spec, self.backend.precision, "masks and scores",
                       [logits, scores])
        return logits, scores

    def _upstream(self, sparse: Any, dense: Any) -> tuple[Any, Any]:
        """The upstream mask decoder on the whole batch (image repeated per prompt)."""
        features = self.embedding.features
        dense_pe = self.prompt_encoder.get_dense_pe()
        if self.family == "sam1":
            return self.mask_decoder(
                image_embeddings=features["image_embed"], image_pe=dense_pe,
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                multimask_output=self.multimask,
            )
        high_res = [level[-1].unsqueeze(0) for level in features["high_res_feats"]]
        logits, scores, _, _ = self.mask_decoder(
            image_embeddings=features["image_embed"][-1].unsqueeze(0), image_pe=dense_pe,
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=self.multimask, repeat_image=sparse.shape[0] > 1,
            high_res_features=high_res,
        )
        return logits, scores
