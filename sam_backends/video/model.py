"""The upstream SAM 2.1 video model with three changes that keep every mask identical in fp32.

``TrackerModel`` is ``sam2.sam2_video_predictor.SAM2VideoPredictor`` (hydra builds it from the
model's own config with ``_target_`` pointing here); the session drives its methods with an
inference state it builds itself. What differs from upstream:

1. Image features: upstream keeps the features of the last frame only, together with its
   3x1024x1024 input, and its ``init_state`` holds every frame at 1024x1024 float32 (12 MiB a
   frame). Here frames are preprocessed on demand (``state["images"]`` is lazy) and the FPN
   features of the last ``feature_cache_frames`` frames are kept in an LRU, without the input
   image; the positional encodings (equal for every frame) are held once per model. A frame
   prompted, memory-encoded and tracked is encoded once, not up to three times.
2. Memory dtype: upstream stores the memory features in bf16 and concatenates them with the
   fp32 object pointers, which promotes them back to fp32. When a frame's memory has no
   pointer (a new object first prompted on a later frame, tracked from an earlier one), the
   bf16 features reach the fp32 memory attention alone and the CPU path fails with "mat1 and
   mat2 must have the same dtype". Here stored features are widened to the attention's dtype
   when read: bit for bit what the promotion gives when upstream works.
3. Hole filling needs sam2's CUDA extension; without it upstream warns on every frame and
   leaves the mask as is. Here, without the extension, both paths leave masks as they are by
   default (upstream's CPU run, logged once); ``fill_holes=True`` (``SAM_VIDEO_FILL_HOLES=1``)
   fills them with OpenCV in both paths (``holes.fill_small_holes``: upstream's rule, as its
   CUDA kernel applies it). One choice for both paths: the fast path used to fill and the
   exact one not, and that difference alone took the fast path's mask IoU against exact down
   to 0.83 on 01_dog.mp4 (random-weight masks have many small holes) where bf16 itself gives
   0.9964-0.9968 (measured on an AVX2 EPYC, 4 frames, SAM 2.1 tiny).

The fast path (``encoder_dtype=torch.bfloat16``) runs the image encoder in bf16 (the image
path's ``families.sam2.fast_encoder.accelerate_sam2_encoder``) and widens its features to fp32
for everything after it; its memory attention runs with bf16 products
(``families.sam2.fast_memory``). The encoder's positional encodings are equal for every frame,
so after the first frame the fast path reuses their fp32 copy instead of widening them again.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
from sam2.sam2_video_predictor import SAM2VideoPredictor

LOG = logging.getLogger(__name__)
_LOGGED: set[str] = set()  # process-wide "said once" flags, like a warnings filter


def hole_filling_available() -> bool:
    """True when sam2's compiled extension (connected components on CUDA) is importable."""
    try:
        from sam2 import _C  # noqa: F401
    except ImportError:
        return False
    return True


