"""What every video session's ``propagate`` shares, whatever tracks the frames: the checks on
its arguments, the frames it visits in which order, and both directions from one start.

Why one place: the SAM 2 session (``video.session``) and EdgeTAM's (``families.edgetam.video``)
track with different models but promise the same iterator: from the earliest prompted frame by
default, at most ``max_frames`` frames with the start included, nothing backwards from frame 0,
and ``propagate_both`` yielding the start frame once from each pass.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .errors import VideoTrackingError

Frames = Iterator[tuple[int, dict[int, np.ndarray]]]  # (frame_index, {object_id: mask})
NOTHING_TO_TRACK = "No object to track yet: prompt an object on a frame first."


def check_propagation(has_objects: bool, max_frames: object) -> None:
    """Refuse a propagation that cannot start (no object yet, or a bad ``max_frames``)."""
    if not has_objects:
        raise VideoTrackingError(NOTHING_TO_TRACK)
    if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
        raise VideoTrackingError(f"max_frames must be a positive integer, got {max_frames!r}.")


def frame_order(start: int, num_frames: int, reverse: bool, max_frames: int | None) -> range:
    """The frames a pass visits from ``start`` (included), at most ``max_frames`` of them:
    towards the end, or with ``reverse`` towards frame 0 (none from frame 0, as upstream)."""
    count = num_frames if max_frames is None else max_frames
    if reverse:
        return range(start, max(start - count + 1, 0) - 1, -1) if start > 0 else range(0)
    return range(start, min(start + count, num_frames))


class PropagatesBothWays:
    """``propagate_both`` for a session that has ``propagate(start_frame, reverse,
    max_frames)`` and ``_start_frame(start_frame)`` (the start a pass takes when given None)."""

    def propagate_both(self, start_frame: int | None = None, max_frames: int | None = None
                       ) -> Frames:
        """Forward from ``start_frame``, then backward from it (it is yielded by both passes)."""
        forward = self.propagate(start_frame, False, max_frames)  # checks the arguments now
        start = self._start_frame(start_frame)

        def both() -> Frames:
            yield from forward
            yield from self.propagate(start, True, max_frames)

        return both()

    def propagate(self, start_frame: int | None = None, reverse: bool = False,
                  max_frames: int | None = None) -> Frames:
        raise NotImplementedError

    def _start_frame(self, start_frame: int | None) -> int:
        raise NotImplementedError
