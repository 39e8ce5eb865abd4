"""EdgeTAM video tracking through transformers' ``EdgeTamVideoModel`` and its inference session.

``EdgeTamVideoSession`` has the public API of ``sam_backends.video.session.VideoSession``
(``add_prompts``, ``remove_object``, ``reset``, ``propagate``, ``propagate_both``,
``object_ids``, ``state_nbytes``, ``masks``), so the Video view, Compare-on-video, ``/track``
and the video REST job drive EdgeTAM as they drive SAM 2.1. Inside, it does what transformers
documents: ``processor.add_inputs_to_inference_session`` then ``model(inference_session,
frame_idx)`` for a prompt, the model's forward frame by frame to propagate (as
``propagate_in_video_iterator`` does), ``post_process_masks`` for the masks; in fp32 its masks
equal that loop's pixel for pixel.

What differs from the documented loop:

1. Frames: ``init_video_session(video=...)`` preprocesses every frame to 3 x 1024 x 1024 float32
   up front (12 MiB a frame). Here ``processed_frames`` is ``LazyFrames``: a frame is decoded
   and run through the same video processor when the model asks for it, never kept.
2. A correction on a frame already tracked: transformers stores it as a non-conditioning output,
   which the next propagation overwrites (the correction is lost). Here it is kept as a
   conditioning frame, as SAM 2.1's ``add_all_frames_to_correct_as_cond`` does.
3. ``remove_object``: the inference session has none; here the object's inputs and outputs are
   dropped and the other objects re-indexed (each object is tracked on its own, so the others'
   masks do not change).

What a session holds: the image features of the last ``feature_cache_frames`` frames (16 MiB a
frame at the published width; ``SharedPositionCache`` holds their position encodings once,
84 MiB, where transformers' cache holds them per frame), and per tracked
frame and object the model's output: the perceiver-compressed memory (EdgeTAM's point: 512
tokens x 64 channels, 128 KiB fp32, against SAM 2.1's 64 x 64 x 64), its position encoding
(as large), the 256 x 256 low-res logits (256 KiB) and the object pointer; plus the masks as
RLE in ``masks``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import UnsupportedPromptError
from ...registry import ModelSpec
from ...text import hf_common
from ...types import Prompts
from ...video.errors import VideoTrackingError
from ...video.lazy_frames import LazyFrames
from ...video.masks import MaskTrack
from ...video.propagation import (
    NOTHING_TO_TRACK,
    PropagatesBothWays,
    check_propagation,
    frame_order,
)
from ...video.source import Video
from .backend import MODEL_NAME, read_folder

MASK_THRESHOLD = 0.0  # on the logits, as ``post_process_masks``
# The inference session's per-object tables (dicts keyed by object index).
_PER_OBJECT = ("point_inputs_per_obj", "mask_inputs_per_obj", "output_dict_per_obj",
               "frames_tracked_per_obj")


@dataclass(frozen=True)
class EdgeTamVideo:
    """What a tracker holds for EdgeTAM: the video model and the folder's processor."""

    model: Any
    processor: Any
    precision: str


def load_video(spec: ModelSpec, folder: Path, device: str, precision: str) -> EdgeTamVideo:
    """``EdgeTamVideoModel`` and its processor from a transformers folder, strictly.

    Raises:
        BackendUnavailableError, CheckpointCorruptError: see ``backend.read_folder``.
    """
    hf_common.check_precision(precision, spec.model_id)
    hf_common.import_transformers(MODEL_NAME)
    from transformers import EdgeTamVideoModel

    from ...speed.accel import configure_threads

    configure_threads()
    model, processor = read_folder(EdgeTamVideoModel, folder, f"{MODEL_NAME} video model")
    return EdgeTamVideo(model.to(device), processor, precision)


