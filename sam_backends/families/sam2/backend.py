"""SAM 2.1 (Hiera tiny/small/base+/large) behind the common contract, through ``sam2``.

Each step reproduces ``sam2.sam2_image_predictor.SAM2ImagePredictor`` (``set_image`` and
``predict``, default thresholds, no hole filling) operation for operation, so in fp32 the masks
equal the upstream predictor's pixel for pixel; no image state is kept on the backend.

Frames: the encoder sees the image stretched to 1024x1024 (no padding, aspect ratio not kept);
prompts are normalised by the original width/height and scaled to 1024; masks come back at the
original resolution. Features: ``image_embed`` 1x256x64x64 and ``high_res_feats``
(1x32x256x256, 1x64x128x128), about 16 MiB in fp32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ...output_checks import feature_tensors, require_finite
from ...registry import ModelSpec
from ...speed.torch_common import (
    TorchBackend,
    check_precision,
    import_upstream,
    load_checkpoint_into,
)
from ...types import Embedding, Prompts

PIP_NAME = "sam2"
# ImageNet statistics used by SAM2Transforms (images are scaled to [0, 1] first).
PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)
BOX_CORNER_LABELS = (2, 3)  # how SAM 2 labels a box's top-left and bottom-right corners


def build_model(spec: ModelSpec, checkpoint_path: Path | None, device: str,
                precision: str) -> Any:
    """Build the architecture with ``build_sam2`` (hydra config + overrides), then load strictly.

    ``spec.arch`` is ``{"config": <hydra config name>, "overrides": (<hydra override>, ...)}``;
    ``build_sam2`` adds its usual post-processing overrides (dynamic multimask via stability),
    exactly as when the upstream predictor is built. Importing ``sam2`` initialises hydra.

    Raises:
        BackendUnavailableError: ``sam2`` (or hydra) is not installed.
        CheckpointMissingError, CheckpointCorruptError: see ``checkpoint_loading``.
        SamBackendError: a precision this backend does not run.
    """
    check_precision(precision, spec.model_id)
    import_upstream("sam2", PIP_NAME, spec.model_id)  # initialises hydra's config search path
    build_sam = import_upstream("sam2.build_sam", PIP_NAME, spec.model_id)
    model = build_sam.build_sam2(
        spec.arch["config"],
        ckpt_path=None,
        device="cpu",
        hydra_overrides_extra=list(spec.arch.get("overrides", ())),
    )
    load_checkpoint_into(model, spec, checkpoint_path, nested_key="model")
    model.eval()
    model.to(device)
    return model


class Sam2Backend(TorchBackend):
    """A loaded ``sam2.modeling.sam2_base.SAM2Base``; see ``TorchBackend`` for the call flow."""

    def _image_tensor(self, rgb: np.ndarray) -> Any:
        """HxWx3 uint8 -> 1x3x1024x1024 float: to [0, 1], antialiased bilinear resize, normalise."""
        from torchvision.transforms import functional as tvf

        resolution = self.model.image_size
        tensor = tvf.to_tensor(rgb)
        tensor = tvf.resize(tensor, [resolution, resolution])
        tensor = tvf.normalize(tensor, list(PIXEL_MEAN), list(PIXEL_STD))
        return tensor[None, ...].to(self.device)

    def _encode(self, input_image: Any) -> Mapping[str, Any]:
        """Hiera + FPN, high-res levels projected for the decoder, ``no_mem_embed`` added.

        Raises:
            ModelOutputError: a feature map holds NaN/Inf (damaged weights).
        """
        model = self.model
        backbone_out = model.forward_image(input_image)
        _, vision_feats, _, feat_sizes = model._prepare_backbone_features(backbone_out)
        if model.directly_add_no_mem_embed:
            vision_feats[-1] = vision_feats[-1] + model.no_mem_embed
        # HWxBxC sequences back to BxCxHxW maps, smallest level first as upstream does.
        feats = [
            feat.permute(1, 2, 0).view(1, -1, *size)
            for feat, size in zip(vision_feats[::-1], feat_sizes[::-1], strict=True)
        ][::-1]
        features = {"image_embed": feats[-1], "high_res_feats": tuple(feats[:-1])}
        require_finite(self.spec, self.precision, "image embedding", feature_tensors(features))
        return features

    def _prompt_tensors(self, prompts: Prompts, embedding: Embedding) -> Mapping[str, Any]:
        """Box corners (labels 2, 3) then points, as one 1xNx2 sequence in the 1024 frame."""
        import torch

        height, width = embedding.original_size
        coords = labels = None
        if prompts.points:
            point_coords = torch.as_tensor(prompts.points, dtype=torch.float, device=self.device)
            coords = self._to_model_frame(point_coords, height, width)[None, ...]
            labels = torch.as_tensor(prompts.labels, dtype=torch.int, device=self.device)[None]
        if prompts.box is not None:
            box = torch.as_tensor(prompts.box, dtype=torch.float, device=self.device)
            box_coords = self._to_model_frame(box.reshape(-1, 2, 2), height, width)
            box_coords = box_coords.reshape(-1, 2, 2)
            box_labels = torch.tensor([BOX_CORNER_LABELS], dtype=torch.int, device=self.device)
            box_labels = box_labels.repeat(box_coords.size(0), 1)
            if coords is not None:
                coords = torch.cat([box_coords, coords], dim=1)
                labels = torch.cat([box_labels, labels], dim=1)
            else:
                coords, labels = box_coords, box_labels
        mask = None
        if prompts.mask_input is not None:
            mask = torch.tensor(prompts.mask_input, dtype=torch.float, device=self.device)
            mask = mask[None, :, :, :]
        return {"points": None if coords is None else (coords, labels), "masks": mask}

    def _to_model_frame(self, coords: Any, height: int, width: int) -> Any:
        """(x, y) pixels -> [0, 1] by the original size -> the encoder's 1024 frame."""
        coords = coords.clone()
        coords[..., 0] = coords[..., 0] / width
        coords[..., 1] = coords[..., 1] / height
        return coords * self.model.image_size

    def _decode(
        self, features: Mapping[str, Any], tensors: Mapping[str, Any], multimask: bool
    ) -> tuple[Any, Any]:
        model = self.model
        sparse, dense = model.sam_prompt_encoder(
            points=tensors["points"], boxes=None, masks=tensors["masks"]
        )
        high_res = [level[-1].unsqueeze(0) for level in features["high_res_feats"]]
        low_res, scores, _, _ = model.sam_mask_decoder(
            image_embeddings=features["image_embed"][-1].unsqueeze(0),
            image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
            repeat_image=False,  # one object per call
            high_res_features=high_res,
        )
        require_finite(self.spec, self.precision, "masks and scores", [low_res, scores])
        return low_res, scores

    def _upscale(self, low_res: Any, embedding: Embedding) -> Any:
        """Bilinear upscale straight to the original size (no hole filling, as by default)."""
        from torch.nn import functional as F

        return F.interpolate(
            low_res.float(), embedding.original_size, mode="bilinear", align_corners=False
        )

    def _returned_low_res(self, low_res: Any) -> Any:
        """Clamped to [-32, 32] like the upstream predictor, so refinement inputs match."""
        import torch

        return torch.clamp(low_res, -32.0, 32.0)

    # --- "segment everything" (``automatic.decoding.GridDecoder``) --------------------------

    def grid_modules(self) -> tuple[Any, Any]:
        """(prompt encoder, mask decoder) the grid is decoded with."""
        return self.model.sam_prompt_encoder, self.model.sam_mask_decoder

    def grid_cover(self, embedding: Embedding) -> tuple[float, float]:
        """The image is stretched over the whole 1024 x 1024 input: the logits cover it all."""
        return (1.0, 1.0)

    def grid_scale(self, embedding: Embedding) -> np.ndarray:
        """(x, y) factors from original pixels to the encoder frame
        (``SAM2Transforms.transform_coords(normalize=True)``)."""
        height, width = embedding.original_size
        size = self.model.image_size
        return np.array([size / width, size / height])

    def grid_decode_batch(self, features: Mapping[str, Any], sparse: Any, dense: Any,
                          multimask: bool) -> tuple[Any, Any]:
        """The upstream mask decoder on a batch of prompts (the image repeated per prompt)."""
        high_res = [level[-1].unsqueeze(0) for level in features["high_res_feats"]]
        logits, scores, _, _ = self.model.sam_mask_decoder(
            image_embeddings=features["image_embed"][-1].unsqueeze(0),
            image_pe=self.model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=multimask, repeat_image=sparse.shape[0] > 1,
            high_res_features=high_res,
        )
        return logits, scores

    def grid_masks(self, planes: np.ndarray, embedding: Embedding,
                   threshold: float) -> np.ndarray:
        """Low-res logits K x 256 x 256 -> bool K x H x W (bilinear to the original size)."""
        from ...speed.fast_upscale import sam2_masks

        return sam2_masks(planes, embedding.original_size, threshold=threshold)