class FeatureCache:
    """An LRU of per-frame FPN features (``backbone_fpn`` lists), ``capacity`` frames."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, int(capacity))
        self.entries: OrderedDict[int, list[torch.Tensor]] = OrderedDict()

    def get(self, frame_index: int) -> list[torch.Tensor] | None:
        entry = self.entries.get(frame_index)
        if entry is not None:
            self.entries.move_to_end(frame_index)
        return entry

    def put(self, frame_index: int, features: list[torch.Tensor]) -> None:
        self.entries[frame_index] = features
        self.entries.move_to_end(frame_index)
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for e in self.entries.values() for t in e)


class _WidenedOutputs(Mapping):
    """A read-only view of ``{frame: output}`` whose ``maskmem_features`` come out in ``dtype``."""

    def __init__(self, outputs: Mapping, dtype: torch.dtype) -> None:
        self.outputs, self.dtype = outputs, dtype

    def __getitem__(self, key: Any) -> dict:
        out = self.outputs[key]
        features = out.get("maskmem_features")
        if features is None or features.dtype == self.dtype:
            return out
        return {**out, "maskmem_features": features.to(self.dtype)}

    def __iter__(self):
        return iter(self.outputs)

    def __len__(self) -> int:
        return len(self.outputs)


class TrackerModel(SAM2VideoPredictor):
    """``SAM2VideoPredictor`` with bounded features and the memory-dtype fix (module doc)."""

    encoder_dtype: torch.dtype | None = None  # bf16 for the fast path; None: exact
    opencv_hole_area = 0  # > 0: fill holes this small with OpenCV (upstream's kernel missing)

    def configure(self, encoder_dtype: torch.dtype | None, fill_holes: bool = False) -> None:
        """Set the precision of the image encoder and whether holes are filled (with OpenCV)
        where upstream's kernel is missing; the same for the exact and the fast path."""
        self.encoder_dtype = encoder_dtype
        self._shared_pos_enc: list[torch.Tensor] | None = None
        if self.fill_hole_area > 0 and not hole_filling_available():
            if fill_holes:
                self.opencv_hole_area = self.fill_hole_area
            self.fill_hole_area = 0  # upstream's own call would only warn, every frame
            if not fill_holes and "holes" not in _LOGGED:
                _LOGGED.add("holes")
                LOG.info("sam2's CUDA extension is not available: small holes in video masks "
                         "are not filled, as in the upstream predictor's CPU run "
                         "(SAM_VIDEO_FILL_HOLES=1 fills them with OpenCV).")

    def _run_single_frame_inference(self, *args: Any, **kwargs: Any):
        compact, pred_masks = super()._run_single_frame_inference(*args, **kwargs)
        if self.opencv_hole_area > 0:
            from .holes import fill_small_holes

            pred_masks = fill_small_holes(pred_masks, self.opencv_hole_area)
            compact = {**compact, "pred_masks": pred_masks.to(compact["pred_masks"].device)}
        return compact, pred_masks

    def forward_image(self, img_batch: torch.Tensor) -> dict:
        if self.encoder_dtype is None:
            return super().forward_image(img_batch)
        out = super().forward_image(img_batch.to(self.encoder_dtype))
        shared = self._shared_pos_enc
        if shared is None or [t.shape for t in shared] != [t.shape for t in out["vision_pos_enc"]]:
            shared = [t.float() for t in out["vision_pos_enc"]]
        return {
            "vision_features": out["vision_features"].float(),
            "vision_pos_enc": shared,
            "backbone_fpn": [t.float() for t in out["backbone_fpn"]],
        }

    def _get_image_feature(self, inference_state: dict, frame_idx: int, batch_size: int):
        """Upstream's lookup, fed from (and feeding) the session's ``FeatureCache``."""
        cache: FeatureCache = inference_state["feature_cache"]
        fpn = cache.get(frame_idx)
        if fpn is not None and self._shared_pos_enc is not None:
            placeholder = torch.zeros(1, 3, 1, 1, device=fpn[0].device)  # callers ignore it
            backbone_out = {"backbone_fpn": fpn, "vision_pos_enc": self._shared_pos_enc}
            inference_state["cached_features"] = {frame_idx: (placeholder, backbone_out)}
        else:
            inference_state["cached_features"] = {}
        features = super()._get_image_feature(inference_state, frame_idx, batch_size)
        if fpn is None:
            _, backbone_out = inference_state["cached_features"][frame_idx]
            if self._shared_pos_enc is None:
                self._shared_pos_enc = list(backbone_out["vision_pos_enc"])
            cache.put(frame_idx, list(backbone_out["backbone_fpn"]))
        inference_state["cached_features"] = {}  # upstream's copy holds the 1024x1024 input
        return features

    def _prepare_memory_conditioned_features(self, **kwargs: Any):
        output_dict = kwargs["output_dict"]
        dtype = next(self.memory_attention.parameters()).dtype
        kwargs["output_dict"] = {key: _WidenedOutputs(value, dtype)
                                 for key, value in output_dict.items()}
        return super()._prepare_memory_conditioned_features(**kwargs)
