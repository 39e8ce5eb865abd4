"""Typed errors of the video engine (all ``SamBackendError``, so the UI shows them as-is).

Every message says what happened and what to do next.
"""

from __future__ import annotations

from ..errors import SamBackendError


class VideoError(SamBackendError, ValueError):
    """A video that cannot be opened, probed, decoded or tracked."""


class VideoFormatError(VideoError):
    """Not an allowed container (MP4/MOV/M4V, WebM/MKV, a JPEG folder), or not a video."""


class VideoLimitError(VideoError):
    """The video is larger than the configured ``VideoLimits`` (checked before decoding)."""


class VideoDecodeError(VideoError):
    """The container looked valid but its frames could not be decoded (corrupt or truncated)."""


class VideoTrackingError(VideoError):
    """The model cannot track video, or a session call was given an impossible request."""
