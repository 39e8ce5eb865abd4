"""Video for SAM 2.1 and EdgeTAM: open a clip, prompt objects on any frame, propagate, export.

    >>> from sam_backends.video import open_video, create_tracker
    >>> video = open_video("clip.mp4", stride=2)                 # probed, nothing decoded yet
    >>> tracker = create_tracker("sam2.1-tiny")
    >>> session = tracker.start(video)
    >>> mask = session.add_prompts(0, 1, Prompts(box=(40, 30, 200, 180)))   # bool H x W
    >>> for frame_index, masks in session.propagate():           # {object_id: bool H x W}
    ...     show(frame_index, masks)

Nothing here imports torch or PyAV at import time.
"""

from .errors import (
    VideoDecodeError,
    VideoError,
    VideoFormatError,
    VideoLimitError,
    VideoTrackingError,
)
from .limits import VideoLimits
from .masks import MaskTrack
from .source import Video, open_video

__all__ = [
    "MaskTrack",
    "Video",
    "VideoDecodeError",
    "VideoError",
    "VideoFormatError",
    "VideoLimitError",
    "VideoLimits",
    "VideoTrackingError",
    "create_tracker",
    "open_video",
]


def create_tracker(*args, **kwargs):  # noqa: ANN002, ANN003 - documented in tracker
    """See ``sam_backends.video.tracker.create_tracker`` (imported lazily: it needs torch)."""
    from .tracker import create_tracker as create

    return create(*args, **kwargs)
