"""SAM-HQ as transformers ships it: the reference benchmarks compare the backend with.

SAM-HQ's upstream here is transformers (``SamHQProcessor`` + ``SamHQModel`` +
``post_process_masks``), read from a model folder; there is no checkpoint file. The benchmarks
ask this module for a random full-size folder (``write_random_folder``) and for a predictor
shaped like ``segment_anything.SamPredictor`` (``folder_predictor``), so they need not branch on
the family. Imports transformers (and torch) when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def write_random_folder(spec: Any, folder: Path, seed: int = 0) -> Path:
    """A random-weight full-size model folder for catalogue entry ``spec`` (benchmarks)."""
    from ...testing.samhq_models import full_samhq_config, write_random_samhq

    return write_random_samhq(folder, full_samhq_config(spec.model_id), seed)


def folder_predictor(folder: Path) -> TransformersSamHQPredictor:
    """transformers' pipeline on ``folder`` behind ``SamPredictor``'s two calls."""
    from transformers import SamHQModel, SamHQProcessor

    model = SamHQModel.from_pretrained(str(folder)).eval()
    return TransformersSamHQPredictor(model, SamHQProcessor.from_pretrained(str(folder)))


class TransformersSamHQPredictor:
    """``set_image`` once (``get_image_embeddings``), ``predict`` per click, as transformers'
    documentation calls SAM-HQ for many prompts on one image."""

    def __init__(self, model: Any, processor: Any) -> None:
        self.model = model
        self.processor = processor
        self._image: np.ndarray | None = None
        self._embeddings: Any = None

    def set_image(self, image: np.ndarray) -> None:
        import torch

        with torch.inference_mode():
            pixels = self.processor(images=image, return_tensors="pt")["pixel_values"]
            self._embeddings = self.model.get_image_embeddings(pixels)
        self._image = image

    def predict(self, point_coords: np.ndarray | None = None,
                point_labels: np.ndarray | None = None, box: np.ndarray | None = None,
                mask_input: np.ndarray | None = None,
                multimask_output: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(masks C x H x W bool, scores C, low-res logits C x 256 x 256), as ``SamPredictor``."""
        import torch

        kwargs: dict[str, Any] = {}
        if point_coords is not None:
            kwargs["input_points"] = [[np.asarray(point_coords).tolist()]]
            kwargs["input_labels"] = [[np.asarray(point_labels).tolist()]]
        if box is not None:
            kwargs["input_boxes"] = [[np.asarray(box).tolist()]]
        image_embeddings, intermediate = self._embeddings
        with torch.inference_mode():
            inputs = self.processor(images=self._image, return_tensors="pt", **kwargs)
            sizes = (inputs.pop("original_sizes"), inputs.pop("reshaped_input_sizes"))
            del inputs["pixel_values"]
            if mask_input is not None:
                inputs["input_masks"] = torch.tensor(np.asarray(mask_input))[None]
            out = self.model(**inputs, image_embeddings=image_embeddings,
                             intermediate_embeddings=intermediate,
                             multimask_output=multimask_output)
            masks = self.processor.post_process_masks(out.pred_masks, *sizes)[0][0]
        return masks.numpy(), out.iou_scores[0, 0].numpy(), out.pred_masks[0, 0].numpy()
