"""``MaskTrack``: every object's mask on every tracked frame, stored compactly as COCO RLE
(``sam_backends.masks``, the one codec).

A bool 720p mask is 0.9 MiB; its run-length encoding is typically a few KiB, so a session can
keep the latest result of every frame and object for display and export at little cost.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

import numpy as np

from ..masks import decode_rle, encode_rle


class MaskTrack(Mapping):
    """frame index -> {object id: bool H x W mask}, stored as RLE (thread-safe).

    ``size`` is (H, W) of every mask. Reading ``track[i]`` decodes that frame's masks.
    """

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = tuple(size)
        self._frames: dict[int, dict[int, dict]] = {}
        self._lock = threading.Lock()

    def set(self, frame_index: int, object_id: int, mask: np.ndarray) -> None:
        if mask.shape != self.size:
            raise ValueError(f"mask shape {mask.shape} differs from the video size {self.size}")
        rle = encode_rle(mask)
        with self._lock:
            self._frames.setdefault(int(frame_index), {})[int(object_id)] = rle

    def rle(self, frame_index: int, object_id: int) -> dict | None:
        with self._lock:
            return self._frames.get(frame_index, {}).get(object_id)

    def get_mask(self, frame_index: int, object_id: int) -> np.ndarray | None:
        rle = self.rle(frame_index, object_id)
        return None if rle is None else decode_rle(rle)

    def remove_object(self, object_id: int) -> None:
        with self._lock:
            for masks in self._frames.values():
                masks.pop(object_id, None)
            self._frames = {k: v for k, v in self._frames.items() if v}

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()

    @property
    def object_ids(self) -> list[int]:
        with self._lock:
            return sorted({obj for masks in self._frames.values() for obj in masks})

    def __getitem__(self, frame_index: int) -> dict[int, np.ndarray]:
        with self._lock:
            rles = dict(self._frames[frame_index])
        return {obj: decode_rle(rle) for obj, rle in sorted(rles.items())}

    def __iter__(self) -> Iterator[int]:
        with self._lock:
            return iter(sorted(self._frames))

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    @property
    def nbytes(self) -> int:
        """Bytes of RLE text held (roughly the memory this track costs)."""
        with self._lock:
            return sum(len(r["counts"]) for m in self._frames.values() for r in m.values())
