"""Frames for a transformers video inference session, made when the model asks for them.

transformers' ``init_video_session(video=...)`` runs the video processor over every frame up
front and keeps the result (3 x 1024 x 1024 float32, 12 MiB a frame for SAM 2 and EdgeTAM;
1008 x 1008 for SAM 3). A session's ``processed_frames`` only needs ``len`` and ``[index]``, so
a ``LazyFrames`` in its place decodes and processes frame i on demand, through the same video
processor, and keeps nothing: the masks equal those of the up-front session.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .source import Video


class LazyFrames(Mapping):
    """``processed_frames`` of the inference session: frame i as the video processor makes it
    (3 x S x S float32), made when the model asks for it and not kept."""

    def __init__(self, video: Video, processor: Any) -> None:
        self.video, self.processor = video, processor

    def __len__(self) -> int:
        return self.video.num_frames

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.video.num_frames))

    def __getitem__(self, index: int) -> Any:
        if not 0 <= int(index) < self.video.num_frames:
            raise KeyError(index)
        # a one-frame video, T x H x W x 3; a writable copy (the decoded frame is read-only,
        # which torch.from_numpy warns about)
        frame = np.array(self.video.frame(int(index))[None])
        out = self.processor.video_processor(videos=[frame], return_tensors="pt")
        return out["pixel_values_videos"][0][0]
