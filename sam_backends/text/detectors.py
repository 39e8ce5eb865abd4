"""Open-vocabulary box detectors for text prompts: OWLv2 (base/16, Apache-2.0) via transformers.

``Owlv2Detector.detect(image, phrases, threshold)`` returns boxes in original-image pixels. The
image side of OWLv2 (the ViT, the box head, and the image half of the class head) depends only
on the pixels, so it is computed once per image and kept in a small cache bounded by bytes
(keyed by the image's content digest, the detector id and the precision); a new phrase on the
same image runs only the text tower and the class head's dot products.

Exactness (fp32): ``detect`` equals ``Owlv2ForObjectDetection(**processor(text=[phrases],
images=image))`` followed by ``processor.post_process_object_detection(outputs, threshold,
target_sizes=[(H, W)])``: one label per box (the best phrase), scores = sigmoid of that logit,
boxes XYXY in pixels of the image before OWLv2 pads it to a square (so a box may reach past
the right or bottom edge; ``pipeline`` clips it before prompting SAM).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np

from ..base import array_nbytes
from ..cache import EmbeddingCache, cache_key
from ..errors import CheckpointCorruptError
from ..images import image_digest
from ..speed.torch_common import to_rgb
from . import hf_common
from .phrases import (
    DEFAULT_PHRASE_LIMITS,
    PhraseLimits,
    check_phrases_for_tokenizer,
    check_threshold,
    parse_phrases,
)

DEFAULT_THRESHOLD = 0.1  # transformers' default for OWLv2
FEATURE_CACHE_BYTES = 256 * 1024**2  # base/16 at 960 px: about 11 MB per image


@dataclass(frozen=True, eq=False)
class Detections:
    """Boxes found for text phrases in one image.

    Attributes:
        boxes: float32 N x 4, XYXY pixels (may reach past the image's right/bottom edge).
        scores: float32 N, in [0, 1]. labels: N phrases.
        image_size: (H, W). seconds: wall time of ``detect`` (image side included if computed).
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: tuple[str, ...]
    image_size: tuple[int, int]
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.scores)


@dataclass(frozen=True, eq=False)
class DetectorFeatures:
    """OWLv2's image side for one image: what every text query reuses."""

    detector_id: str
    precision: str
    image_size: tuple[int, int]
    tensors: dict[str, Any] = field(repr=False)
    nbytes: int = 0
    seconds: float = 0.0


def load_owlv2(folder: str | Path | None = None, device: str | None = None,
               precision: str | None = None, *, checkpoint_dir: str | Path | None = None,
               download: bool = False, cache_bytes: int = FEATURE_CACHE_BYTES) -> Owlv2Detector:
    """``Owlv2ForObjectDetection`` and ``Owlv2Processor`` from a model folder.

    Args:
        folder: the model folder; default ``<checkpoints>/owlv2-base-patch16-ensemble/``
            (downloaded from google/owlv2-base-patch16-ensemble when ``download``; see ``hub``).
        device, precision: as for ``create_backend`` (None: env / the best available; "auto").
    """
    from ..device import resolve_device, resolve_precision
    from ..families import get_family
    from . import hub

    device = resolve_device(device)
    precision = resolve_precision(precision, device, get_family("owlv2").precisions)
    hf_common.check_precision(precision, "OWLv2")
    folder = hub.resolve_folder(hub.OWLV2, folder, checkpoint_dir, download=download)
    hf_common.import_transformers("OWLv2")
    import torch
    from transformers import Owlv2ForObjectDetection, Owlv2Processor

    try:
        model = Owlv2ForObjectDetection.from_pretrained(str(folder), dtype=torch.float32)
        processor = Owlv2Processor.from_pretrained(str(folder))
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointCorruptError(
            f"{folder} is not a readable OWLv2 model folder ({exc}). Download it again."
        ) from exc
    return Owlv2Detector(model.eval().to(device), processor, device, precision,
                         hub.OWLV2.local_name, EmbeddingCache(cache_bytes))


