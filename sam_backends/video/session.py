"""``VideoSession``: one video's prompts, memory and masks, driven through the upstream model.

The session builds the inference state that ``SAM2VideoPredictor.init_state`` would build, with
two differences: ``images`` is ``ModelFrames`` (each frame decoded and preprocessed when the
model asks for it, never all at once) and image features go through a bounded LRU
(``model.FeatureCache``). It then calls the upstream methods (``add_new_points_or_box``,
``propagate_in_video_preflight``, ``_run_single_frame_inference``, ``remove_object``,
``reset_state``), so in fp32 its masks equal the upstream predictor's pixel for pixel.

Cost per tracked frame and object: about 0.8 MiB of memory state (bf16 memory features
64x64x64 and fp32 low-res logits 256x256, as upstream keeps them), plus the masks kept as RLE
in ``session.masks`` (a few KiB). Sessions share nothing but the read-only model: dropping one
frees its state.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import UnsupportedPromptError
from ..families.sam2.backend import PIXEL_MEAN, PIXEL_STD
from ..types import Prompts
from .errors import VideoTrackingError
from .masks import MaskTrack
from .propagation import PropagatesBothWays, check_propagation, frame_order
from .source import Video

MASK_THRESHOLD = 0.0  # logits above this are the object (as upstream's examples threshold)


class ModelFrames:
    """``state["images"]``: frame i as the model's 3 x S x S float32 input, made on demand.

    Preprocessing equals upstream ``load_video_frames`` for a JPEG folder: PIL resize to S x S
    (bicubic, Pillow's default), /255 in float64 then float32, minus mean, divided by std.
    """

    def __init__(self, video: Video, image_size: int) -> None:
        import torch

        self.video, self.image_size = video, image_size
        self.mean = torch.tensor(PIXEL_MEAN, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(PIXEL_STD, dtype=torch.float32)[:, None, None]

    def __len__(self) -> int:
        return self.video.num_frames

    def __getitem__(self, index: int) -> Any:
        import torch
        from PIL import Image

        size = self.image_size
        resized = Image.fromarray(self.video.frame(int(index))).resize((size, size))
        scaled = (np.asarray(resized) / 255.0).astype(np.float32)
        tensor = torch.from_numpy(scaled).permute(2, 0, 1).contiguous()
        return (tensor - self.mean) / self.std


class VideoSession(PropagatesBothWays):
    """Prompts and tracking results for one video (see the module docstring).

    Frame indices are positions in ``video`` (0 .. ``video.num_frames - 1``); masks are bool
    H x W at the video's displayed size; object ids are integers chosen by the caller.
    """

    def __init__(self, tracker: Any, video: Video) -> None:
        from .model import FeatureCache

        self.tracker, self.video = tracker, video
        self.masks = MaskTrack(video.size)
        model = tracker.model
        self._state: dict[str, Any] = {
            "images": ModelFrames(video, model.image_size),
            "num_frames": video.num_frames,
            "offload_video_to_cpu": False,
            "offload_state_to_cpu": False,
            "video_height": video.size[0],
            "video_width": video.size[1],
            "device": model.device,
            "storage_device": model.device,
            "point_inputs_per_obj": {},
            "mask_inputs_per_obj": {},
            "cached_features": {},
            "constants": {},
            "obj_id_to_idx": OrderedDict(),
            "obj_idx_to_id": OrderedDict(),
            "obj_ids": [],
            "output_dict_per_obj": {},
            "temp_output_dict_per_obj": {},
            "frames_tracked_per_obj": {},
            "feature_cache": FeatureCache(tracker.feature_cache_frames),
        }

    # -- prompts -------------------------------------------------------------------------------

    @property
    def object_ids(self) -> list[int]:
        return list(self._state["obj_ids"])

    def add_prompts(self, frame_index: int, object_id: int, prompts: Prompts) -> np.ndarray:
        """Prompt (or correct) ``object_id`` on ``frame_index``; returns its bool H x W mask.

        ``prompts`` are all of this object's clicks and box on this frame (they replace earlier
        ones there; the previous mask is fed back as upstream does). Works before and after
        propagating, for new and known objects.

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
        points = np.asarray(prompts.points, dtype=np.float32) if prompts.points else None
        labels = np.asarray(prompts.labels, dtype=np.int32) if prompts.points else None
        box = np.asarray(prompts.box, dtype=np.float32) if prompts.box is not None else None
        with self.tracker.lock, torch.inference_mode():
            _, obj_ids, logits = self.tracker.model.add_new_points_or_box(
                self._state, frame_idx=frame_index, obj_id=object_id, points=points,
                labels=labels, box=box, clear_old_points=True,
            )
            mask = (logits[list(obj_ids).index(object_id), 0] > MASK_THRESHOLD).cpu().numpy()
        self.masks.set(frame_index, object_id, mask)
        return mask

    def remove_object(self, object_id: int) -> None:
        """Forget ``object_id``: its prompts, memory and masks."""
        import torch

        if object_id not in self._state["obj_id_to_idx"]:
            raise VideoTrackingError(f"There is no object {object_id!r}; objects: "
                                     f"{self.object_ids or 'none yet'}.")
        with self.tracker.lock, torch.inference_mode():
            self.tracker.model.remove_object(self._state, object_id, strict=True,
                                             need_output=False)
        self.masks.remove_object(object_id)

    def reset(self) -> None:
        """Forget every object and result (decoded frames and features stay cached)."""
        import torch

        with self.tracker.lock, torch.inference_mode():
            self.tracker.model.reset_state(self._state)
        self.masks.clear()

    # -- propagation ---------------------------------------------------------------------------

    def propagate(self, start_frame: int | None = None, reverse: bool = False,
                  max_frames: int | None = None) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """Track every object frame by frame; yields ``(frame_index, {object_id: mask})``.

        Args:
            start_frame: default: the earliest prompted frame of any object.
            reverse: track towards frame 0 (nothing to do from frame 0, as upstream).
            max_frames: yield at most this many frames (the start frame included).

        The iterator can be abandoned at any point: every frame yielded so far is part of the
        session's memory, and the session stays usable.

        Raises:
            VideoTrackingError: no object prompted yet, or a bad start frame.
        """
        check_propagation(bool(self._state["obj_ids"]), max_frames)
        if start_frame is not None:
            start_frame = self._frame(start_frame)
        return self._propagate(start_frame, bool(reverse), max_frames)

    def _start_frame(self, start_frame: int | None) -> int:
        if start_frame is not None:
            return self._frame(start_frame)
        prompted = [t for inputs in self._state["point_inputs_per_obj"].values() for t in inputs]
        cond = [t for out in self._state["output_dict_per_obj"].values()
                for t in out["cond_frame_outputs"]]
        temp = [t for out in self._state["temp_output_dict_per_obj"].values()
                for t in out["cond_frame_outputs"]]
        return min(cond + temp + prompted)

    def _propagate(self, start_frame: int | None, reverse: bool, max_frames: int | None
                   ) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        import torch

        model, state = self.tracker.model, self._state
        with self.tracker.lock, torch.inference_mode():
            try:
                model.propagate_in_video_preflight(state)
            except RuntimeError as exc:  # an object without prompts (upstream's message)
                raise VideoTrackingError(f"Cannot propagate: {exc}") from None
        start = self._start_frame(start_frame)
        for frame_index in frame_order(start, state["num_frames"], reverse, max_frames):
            with self.tracker.lock, torch.inference_mode():
                masks = self._track_frame(frame_index, reverse)
            for object_id, mask in masks.items():
                self.masks.set(frame_index, object_id, mask)
            yield frame_index, masks

    def _track_frame(self, frame_index: int, reverse: bool) -> dict[int, np.ndarray]:
        """One frame for every object, as upstream's ``propagate_in_video`` loop body."""
        import torch

        model, state = self.tracker.model, self._state
        logits = []
        for obj_idx in range(len(state["obj_ids"])):
            outputs = state["output_dict_per_obj"][obj_idx]
            prompted = outputs["cond_frame_outputs"].get(frame_index)
            if prompted is not None:
                low_res = prompted["pred_masks"].to(state["device"], non_blocking=True)
            else:
                compact, low_res = model._run_single_frame_inference(
                    inference_state=state, output_dict=outputs, frame_idx=frame_index,
                    batch_size=1, is_init_cond_frame=False, point_inputs=None,
                    mask_inputs=None, reverse=reverse, run_mem_encoder=True,
                )
                outputs["non_cond_frame_outputs"][frame_index] = compact
            state["frames_tracked_per_obj"][obj_idx][frame_index] = {"reverse": reverse}
            logits.append(low_res)
        batch = torch.cat(logits, dim=0) if len(logits) > 1 else logits[0]
        _, video_res = model._get_orig_video_res_output(state, batch)
        above = (video_res[:, 0] > MASK_THRESHOLD).cpu().numpy()
        return {object_id: above[k] for k, object_id in enumerate(state["obj_ids"])}

    # -- bookkeeping ---------------------------------------------------------------------------

    @property
    def state_nbytes(self) -> int:
        """Bytes of tensors this session holds (memory state, logits, cached features), each
        storage once (``base.array_nbytes``)."""
        from ..base import array_nbytes

        state = self._state
        return array_nbytes([state["output_dict_per_obj"], state["temp_output_dict_per_obj"],
                             state["constants"], state["point_inputs_per_obj"],
                             list(state["feature_cache"].entries.values())])

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
