"""EdgeTAM's image backend through ``transformers``: points, boxes, refinement, three candidates.

Exactness (fp32): ``encode`` is the folder's image processor then
``EdgeTamModel.get_image_embeddings``; ``predict`` gives the processor the prompts (it scales
them to the 1024 frame) and runs ``EdgeTamModel(image_embeddings=...)``; masks are its low-res
logits upscaled bilinearly to the original size and thresholded at 0, as
``post_process_masks`` does. So the masks equal
``post_process_masks(EdgeTamModel(**processor(images, input_points, ...)).pred_masks)`` pixel
for pixel.

Frames: the image is stretched to 1024 x 1024 (no padding), prompts are scaled by 1024 / width
and 1024 / height, low-res logits (C x 256 x 256) cover the whole image. Features: the three
FPN levels as the decoder takes them (1 x 32 x 256 x 256, 1 x 64 x 128 x 128 after the
decoder's projections, 1 x 256 x 64 x 64 with ``no_memory_embedding`` added), about 16 MiB fp32.

Weights: one folder serves the image and the video model. Its ``config.json`` is usually
``EdgeTamVideoConfig`` (the Hub's); ``EdgeTamModel`` ignores the memory modules (its
``_keys_to_ignore_on_load_unexpected``) and loading refuses any missing or mismatched key.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...base import Backend, array_nbytes
from ...errors import BackendUnavailableError, PromptError, SamBackendError
from ...output_checks import feature_tensors, require_finite
from ...registry import ModelSpec
from ...speed.torch_common import check_capabilities, to_rgb
from ...text import hf_common
from ...types import Embedding, Prediction, Prompts

MODEL_NAME = "EdgeTAM"
MASK_THRESHOLD = 0.0  # on the logits, as ``post_process_masks``


def import_timm() -> None:
    """``timm`` (EdgeTAM's RepViT encoder), or an error that says how to install it."""
    try:
        import timm  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(
            f"{MODEL_NAME} needs the Python package 'timm' for its RepViT image encoder, which "
            f"could not be imported ({exc}). Install it with: pip install timm "
            "(or pip install -r requirements.txt)."
        ) from exc


def read_folder(model_class: Any, folder: Path, what: str) -> tuple[Any, Any]:
    """(model, processor) of a transformers EdgeTAM folder, in fp32 on the CPU, strictly.

    Raises:
        BackendUnavailableError: transformers or timm missing.
        CheckpointCorruptError: unreadable folder, or weights that leave a tensor missing or
            of another shape.
    """
    hf_common.import_transformers(MODEL_NAME)
    import_timm()
    from transformers import AutoProcessor

    return hf_common.read_model_folder(model_class, AutoProcessor, folder, MODEL_NAME, what)


def load(spec: ModelSpec, folder: Path, device: str, precision: str) -> EdgeTamBackend:
    """Build the image backend from a transformers model folder (config, weights, processor)."""
    hf_common.check_precision(precision, spec.model_id)
    hf_common.import_transformers(MODEL_NAME)
    from transformers import EdgeTamModel

    model, processor = read_folder(EdgeTamModel, folder, f"{MODEL_NAME} image model")
    return EdgeTamBackend(spec, model.to(device), processor, device, precision)


def full_config(video: bool = True) -> Any:
    """The published EdgeTAM architecture (``EdgeTamVideoConfig``, or ``EdgeTamConfig``).

    transformers' default ``EdgeTamVisionConfig`` names its backbone in a misspelt key
    ("archirecture") and so builds a ResNet-50; the published model is RepViT-M1, set here.
    """
    from transformers import (
        EdgeTamConfig,
        EdgeTamVideoConfig,
        EdgeTamVisionConfig,
        TimmWrapperConfig,
    )

    backbone = TimmWrapperConfig(architecture="repvit_m1", do_pooling=False,
                                 model_args={"in_chans": 3, "features_only": True,
                                             "out_indices": [0, 1, 2, 3]})
    vision = EdgeTamVisionConfig(backbone_config=backbone)
    if video:
        return EdgeTamVideoConfig(vision_config=vision)
    return EdgeTamConfig(vision_config=vision)


def parameter_count(config: Any = None) -> int:
    """Parameters of the video model for ``config`` (default: ``full_config()``), the image
    model's included (built on the meta device: no memory, no initialisation)."""
    import torch
    from transformers import EdgeTamVideoModel

    with torch.device("meta"):
        model = EdgeTamVideoModel(config if config is not None else full_config())
    return sum(p.numel() for p in model.parameters())


class EdgeTamBackend(Backend):
    """A loaded ``transformers.EdgeTamModel`` and its processor; stateless (see ``Backend``)."""

    def __init__(self, spec: ModelSpec, model: Any, processor: Any, device: str,
                 precision: str) -> None:
        from ...speed.accel import configure_threads

        configure_threads()
        self.spec, self.model, self.processor = spec, model, processor
        self.device, self.precision = device, precision

    def encode(self, image: Any) -> Embedding:
        """RepViT + FPN once; see ``Backend.encode``."""
        import torch

        rgb = to_rgb(image)
        start = time.perf_counter()
        with torch.inference_mode():
            pixels = self.processor.image_processor(images=rgb, return_tensors="pt")
            pixel_values = pixels["pixel_values"].to(self.device)
            with hf_common.autocast(self.device, self.precision):
                levels = self.model.get_image_embeddings(pixel_values)
            features = {"image_embeddings": tuple(level.float() for level in levels)}
        require_finite(self.spec, self.precision, "image embedding", feature_tensors(features))
        return Embedding(
            model_id=self.model_id,
            precision=self.precision,
            original_size=(int(rgb.shape[0]), int(rgb.shape[1])),
            input_size=tuple(int(s) for s in pixel_values.shape[-2:]),
            features=features,
            nbytes=array_nbytes(features),
            encode_seconds=time.perf_counter() - start,
        )

    def prompt_inputs(self, prompts: Prompts, image_size: tuple[int, int]) -> dict[str, Any]:
        """The model's prompt tensors, made by the processor (one image, one object)."""
        import torch

        height, width = image_size
        args: dict[str, Any] = {}
        if prompts.points:
            args["input_points"] = [[[list(p) for p in prompts.points]]]
            args["input_labels"] = [[list(prompts.labels)]]
        if prompts.box is not None:
            args["input_boxes"] = [[list(prompts.box)]]
        inputs = self.processor(original_sizes=[[height, width]], return_tensors="pt", **args)
        inputs.pop("original_sizes", None)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        if prompts.mask_input is not None:  # low-res logits 1 x 256 x 256, as the model takes
            inputs["input_masks"] = torch.from_numpy(np.array(prompts.mask_input))[None].to(
                self.device)
        return inputs

    def predict(self, embedding: Embedding, prompts: Prompts) -> Prediction:
        """Masks for one object; see ``Backend.predict``. ``low_res_logits``: C x 256 x 256."""
        import torch

        if not isinstance(embedding, Embedding):
            raise SamBackendError(
                f"Needs the Embedding returned by encode(), got {type(embedding).__name__}.")
        if not isinstance(prompts, Prompts):
            raise PromptError(
                f"predict() needs a sam_backends.Prompts value, got {type(prompts).__name__}.")
        self.check_embedding(embedding)
        prompts.validate_for_image(embedding.original_size)
        check_capabilities(self.spec, prompts)
        start = time.perf_counter()
        with torch.inference_mode():
            inputs = self.prompt_inputs(prompts, embedding.original_size)
            with hf_common.autocast(self.device, self.precision):
                out = self.model(image_embeddings=list(embedding.features["image_embeddings"]),
                                 multimask_output=prompts.multimask, **inputs)
            low_res = out.pred_masks[0].float()  # 1 x C x 256 x 256 (one object)
            scores = out.iou_scores[0, 0].float()
            require_finite(self.spec, self.precision, "masks and scores", [low_res, scores])
            scores_np = scores.cpu().numpy()
            low_res_np = low_res[0].cpu().numpy()
        frame = dataclasses.replace(embedding, features={})  # sizes only, no features kept
        source = functools.partial(_one_mask, low_res, frame)
        best = int(np.argmax(scores_np))
        ready = {best: source(best)}
        return Prediction(scores_np, low_res_np, time.perf_counter() - start, source, ready)


def _one_mask(low_res: Any, embedding: Embedding, index: int) -> np.ndarray:
    """As ``post_process_masks``: bilinear to the original size, then > 0."""
    import torch
    from torch.nn import functional as F

    with torch.inference_mode():
        logits = F.interpolate(low_res[:, index: index + 1], embedding.original_size,
                               mode="bilinear", align_corners=False)
        return (logits > MASK_THRESHOLD)[0, 0].cpu().numpy()
