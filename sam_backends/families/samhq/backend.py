"""SAM-HQ through ``transformers``: ``SamHQModel`` behind the encode/predict contract.

Each step is transformers' own: ``SamHQProcessor``'s image processor makes the pixels, the
model's vision encoder, prompt encoder and mask decoder run on them, and the processor's
``post_process_masks`` upscales. In fp32 the masks equal ``SamHQModel(**processor(...))`` then
``processor.post_process_masks`` pixel for pixel (``tests/engine/test_samhq.py``), but the
image state is a value (``Embedding``) instead of a second model call.

What is cached: the image embedding (1 x 256 x 64 x 64) and the one intermediate ViT feature
the HQ decoder reads (the output of the first global-attention block, 1 x 64 x 64 x C: 12 MiB
for ViT-B in fp32). The decoder is called as transformers calls it, so a fix there is a fix
here; it recomputes the HQ features from both at each click, as upstream SAM-HQ does.

Known difference from the official SAM-HQ (SysCV/sam-hq, ``mask_decoder_hq.py``), which this
backend inherits by calling transformers' decoder: transformers 5.23's ``SamHQMaskDecoder``
upscales the image embedding as it went *into* the two-way transformer (plus the dense prompt,
spatially transposed by ``transpose(2, 3).reshape``) where the official code upscales the
transformer's image output; and with ``multimask_output`` it returns all three SAM candidates
(each plus the HQ mask, sorted by score) where the official code returns the best one only.
With the published weights, masks may therefore differ from the official predictor's.

Frames: as SAM 1, the image is resized so its long side is 1024 (``input_size``) and padded to
1024 x 1024; prompts are scaled into that frame in float64 exactly as ``SamHQProcessor`` scales
them; the C x 256 x 256 low-res logits cover the padded frame.

Weights: loading is strict: a folder whose weights miss a parameter of the architecture its
config.json describes, or hold one it does not, is refused (``CheckpointCorruptError``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ...errors import CheckpointCorruptError
from ...output_checks import require_finite
from ...registry import ModelSpec
from ...speed.torch_common import TorchBackend
from ...text import hf_common
from ...types import Embedding, Prompts

MODEL_NAME = "SAM-HQ"


def load(spec: ModelSpec, folder: Path, device: str, precision: str) -> SamHQBackend:
    """Build the backend from a transformers model folder (config.json, weights, processor).

    Raises:
        BackendUnavailableError: transformers is missing.
        CheckpointCorruptError: the folder cannot be read, or its weights do not fit.
        SamBackendError: a precision this backend does not run.
    """
    hf_common.check_precision(precision, spec.model_id)
    hf_common.import_transformers(MODEL_NAME)
    import torch
    from safetensors import SafetensorError
    from transformers import SamHQModel, SamHQProcessor

    folder = Path(folder)
    try:
        hf_common.weight_files(folder)  # a clear message when the weights are absent
        model, info = SamHQModel.from_pretrained(str(folder), dtype=torch.float32,
                                                 output_loading_info=True)
        processor = SamHQProcessor.from_pretrained(str(folder))
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, SafetensorError) as exc:
        raise CheckpointCorruptError(
            f"{folder} is not a readable SAM-HQ model folder ({exc}). Download it again "
            f"from https://huggingface.co/{spec.hf_repo} (or remove the folder and call "
            "create_backend(..., download=True))."
        ) from exc
    _check_loading(info, folder)
    model.eval().to(device)
    return SamHQBackend(spec, model, processor, device, precision)


def _check_loading(info: Mapping[str, Any], folder: Path) -> None:
    """Refuse weights that leave a parameter at its random start or bring unknown ones."""
    missing = list(info.get("missing_keys") or ())
    unexpected = list(info.get("unexpected_keys") or ())
    mismatched = [str(k) for k in info.get("mismatched_keys") or ()]
    if missing or unexpected or mismatched:  # transformers would leave them random, silently
        raise CheckpointCorruptError(
            f"The weights in {folder} do not fit SAM-HQ's architecture (config.json): "
            f"{len(missing)} missing ({', '.join(missing[:3])}), {len(unexpected)} unexpected "
            f"({', '.join(unexpected[:3])}), {len(mismatched)} of another shape "
            f"({', '.join(mismatched[:3])}). Download the model folder again."
        )


def parameter_count(config: Any) -> int:
    """Parameters of ``SamHQModel(config)``, built on the meta device (no memory, no init)."""
    import torch
    from transformers import SamHQModel

    with torch.device("meta"):
        model = SamHQModel(config)
    return sum(p.numel() for p in model.parameters())


class SamHQBackend(TorchBackend):
    """A loaded ``transformers.SamHQModel``; see ``TorchBackend`` for the call flow.

    Attributes:
        model: ``SamHQModel`` (its ``vision_encoder.layers`` are the background-encode pause
            points). processor: ``SamHQProcessor`` (resize, normalise, pad; post-processing).
    """

    def __init__(self, spec: ModelSpec, model: Any, processor: Any, device: str,
                 precision: str) -> None:
        super().__init__(spec, model, device, precision)
        import torch

        self.processor = processor
        self._target = int(processor.target_size)  # the long side the image is resized to
        with torch.inference_mode():  # depends on the weights only: once, not per click
            self._image_pe = model.get_image_wide_positional_embeddings()

    # -- precision ----------------------------------------------------------------------------
    def _encoder_context(self) -> contextlib.AbstractContextManager[Any]:
        return hf_common.autocast(self.device, self.precision)

    def _decoder_context(self) -> contextlib.AbstractContextManager[Any]:
        return hf_common.autocast(self.device, self.precision)

    # -- encode -------------------------------------------------------------------------------
    def encode(self, image: Any) -> Embedding:
        """See ``Backend.encode``; ``input_size`` is the resized image inside the padding."""
        embedding = super().encode(image)
        return dataclasses.replace(embedding, input_size=self._resized(embedding.original_size))

    def _resized(self, original_size: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of the image resized so its long side is the target, as the processor does."""
        shape = self.processor.image_processor._get_preprocess_shape(original_size,
                                                                     longest_edge=self._target)
        return int(shape[0]), int(shape[1])

    def _image_tensor(self, rgb: np.ndarray) -> Any:
        """HxWx3 uint8 -> 1x3x1024x1024 float32: resized, normalised and padded by the
        processor."""
        pixels = self.processor.image_processor(images=rgb, return_tensors="pt")
        return pixels["pixel_values"].to(self.device)

    def _encode(self, input_image: Any) -> Mapping[str, Any]:
        """The ViT: ``image_embed`` 1x256x64x64 and ``vit_features`` 1x64x64xC (the first
        global-attention block's output, the only intermediate feature the decoder reads).

        Raises:
            ModelOutputError: NaN/Inf in the features (damaged weights).
        """
        out = self.model.vision_encoder(input_image)
        features = {"image_embed": out.last_hidden_state,
                    "vit_features": out.intermediate_embeddings[0]}
        require_finite(self.spec, self.precision, "image embedding", list(features.values()))
        return features

    # -- predict ------------------------------------------------------------------------------
    def _prompt_tensors(self, prompts: Prompts, embedding: Embedding) -> Mapping[str, Any]:
        """Points 1x1xNx2 and box 1x1x4 in the resized frame (float64, as the processor makes
        them; the prompt encoder casts after normalising); mask_input 1x1x256x256."""
        import torch

        height, width = embedding.original_size
        new_h, new_w = embedding.input_size
        scale = np.array([new_w / width, new_h / height])
        tensors: dict[str, Any] = {"input_points": None, "input_labels": None,
                                   "input_boxes": None, "input_masks": None}
        if prompts.points:
            points = np.asarray(prompts.points, dtype=np.float64) * scale
            tensors["input_points"] = torch.from_numpy(points).reshape(1, 1, -1, 2).to(
                self.device)
            tensors["input_labels"] = torch.tensor(prompts.labels, dtype=torch.int64).reshape(
                1, 1, -1).to(self.device)
        if prompts.box is not None:
            # The processor reads boxes as float32, then scales them in float64.
            box = np.asarray(prompts.box, dtype=np.float32).astype(np.float64).reshape(2, 2)
            tensors["input_boxes"] = torch.from_numpy(box * scale).reshape(1, 1, 4).to(
                self.device)
        if prompts.mask_input is not None:
            mask = torch.tensor(prompts.mask_input, dtype=torch.float32, device=self.device)
            tensors["input_masks"] = mask[None]
        return tensors

    def _decode(self, features: Mapping[str, Any], tensors: Mapping[str, Any],
                multimask: bool) -> tuple[Any, Any]:
        """Prompt encoder + HQ mask decoder, as ``SamHQModel.forward`` calls them (SAM's masks
        plus the HQ token's, ``hq_token_only=False``): (logits 1xCx256x256, scores 1xC)."""
        sparse, dense = self.model.prompt_encoder(**tensors)
        masks, scores = self.model.mask_decoder(
            image_embeddings=features["image_embed"],
            image_positional_embeddings=self._image_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
            hq_token_only=False,
            intermediate_embeddings=[features["vit_features"]],
        )
        low_res, scores = masks[:, 0], scores[:, 0]  # the one prompt batch
        require_finite(self.spec, self.precision, "masks and scores", [low_res, scores])
        return low_res, scores

    def _upscale(self, low_res: Any, embedding: Embedding) -> Any:
        """``post_process_masks`` unbinarised: to the padded frame, crop, to the original."""
        return self.processor.image_processor.post_process_masks(
            [low_res.float()], [list(embedding.original_size)], [list(embedding.input_size)],
            binarize=False,
        )[0]

    # -- "segment everything" (``automatic.decoding.PredictGridDecoder``) ----------------------
    def grid_cover(self, embedding: Embedding) -> tuple[float, float]:
        """(h, w) fraction of the 256 x 256 logits that holds the image: the rest is padding."""
        return tuple(s / self._target for s in embedding.input_size)

    def grid_masks(self, planes: np.ndarray, embedding: Embedding,
                   threshold: float) -> np.ndarray:
        """Low-res logits K x 256 x 256 -> bool K x H x W, as ``post_process_masks``."""
        from ...speed.fast_upscale import sam1_masks

        return sam1_masks(planes, embedding.input_size, embedding.original_size,
                          encoder_size=self._target, threshold=threshold)
