"""SAM 3 through ``transformers``: text prompts ("red car") and point/box prompts on one encoding.

One checkpoint (facebook/sam3, the layout of transformers' ``Sam3VideoModel``) holds two heads
on one vision backbone:

* the *detector* (``Sam3Model``): text (optionally with exemplar boxes) -> every matching
  instance, with masks, boxes and scores (``segment_text``);
* the *tracker* (``Sam3TrackerModel``, a SAM 2-style prompt encoder and mask decoder with its
  own FPN neck, ``tracker_neck``): points and a box -> masks for one object (``predict``).

``encode`` runs the ViT once and both necks on its output; the ``Embedding`` holds the
detector's FPN levels and the tracker's decoder inputs, so text and clicks on the same image
cost no second encoding. Position encodings are deterministic functions of the feature shapes
and are recomputed at decode time instead of being stored (they are as large as the features).

Exactness (fp32): ``segment_text`` equals ``Sam3Model(**processor(images=..., text=...))`` then
``processor.post_process_instance_segmentation``; ``predict`` equals ``Sam3TrackerModel`` given
the same points/box in the processor's frame, then ``post_process_masks``. The tracker's
features follow ``Sam3VideoModel.get_vision_features_for_tracker`` (FPN levels but the last,
``no_memory_embedding`` added to the 72x72 level), which is also what ``Sam3TrackerModel``
computes when its neck has three levels.

Weights: transformers' ``save_pretrained`` writes the tracker's keys as
``tracker_model.tracker_model.*``, the converted Hub checkpoint as ``tracker_model.*``; both
are read (every ``tracker_model.`` prefix is stripped). Loading is strict: a missing or
unexpected key (other than the video-memory modules this image backend does not use) is an
error naming the keys.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np

from ...base import Backend, array_nbytes
from ...errors import PromptError, SamBackendError
from ...instances import Instances
from ...masks import mask_boxes
from ...output_checks import feature_tensors, require_finite
from ...registry import ModelSpec
from ...speed.torch_common import check_capabilities, to_rgb
from ...text import hf_common
from ...text.phrases import (
    DEFAULT_PHRASE_LIMITS,
    PhraseLimits,
    check_phrases_for_tokenizer,
    check_threshold,
    parse_phrases,
)
from ...types import Box, Embedding, Prediction, Prompts

MODEL_NAME = "SAM 3"
DEFAULT_THRESHOLD = 0.5  # score (detection x presence) an instance needs; transformers' default 0.3
MASK_THRESHOLD = 0.5  # on the mask probabilities, as transformers' post-processing
_TRACKER_PREFIX = "tracker_model."
_NECK_PREFIX = "tracker_neck."


def load(spec: ModelSpec, folder: Path, device: str, precision: str) -> Sam3Backend:
    """Build the backend from a transformers model folder (config.json, weights, processor)."""
    hf_common.check_precision(precision, spec.model_id)
    hf_common.import_transformers(MODEL_NAME)
    import torch
    from transformers import AutoConfig, Sam3Model, Sam3Processor

    folder = Path(folder)
    try:
        detector = Sam3Model.from_pretrained(str(folder), dtype=torch.float32)
        processor = Sam3Processor.from_pretrained(str(folder))
        raw_config = AutoConfig.from_pretrained(str(folder))
    except (OSError, ValueError, KeyError) as exc:
        from ...errors import CheckpointCorruptError

        raise CheckpointCorruptError(
            f"{folder} is not a readable SAM 3 model folder ({exc}). Download it again."
        ) from exc
    tracker = neck = None
    if getattr(raw_config, "tracker_config", None) is not None:
        tracker, neck = _load_tracker(folder, raw_config, detector)
    detector.eval().to(device)
    if tracker is not None:
        tracker.eval().to(device)
        neck.eval().to(device)
    return Sam3Backend(spec, detector, tracker, neck, processor, device, precision)


def _load_tracker(folder: Path, raw_config: Any, detector: Any) -> tuple[Any, Any]:
    """The tracker's decoder and neck, sharing the detector's backbone; strict loading."""
    import torch
    from transformers import Sam3TrackerModel
    from transformers.models.sam3.modeling_sam3 import Sam3VisionNeck

    ignored = hf_common.compile_patterns(Sam3TrackerModel._keys_to_ignore_on_load_unexpected)
    ignored = [p for p in ignored if "detector_model" not in p.pattern]

    def tracker_key(key: str) -> str | None:
        if not key.startswith(_TRACKER_PREFIX):
            return None
        while key.startswith(_TRACKER_PREFIX):
            key = key[len(_TRACKER_PREFIX):]
        return None if any(p.match(key) for p in ignored) else key

    def neck_key(key: str) -> str | None:
        return key[len(_NECK_PREFIX):] if key.startswith(_NECK_PREFIX) else None

    with torch.device("meta"):
        tracker = Sam3TrackerModel(raw_config.tracker_config)
        # Sam3VideoModel builds tracker_neck from the detector's vision config.
        neck = Sam3VisionNeck(detector.config.vision_config)
    tracker.vision_encoder = None  # image features come from the shared backbone + ``neck``
    hf_common.load_exact(tracker, hf_common.read_tensors(folder, tracker_key), folder,
                         "SAM 3 tracker")
    hf_common.load_exact(neck, hf_common.read_tensors(folder, neck_key), folder,
                         "SAM 3 tracker neck")
    return tracker, neck


def parameter_count(config: Any = None) -> int:
    """Parameters this backend builds for ``config`` (default: transformers' ``Sam3VideoConfig()``,
    the published SAM 3): the detector, the tracker's decoder and its neck (built on the meta
    device: no memory, no initialisation)."""
    import torch
    from transformers import Sam3Model, Sam3TrackerModel, Sam3VideoConfig
    from transformers.models.sam3.modeling_sam3 import Sam3VisionNeck

    config = config if config is not None else Sam3VideoConfig()
    with torch.device("meta"):
        parts = [Sam3Model(config.detector_config), Sam3TrackerModel(config.tracker_config),
                 Sam3VisionNeck(config.detector_config.vision_config)]
    parts[1].vision_encoder = None
    return sum(p.numel() for part in parts for p in part.parameters())


class Sam3Backend(Backend):
    """A loaded SAM 3: ``encode`` once, then ``segment_text`` and ``predict`` on the embedding.

    Attributes:
        detector: ``transformers.Sam3Model``. tracker: ``Sam3TrackerModel`` without its vision
            encoder (None for a detector-only folder: then points and boxes are refused).
        processor: ``transformers.Sam3Processor`` (image resizing, tokenizer, post-processing).
    """

    phrase_limits: PhraseLimits = DEFAULT_PHRASE_LIMITS

    def __init__(self, spec: ModelSpec, detector: Any, tracker: Any, neck: Any, processor: Any,
                 device: str, precision: str) -> None:
        from ...speed.accel import configure_threads

        configure_threads()
        if tracker is None:
            caps = dataclasses.replace(spec.capabilities, points=False, box=False,
                                       box_and_points=False, multimask=False)
            spec = dataclasses.replace(spec, capabilities=caps)
        self.spec = spec
        self.detector = detector
        self.tracker = tracker
        self.neck = neck
        self.processor = processor
        self.device = device
        self.precision = precision

    @property
    def max_text_tokens(self) -> int:
        return int(self.detector.config.text_config.max_position_embeddings)

    # -- encode ------------------------------------------------------------------------------
    def encode(self, image: Any) -> Embedding:
        """ViT + both necks once; see ``Backend.encode``."""
        import torch

        rgb = to_rgb(image)
        start = time.perf_counter()
        with torch.inference_mode():
            pixels = self.processor.image_processor(images=rgb, return_tensors="pt")
            pixel_values = pixels["pixel_values"].to(self.device)
            with hf_common.autocast(self.device, self.precision):
                vision = self.detector.get_vision_features(pixel_values=pixel_values)
                features = {"fpn": tuple(vision.fpn_hidden_states)}
                if self.tracker is not None:
                    features["tracker"] = self._tracker_features(vision.last_hidden_state)
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

    def _tracker_features(self, hidden_states: Any) -> tuple[Any, ...]:
        """The tracker's decoder inputs, as ``Sam3VideoModel.get_vision_features_for_tracker``
        then ``Sam3TrackerModel.get_image_embeddings``: B x C x h x w per level."""
        tracker = self.tracker
        batch = hidden_states.shape[0]
        height, width = tracker.prompt_encoder.image_embedding_size
        spatial = hidden_states.view(batch, height, width, -1).permute(0, 3, 1, 2)
        levels, _ = self.neck(spatial)
        levels = list(levels[: len(tracker.backbone_feature_sizes)])
        levels[0] = tracker.mask_decoder.conv_s0(levels[0])
        levels[1] = tracker.mask_decoder.conv_s1(levels[1])
        flat = [level.flatten(2).permute(2, 0, 1) for level in levels]
        flat[-1] = flat[-1] + tracker.no_memory_embedding
        return tuple(
            feat.permute(1, 2, 0).view(batch, -1, *size)
            for feat, size in zip(flat, tracker.backbone_feature_sizes, strict=True)
        )

    def _vision_output(self, embedding: Embedding) -> Any:
        """The detector's ``vision_embeds`` from the cached levels (position encodings made)."""
        from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

        levels = embedding.features["fpn"]
        encode_position = self.detector.vision_encoder.neck.position_encoding
        positions = tuple(encode_position(x.shape, x.device, x.dtype) for x in levels)
        return Sam3VisionEncoderOutput(fpn_hidden_states=levels, fpn_position_encoding=positions)

    # -- text --------------------------------------------------------------------------------
    def segment_text(
        self,
        embedding: Embedding,
        phrases: str | Sequence[str],
        threshold: float = DEFAULT_THRESHOLD,
        *,
        exemplar_boxes: Sequence[Box] = (),
        mask_threshold: float = MASK_THRESHOLD,
    ) -> Instances:
        """Every instance of each phrase, on the cached features.

        Args:
            embedding: from ``encode`` on this backend.
            phrases: "red car, bicycle" or a sequence of phrases (see ``parse_phrases``).
            threshold: the least score (detection x presence probability, in [0, 1]) kept.
            exemplar_boxes: XYXY pixel boxes around examples of the object (visual exemplars,
                positive), used with every phrase.

        Returns:
            ``Instances`` sorted by score (highest first), labels = the phrase that found each;
            ``seconds`` = {"decode": wall time of this call}.

        Raises:
            PromptError: bad phrases, threshold or exemplar boxes.
        """
        import torch

        self._check(embedding)
        phrases = parse_phrases(phrases, self.phrase_limits)
        check_phrases_for_tokenizer(phrases, self.processor.tokenizer, self.max_text_tokens,
                                    MODEL_NAME, self.phrase_limits)
        threshold = check_threshold(threshold)
        height, width = embedding.original_size
        boxes = [_exemplar(box, i, embedding.original_size) for i, box in enumerate(exemplar_boxes)]
        start = time.perf_counter()
        results = []
        with torch.inference_mode():
            vision = self._vision_output(embedding)
            for phrase in phrases:
                if boxes:
                    inputs = self.processor(text=phrase, input_boxes=[boxes],
                                            input_boxes_labels=[[1] * len(boxes)],
                                            original_sizes=[[height, width]], return_tensors="pt")
                else:
                    inputs = self.processor(text=phrase, return_tensors="pt")
                inputs.pop("original_sizes", None)
                inputs = {k: v.to(self.device) for k, v in inputs.items()}
                with hf_common.autocast(self.device, self.precision):
                    out = self.detector(vision_embeds=vision, **inputs)
                raw = SimpleNamespace(**{k: getattr(out, k).float() for k in
                                         ("pred_logits", "pred_boxes", "pred_masks",
                                          "presence_logits")})
                require_finite(self.spec, self.precision, "text detections",
                               [raw.pred_logits, raw.pred_masks])
                found = self.processor.post_process_instance_segmentation(
                    raw, threshold=threshold, mask_threshold=mask_threshold,
                    target_sizes=[(height, width)])[0]
                results.append((phrase, found))
        return _instances(results, embedding.original_size, self.model_id,
                          {"decode": time.perf_counter() - start})

    # -- points and boxes --------------------------------------------------------------------
    def predict(self, embedding: Embedding, prompts: Prompts) -> Prediction:
        """Masks for one object from points and/or a box (the tracker); see ``Backend.predict``.

        ``low_res_logits`` are the tracker's C x 288 x 288 logits (SAM 3's low-res frame, not
        SAM 1/2's 256); mask refinement is not offered for SAM 3.
        """
        import torch

        self._check(embedding)
        if not isinstance(prompts, Prompts):
            raise PromptError(
                f"predict() needs a sam_backends.Prompts value, got {type(prompts).__name__}."
            )
        prompts.validate_for_image(embedding.original_size)
        check_capabilities(self.spec, prompts)
        start = time.perf_counter()
        size = float(self.tracker.config.prompt_encoder_config.image_size)
        height, width = embedding.original_size
        scale = torch.tensor([size / width, size / height], dtype=torch.float32)
        inputs: dict[str, Any] = {}
        if prompts.points:
            points = torch.tensor(prompts.points, dtype=torch.float32) * scale
            inputs["input_points"] = points.reshape(1, 1, -1, 2).to(self.device)
            inputs["input_labels"] = torch.tensor(prompts.labels, dtype=torch.int64).reshape(
                1, 1, -1).to(self.device)
        if prompts.box is not None:
            box = torch.tensor(prompts.box, dtype=torch.float32).reshape(2, 2) * scale
            inputs["input_boxes"] = box.reshape(1, 1, 4).to(self.device)
        with torch.inference_mode():
            with hf_common.autocast(self.device, self.precision):
                out = self.tracker(image_embeddings=list(embedding.features["tracker"]),
                                   multimask_output=prompts.multimask, **inputs)
            low_res = out.pred_masks[0].float()  # 1 x C x 288 x 288 (one prompt batch)
            scores = out.iou_scores[0, 0].float()
            require_finite(self.spec, self.precision, "masks and scores", [low_res, scores])
            scores_np = scores.cpu().numpy()
            low_res_np = low_res[0].cpu().numpy()
        frame = dataclasses.replace(embedding, features={})
        source = functools.partial(self._one_mask, low_res, frame)
        best = int(np.argmax(scores_np))
        ready = {best: source(best)}
        return Prediction(scores_np, low_res_np, time.perf_counter() - start, source, ready)

    def _one_mask(self, low_res: Any, embedding: Embedding, index: int) -> np.ndarray:
        """As ``Sam3TrackerProcessor.post_process_masks``: bilinear to the original size, > 0."""
        import torch
        from torch.nn import functional as F

        with torch.inference_mode():
            logits = F.interpolate(low_res[:, index: index + 1], embedding.original_size,
                                   mode="bilinear", align_corners=False)
            return (logits > 0.0)[0, 0].cpu().numpy()

    def _check(self, embedding: Embedding) -> None:
        if not isinstance(embedding, Embedding):
            raise SamBackendError(
                f"Needs the Embedding returned by encode(), got {type(embedding).__name__}."
            )
        self.check_embedding(embedding)