class Owlv2Detector:
    """A loaded OWLv2; stateless apart from its bounded image-feature cache (thread-safe)."""

    short_id = "owlv2"
    display_name = "OWLv2"
    phrase_limits: PhraseLimits = DEFAULT_PHRASE_LIMITS

    def __init__(self, model: Any, processor: Any, device: str, precision: str,
                 detector_id: str = "owlv2", cache: EmbeddingCache | None = None) -> None:
        from ..speed.accel import configure_threads

        configure_threads()
        self.model = model
        self.processor = processor
        self.device = device
        self.precision = precision
        self.detector_id = detector_id
        self.cache = cache if cache is not None else EmbeddingCache(FEATURE_CACHE_BYTES)

    @property
    def max_text_tokens(self) -> int:
        return int(self.model.config.text_config.max_position_embeddings)

    def image_features(self, image: Any) -> DetectorFeatures:
        """The image side, from the cache or computed now."""
        rgb = to_rgb(image)
        key = cache_key(image_digest(rgb), self.detector_id, self.precision)
        return self.cache.get_or_compute(key, lambda: self._compute_features(rgb))

    def _compute_features(self, rgb: np.ndarray) -> DetectorFeatures:
        import torch

        model = self.model
        start = time.perf_counter()
        with torch.inference_mode():
            pixels = self.processor.image_processor(images=rgb, return_tensors="pt")
            pixel_values = pixels["pixel_values"].to(self.device)
            with hf_common.autocast(self.device, self.precision):
                feature_map, _ = model.image_embedder(pixel_values=pixel_values)
                batch, rows, cols, dim = feature_map.shape
                image_feats = feature_map.reshape(batch, rows * cols, dim)
                pred_boxes = model.box_predictor(image_feats, feature_map)
        tensors = {"image_feats": image_feats, "pred_boxes": pred_boxes}
        return DetectorFeatures(self.detector_id, self.precision,
                                (int(rgb.shape[0]), int(rgb.shape[1])), tensors,
                                array_nbytes(tensors), time.perf_counter() - start)

    def detect(self, image: Any, phrases: str | Sequence[str],
               threshold: float = DEFAULT_THRESHOLD) -> Detections:
        """Boxes for the phrases; see the module docstring for the exact semantics.

        Raises:
            PromptError: bad phrases (empty, over a limit, unknown script) or threshold.
        """
        import torch

        phrases = parse_phrases(phrases, self.phrase_limits)
        check_phrases_for_tokenizer(phrases, self.processor.tokenizer, self.max_text_tokens,
                                    self.display_name, self.phrase_limits)
        threshold = check_threshold(threshold)
        start = time.perf_counter()
        features = self.image_features(image)
        model = self.model
        with torch.inference_mode():
            text = self.processor(text=[list(phrases)], return_tensors="pt")
            input_ids = text["input_ids"].to(self.device)
            with hf_common.autocast(self.device, self.precision):
                pooled = model.owlv2.get_text_features(
                    input_ids=input_ids, attention_mask=text["attention_mask"].to(self.device)
                ).pooler_output
                query = pooled / torch.linalg.norm(pooled, ord=2, dim=-1, keepdim=True)
                query = query.reshape(1, len(phrases), query.shape[-1])
                query_mask = input_ids.reshape(1, len(phrases), -1)[..., 0] > 0
                logits, _ = model.class_predictor(features.tensors["image_feats"], query,
                                                  query_mask)
            outputs = SimpleNamespace(logits=logits.float(),
                                      pred_boxes=features.tensors["pred_boxes"].float())
            found = self.processor.image_processor.post_process_object_detection(
                outputs, threshold=threshold, target_sizes=[features.image_size])[0]
        labels = tuple(phrases[int(i)] for i in found["labels"])
        return Detections(found["boxes"].cpu().numpy().astype(np.float32),
                          found["scores"].cpu().numpy().astype(np.float32), labels,
                          features.image_size, time.perf_counter() - start)
