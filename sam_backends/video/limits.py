"""What a video may cost before any frame is decoded: ``VideoLimits`` and the checks.

The defaults suit a CPU Space (2 cores, a few GiB): one minute, 300 processed frames, up to
1920x1080 pixels per frame, 512 MiB per file, 8 streams. Every check runs on header data (file
size, stream count, frame size, duration, frame count), so a 4K ten-minute file is refused in
milliseconds, before a frame is decoded.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .errors import VideoLimitError

MIN_SIDE = 8  # frames smaller than this (e.g. 1xN) cannot be segmented meaningfully


@dataclass(frozen=True)
class VideoLimits:
    """Upper bounds on one opened video (all checked before decoding).

    Attributes:
        max_duration_s: length of the selected span (``start_s`` .. ``end_s``), seconds.
        max_frames: frames processed (after ``stride`` and the span).
        max_pixels: width x height of one frame (1920x1080 = 2,073,600).
        max_file_bytes: size of a video file, or of all frames of a JPEG folder.
        max_streams: streams in the container (video, audio, subtitles, data...).
        probe_timeout_s: wall time allowed to the child process that reads the header.
    """

    max_duration_s: float = 60.0
    max_frames: int = 300
    max_pixels: int = 1920 * 1080
    max_file_bytes: int = 512 * 1024 * 1024
    max_streams: int = 8
    probe_timeout_s: float = 30.0

    def as_dict(self) -> dict:
        return asdict(self)


def check_size(height: int, width: int, limits: VideoLimits) -> None:
    """Refuse frames with too many pixels or a side under ``MIN_SIDE``."""
    if min(height, width) < MIN_SIDE:
        raise VideoLimitError(
            f"The frames are {width}x{height} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed "
            "to segment anything. Use a larger video."
        )
    if height * width > limits.max_pixels:
        raise VideoLimitError(
            f"The frames are {width}x{height} pixels ({height * width:,}), more than the limit "
            f"of {limits.max_pixels:,}. Scale the video down first, e.g. "
            "ffmpeg -i in.mp4 -vf scale=-2:720 out.mp4."
        )


def check_file_bytes(size: int, limits: VideoLimits, what: str = "The video file") -> None:
    if size > limits.max_file_bytes:
        raise VideoLimitError(
            f"{what} is {size / 2**20:.1f} MiB, more than the limit of "
            f"{limits.max_file_bytes / 2**20:.0f} MiB. Cut or compress it first."
        )


def check_span(duration_s: float, limits: VideoLimits) -> None:
    if math.isfinite(duration_s) and duration_s > limits.max_duration_s:
        raise VideoLimitError(
            f"The selected part of the video lasts {duration_s:.1f} s, more than the limit of "
            f"{limits.max_duration_s:g} s. Choose a shorter part with start_s/end_s."
        )


def check_frames(count: int, limits: VideoLimits, stride: int) -> None:
    if count > limits.max_frames:
        raise VideoLimitError(
            f"The selection has {count} frames (stride {stride}), more than the limit of "
            f"{limits.max_frames}. Use a larger stride, a shorter part (start_s/end_s) or "
            "max_frames."
        )
