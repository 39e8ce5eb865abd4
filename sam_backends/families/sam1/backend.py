"""SAM 1 (ViT-B/L/H) behind the common contract, through the ``segment_anything`` package.

Each step reproduces ``segment_anything.SamPredictor`` (``set_image`` and ``predict``) operation
for operation, so in fp32 the masks equal the upstream predictor's pixel for pixel, but no image
state is kept on the backend: the embedding is a value returned to the caller.

Frames: the encoder sees the image resized so its long side is 1024 (``input_size``) and padded
to 1024x1024; prompts are scaled from original pixels into that frame; masks come back at the
original resolution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ...output_checks import require_finite
from ...registry import ModelSpec
from ...speed.torch_common import (
    TorchBackend,
    check_precision,
    import_upstream,
    load_checkpoint_into,
)
from ...types import Embedding, Prompts

PIP_NAME = "segment-anything"


def build_model(spec: ModelSpec, checkpoint_path: Path | None, device: str,
                precision: str) -> Any:
    """Build the architecture with the upstream builder, then load the checkpoint strictly.

    The builder gets no checkpoint (it would ``torch.load`` without ``weights_only``); the file
    is read by ``checkpoint_loading`` instead.

    Raises:
        BackendUnavailableError: ``segment_anything`` is not installed.
        CheckpointMissingError, CheckpointCorruptError: see ``checkpoint_loading``.
        SamBackendError: a precision this backend does not run.
    """
    check_precision(precision, spec.model_id)
    build_sam = import_upstream("segment_anything.build_sam", PIP_NAME, spec.model_id)
    model = build_sam._build_sam(**spec.arch, checkpoint=None)
    load_checkpoint_into(model, spec, checkpoint_path)
    model.eval()
    model.to(device)
    return model


class Sam1Backend(TorchBackend):
    """A loaded ``segment_anything.modeling.Sam``; see ``TorchBackend`` for the call flow."""

    def __init__(self, spec: ModelSpec, model: Any, device: str, precision: str) -> None:
        super().__init__(spec, model, device, precision)
        from segment_anything.utils.transforms import ResizeLongestSide

        self._transform = ResizeLongestSide(model.image_encoder.img_size)

    def _image_tensor(self, rgb: np.ndarray) -> Any:
        """HxWx3 uint8 -> 1x3xhxw uint8, long side 1024 (PIL bilinear resize, as upstream)."""
        import torch

        resized = self._transform.apply_image(rgb)
        tensor = torch.as_tensor(resized, device=self.device)
        return tensor.permute(2, 0, 1).contiguous()[None, :, :, :]

    def _encode(self, input_image: Any) -> Mapping[str, Any]:
        """Normalise, pad to 1024x1024, run the ViT: ``image_embed`` is 1x256x64x64.

        Raises:
            ModelOutputError: the embedding holds NaN/Inf (damaged weights).
        """
        embed = self.model.image_encoder(self.model.preprocess(input_image))
        require_finite(self.spec, self.precision, "image embedding", [embed])
        return {"image_embed": embed}

    def _prompt_tensors(self, prompts: Prompts, embedding: Embedding) -> Mapping[str, Any]:
        """Points 1xNx2 and box 1x1x4 in the resized frame; mask_input 1x1x256x256."""
        import torch

        original_size = embedding.original_size
        points = box = mask = None
        if prompts.points:
            coords = self._transform.apply_coords(
                np.asarray(prompts.points, dtype=np.float64), original_size
            )
            coords_torch = torch.as_tensor(coords, dtype=torch.float, device=self.device)
            labels_torch = torch.as_tensor(prompts.labels, dtype=torch.int, device=self.device)
            points = (coords_torch[None, :, :], labels_torch[None, :])
        if prompts.box is not None:
            scaled = self._transform.apply_boxes(
                np.asarray(prompts.box, dtype=np.float64), original_size
            )
            box = torch.as_tensor(scaled, dtype=torch.float, device=self.device)[None, :]
        if prompts.mask_input is not None:
            mask = torch.tensor(prompts.mask_input, dtype=torch.float, device=self.device)
            mask = mask[None, :, :, :]
        return {"points": points, "boxes": box, "masks": mask}

    def _decode(
        self, features: Mapping[str, Any], tensors: Mapping[str, Any], multimask: bool
    ) -> tuple[Any, Any]:
        sparse, dense = self.model.prompt_encoder(
            points=tensors["points"], boxes=tensors["boxes"], masks=tensors["masks"]
        )
        low_res, scores = self.model.mask_decoder(
            image_embeddings=features["image_embed"],
            image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
        )
        require_finite(self.spec, self.precision, "masks and scores", [low_res, scores])
        return low_res, scores

    def _upscale(self, low_res: Any, embedding: Embedding) -> Any:
        """Upscale to 1024, crop the padding away, upscale to the original size (bilinear)."""
        return self.model.postprocess_masks(low_res, embedding.input_size, embedding.original_size)

    # --- "segment everything" (``automatic.decoding.GridDecoder``) --------------------------

    def grid_modules(self) -> tuple[Any, Any]:
        """(prompt encoder, mask decoder) the grid is decoded with."""
        return self.model.prompt_encoder, self.model.mask_decoder

    def grid_cover(self, embedding: Embedding) -> tuple[float, float]:
        """(h, w) fraction of the 256 x 256 logits that holds the image: the rest is padding."""
        return tuple(s / self.model.image_encoder.img_size for s in embedding.input_size)

    def grid_scale(self, embedding: Embedding) -> np.ndarray:
        """(x, y) factors from original pixels to the encoder frame
        (``ResizeLongestSide.apply_coords``)."""
        height, width = embedding.original_size
        in_h, in_w = embedding.input_size
        return np.array([in_w / width, in_h / height])

    def grid_decode_batch(self, features: Mapping[str, Any], sparse: Any, dense: Any,
                          multimask: bool) -> tuple[Any, Any]:
        """The upstream mask decoder on a batch of prompts (one image embedding)."""
        return self.model.mask_decoder(
            image_embeddings=features["image_embed"],
            image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=multimask,
        )

    def grid_masks(self, planes: np.ndarray, embedding: Embedding,
                   threshold: float) -> np.ndarray:
        """Low-res logits K x 256 x 256 -> bool K x H x W, as ``Sam.postprocess_masks``."""
        from ...speed.fast_upscale import sam1_masks

        return sam1_masks(planes, embedding.input_size, embedding.original_size,
                          encoder_size=self.model.image_encoder.img_size, threshold=threshold)