class SharedPositionCache:
    """The session's ``cache``: an LRU of per-frame image features whose position encodings
    (the same for every frame, and larger than the features: 84 of 100 MiB a frame at the
    published width) are held once.

    transformers' ``EdgeTamVideoInferenceCache`` keeps each frame's encodings and evicts the
    lowest frame index, which is the frame just used when tracking backwards; here the least
    recently used frame goes. Same interface: ``cache_vision_features``,
    ``get_vision_features``, ``clear_all``.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, int(capacity))
        self.features: OrderedDict[int, list[Any]] = OrderedDict()
        self.positions: list[Any] | None = None

    def cache_vision_features(self, frame_idx: int, features: dict) -> None:
        if self.positions is None:
            self.positions = list(features["vision_pos_embeds"])
        self.features[frame_idx] = list(features["vision_feats"])
        self.features.move_to_end(frame_idx)
        while len(self.features) > self.capacity:
            self.features.popitem(last=False)

    def get_vision_features(self, frame_idx: int) -> dict | None:
        feats = self.features.get(frame_idx)
        if feats is None:
            return None
        self.features.move_to_end(frame_idx)
        return {"vision_feats": list(feats), "vision_pos_embeds": list(self.positions)}

    def clear_all(self) -> None:
        self.features.clear()

    @property
    def _vision_features(self) -> dict:
        """What ``state_nbytes`` walks: the features and the one set of encodings."""
        return {"features": self.features, "positions": self.positions or []}


class EdgeTamVideoSession(PropagatesBothWays):
    """Prompts and tracking results for one video (see the module docstring).

    Frame indices are positions in ``video``; masks are bool H x W at the video's size; object
    ids are integers chosen by the caller.
    """

    def __init__(self, tracker: Any, video: Video) -> None:
        import torch
        from transformers import EdgeTamVideoInferenceSession

        self.tracker, self.video = tracker, video
        self.masks = MaskTrack(video.size)
        loaded: EdgeTamVideo = tracker.model
        self._model, self._processor = loaded.model, loaded.processor
        height, width = video.size
        self._session = EdgeTamVideoInferenceSession(
            video=None, video_height=height, video_width=width,
            inference_device=tracker.device, inference_state_device=tracker.device,
            video_storage_device=tracker.device, dtype=torch.float32,
            max_vision_features_cache_size=tracker.feature_cache_frames,
        )
        self._session.processed_frames = LazyFrames(video, self._processor)
        self._session.cache = SharedPositionCache(tracker.feature_cache_frames)

    # -- prompts -------------------------------------------------------------------------------

    @property
    def object_ids(self) -> list[int]:
        return list(self._session.obj_ids)

    def add_prompts(self, frame_index: int, object_id: int, prompts: Prompts) -> np.ndarray:
        """Prompt (or correct) ``object_id`` on ``frame_index``; returns its bool H x W mask.

        ``prompts`` are all of this object's clicks and box on this frame (they replace earlier
        ones there). Works before and after propagating, for new and known objects.

        Raises:
            PromptError: no prompt, or outside the frame. UnsupportedPromptError: mask_input.
            VideoTrackingError: bad frame index or object id.
        """
        import torch

        frame_index = self._frame(frame_index)
        object_id = self._object_id(object_id)
        if not isinstance(prompts, Prompts):
            raise VideoTrackingError("prompts must be a sam_backends.Prompts value.")
        if prompts.mask_input is not None:
            raise UnsupportedPromptError("Video tracking takes points and boxes, not mask_input; "
                                         "click on the frame instead.")
        prompts.validate_for_image(self.video.size)
        inputs: dict[str, Any] = {}
        if prompts.points:
            inputs["input_points"] = [[[list(p) for p in prompts.points]]]
            inputs["input_labels"] = [[list(prompts.labels)]]
        if prompts.box is not None:
            inputs["input_boxes"] = [[list(prompts.box)]]
        session = self._session
        with self.tracker.lock, torch.inference_mode():
            self._processor.add_inputs_to_inference_session(
                inference_session=session, frame_idx=frame_index, obj_ids=object_id,
                clear_old_inputs=True, **inputs)
            out = self._forward(frame_index, False)
            self._keep_as_conditioning(object_id, frame_index)
            mask = self._masks(out)[out.object_ids.index(object_id)]
        self.masks.set(frame_index, object_id, mask)
        return mask

    def _keep_as_conditioning(self, object_id: int, frame_index: int) -> None:
        """A correction on a tracked frame becomes a conditioning frame (module doc, 2)."""
        session = self._session
        outputs = session.output_dict_per_obj[session.obj_id_to_idx(object_id)]
        corrected = outputs["non_cond_frame_outputs"].pop(frame_index, None)
        if corrected is not None:
            outputs["cond_frame_outputs"][frame_index] = corrected

    def remove_object(self, object_id: int) -> None:
        """Forget ``object_id``: its prompts, memory and masks."""
        session = self._session
        if object_id not in session.obj_ids:
            raise VideoTrackingError(f"There is no object {object_id!r}; objects: "
                                     f"{self.object_ids or 'none yet'}.")
        with self.tracker.lock:
            kept = [i for i in session.obj_ids if i != object_id]
            old_index = dict(session._obj_id_to_idx)
            for name in _PER_OBJECT:
                table = getattr(session, name)
                setattr(session, name, {new: table[old_index[i]] for new, i in enumerate(kept)})
            session._obj_id_to_idx = OrderedDict((i, new) for new, i in enumerate(kept))
            session._obj_idx_to_id = OrderedDict((new, i) for new, i in enumerate(kept))
            session.obj_ids = kept
            session.obj_with_new_inputs = [i for i in session.obj_with_new_inputs
                                           if i != object_id]
        self.masks.remove_object(object_id)

    def reset(self) -> None:
        """Forget every object and result (cached image features stay)."""
        with self.tracker.lock:
            self._session.reset_tracking_data()
        self.masks.clear()

    # -- propagation ---------------------------------------------------------------------------

    def propagate(self, start_frame: int | None = None, reverse: bool = False,
                  max_frames: int | None = None) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """Track every object frame by frame; yields ``(frame_index, {object_id: mask})``.

        Args:
            start_frame: default: the earliest prompted frame of any object.
            reverse: track towards frame 0 (nothing to do from frame 0).
            max_frames: yield at most this many frames (the start frame included).

        The iterator can be abandoned at any point; the session stays usable.

        Raises:
            VideoTrackingError: no object prompted yet, or a bad start frame.
        """
        check_propagation(bool(self._session.obj_ids), max_frames)
        if start_frame is not None:
            start_frame = self._frame(start_frame)
        return self._propagate(self._start_frame(start_frame), bool(reverse), max_frames)

    def _start_frame(self, start_frame: int | None) -> int:
        if start_frame is not None:
            return self._frame(start_frame)
        prompted = [frame for outputs in self._session.output_dict_per_obj.values()
                    for frame in outputs["cond_frame_outputs"]]
        if not prompted:
            raise VideoTrackingError(NOTHING_TO_TRACK)
        return min(prompted)

    def _propagate(self, start: int, reverse: bool, max_frames: int | None
                   ) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        import torch

        for frame_index in frame_order(start, self.video.num_frames, reverse, max_frames):
            with self.tracker.lock, torch.inference_mode():
                out = self._forward(frame_index, reverse)
                above = self._masks(out)
            masks = {object_id: above[k] for k, object_id in enumerate(out.object_ids)}
            for object_id, mask in masks.items():
                self.masks.set(frame_index, object_id, mask)
            yield frame_index, masks

    def _forward(self, frame_index: int, reverse: bool) -> Any:
        """``EdgeTamVideoModel(inference_session, frame_idx)`` at the tracker's precision."""
        with hf_common.autocast(self.tracker.device, self.tracker.precision):
            return self._model(inference_session=self._session, frame_idx=frame_index,
                               reverse=reverse)

    def _masks(self, out: Any) -> np.ndarray:
        """Objects x H x W bool, as ``post_process_masks`` (bilinear to the video size, > 0)."""
        height, width = self.video.size
        logits = self._processor.post_process_masks(
            [out.pred_masks.float()], original_sizes=[[height, width]], binarize=False)[0]
        return (logits[:, 0] > MASK_THRESHOLD).cpu().numpy()

    # -- bookkeeping ---------------------------------------------------------------------------

    @property
    def state_nbytes(self) -> int:
        """Bytes of tensors this session holds (memory, logits, inputs, cached features), each
        storage once (``base.array_nbytes``)."""
        from ...base import array_nbytes

        return array_nbytes([*(getattr(self._session, name) for name in _PER_OBJECT),
                             self._session.cache._vision_features])

    def _frame(self, frame_index: Any) -> int:
        if isinstance(frame_index, bool) or not isinstance(frame_index, (int, np.integer)) or \
                not 0 <= frame_index < self.video.num_frames:
            raise VideoTrackingError(f"Frame {frame_index!r} is not in the video; use 0 to "
                                     f"{self.video.num_frames - 1}.")
        return int(frame_index)

    @staticmethod
    def _object_id(object_id: Any) -> int:
        if isinstance(object_id, bool) or not isinstance(object_id, (int, np.integer)):
            raise VideoTrackingError(f"Object ids are integers, got {object_id!r}.")
        return int(object_id)