def _exemplar(box: Any, index: int, image_size: tuple[int, int]) -> list[float]:
    prompts = Prompts(box=box)
    try:
        prompts.validate_for_image(image_size)
    except PromptError as exc:
        raise PromptError(f"Exemplar box {index}: {exc}") from None
    return list(prompts.box)


def _instances(results: list[tuple[str, dict[str, Any]]], image_size: tuple[int, int],
               model_id: str, seconds: dict[str, float]) -> Instances:
    """One ``Instances`` from per-phrase post-processed results, highest score first."""
    masks, scores, boxes, labels = [], [], [], []
    for phrase, found in results:
        for i in range(len(found["scores"])):
            masks.append(found["masks"][i].bool().cpu().numpy())
            scores.append(float(found["scores"][i]))
            boxes.append(found["boxes"][i].float().cpu().numpy())
            labels.append(phrase)
    if not masks:
        empty = Instances.empty(image_size, model_id)
        return dataclasses.replace(empty, seconds=seconds)
    mask_array = np.stack(masks)
    tight = mask_boxes(mask_array)
    detector_boxes = np.stack(boxes).astype(np.float32)
    empty_masks = ~mask_array.reshape(len(masks), -1).any(axis=1)
    tight[empty_masks] = detector_boxes[empty_masks]
    order = np.argsort(-np.asarray(scores, np.float32), kind="stable")
    return Instances(mask_array[order], np.asarray(scores, np.float32)[order], tight[order],
                     tuple(labels[i] for i in order), model_id, seconds)
