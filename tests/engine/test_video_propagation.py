"""The frames a video pass visits and the checks before one (``sam_backends.video.propagation``,
shared by the SAM 2 and EdgeTAM sessions; their own tests track real frames)."""

from __future__ import annotations

import pytest

from sam_backends.video.errors import VideoTrackingError
from sam_backends.video.propagation import PropagatesBothWays, check_propagation, frame_order


@pytest.mark.parametrize("start, reverse, max_frames, frames", [
    (0, False, None, [0, 1, 2, 3, 4]),
    (2, False, None, [2, 3, 4]),
    (2, False, 2, [2, 3]),
    (4, False, 9, [4]),
    (2, True, None, [2, 1, 0]),
    (3, True, 2, [3, 2]),
    (0, True, None, []),  # nothing backwards from frame 0, as upstream
    (1, True, 1, [1]),
])
def test_frame_order(start, reverse, max_frames, frames):
    assert list(frame_order(start, 5, reverse, max_frames)) == frames


@pytest.mark.parametrize("has_objects, max_frames, message", [
    (False, None, "No object to track yet"),
    (True, 0, "max_frames must be a positive integer, got 0"),
    (True, 2.5, "max_frames must be a positive integer, got 2.5"),
])
def test_a_pass_that_cannot_start_is_refused_with_what_to_do(has_objects, max_frames, message):
    with pytest.raises(VideoTrackingError, match=message):
        check_propagation(has_objects, max_frames)
    check_propagation(True, None)
    check_propagation(True, 3)


class Counting(PropagatesBothWays):
    """A session whose passes name their frames, prompted first on frame 2 of 5."""

    def propagate(self, start_frame=None, reverse=False, max_frames=None):
        start = self._start_frame(start_frame)
        return ((f, {}) for f in frame_order(start, 5, reverse, max_frames))

    def _start_frame(self, start_frame):
        return 2 if start_frame is None else start_frame


def test_both_ways_yields_the_start_from_each_pass():
    assert [f for f, _ in Counting().propagate_both()] == [2, 3, 4, 2, 1, 0]
    assert [f for f, _ in Counting().propagate_both(3, max_frames=2)] == [3, 4, 3, 2]
