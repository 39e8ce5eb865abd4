"""Opening a video: ``open_video`` and the ``Video`` value it returns.

A ``Video`` describes the selected frames (count, fps after stride, size as displayed, the
indices into the original stream, timestamps) and decodes a frame only when asked
(``video.frame(i)``, iteration). Decoded frames live in a small LRU (``cache_frames``, 8 by
default: a 720p frame is 2.6 MiB), so a ten-second 720p clip needs tens of MiB, not gigabytes.

Sources:

* a video file (MP4/MOV/M4V, WebM/MKV, any codec PyAV's decoder has): the header is probed in a
  child process first (``probe``); frames are then decoded here by seeking and decoding.
  Rotation metadata is applied, so ``size`` and frames are what a person sees.
* a folder of numbered JPEG frames (``00000.jpg``, ``00001.jpg``, ... as upstream sam2 reads
  them, sorted by the number in the name). EXIF orientation is ignored, as upstream does.
* a sequence of RGB uint8 H x W x 3 arrays (kept by reference, not copied).

Every limit in ``VideoLimits`` is checked before any frame is decoded.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import VideoDecodeError, VideoError, VideoFormatError
from .limits import VideoLimits, check_file_bytes, check_frames, check_size, check_span
from .probe import OPEN_OPTIONS, ProbeResult, probe_file

DEFAULT_FPS = 30.0  # for JPEG folders and arrays, which carry no frame rate
DEFAULT_CACHE_FRAMES = 8
JPEG_EXTENSIONS = (".jpg", ".jpeg", ".JPG", ".JPEG")  # what upstream's loader accepts
_JPEG_MAGIC = b"\xff\xd8\xff"
_VFR_TOLERANCE = 0.1  # frame intervals differing by more than 10% mean a variable rate
_SEQUENTIAL_REACH = 48  # decode forward instead of seeking when the target is this close


@dataclass(frozen=True, eq=False)
class Video:
    """The selected frames of one video, decoded on demand.

    Attributes:
        source: the path (or ``"<arrays>"``), for messages.
        kind: "file", "jpeg_folder" or "arrays".
        num_frames: frames in the selection (after ``start_s``/``end_s``/``stride``).
        fps: frames per second of the selection (the source rate divided by ``stride``; the
            average rate for a variable-frame-rate file).
        size: (H, W) as displayed (rotation applied).
        frame_indices: for each selected frame, its index in the original stream
            (presentation order).
        timestamps_s: for each selected frame, its time from the stream's first frame.
        duration_s: ``num_frames / fps``.
        variable_frame_rate: the source's frame intervals are not constant.
        rotation: degrees counter-clockwise applied to the decoded frames (0, 90, 180, 270).
        audio_stream: index of the first audio stream of a file, or None.
    """

    source: str
    kind: str
    num_frames: int
    fps: float
    size: tuple[int, int]
    frame_indices: tuple[int, ...]
    timestamps_s: tuple[float, ...] = field(repr=False)
    duration_s: float
    source_fps: float
    variable_frame_rate: bool = False
    rotation: int = 0
    audio_stream: int | None = None
    _reader: Any = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return self.num_frames

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` of the selection: RGB uint8 H x W x 3, read-only.

        Raises:
            IndexError: outside ``[0, num_frames)``.
            VideoDecodeError: the frame's data is corrupt.
        """
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} out of range for a video of {self.num_frames} frames")
        return self._reader.read(self.frame_indices[index])

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(self.num_frames):
            yield self.frame(index)

    @property
    def height(self) -> int:
        return self.size[0]

    @property
    def width(self) -> int:
        return self.size[1]


def open_video(
    source: str | Path | Sequence[np.ndarray],
    *,
    stride: int = 1,
    start_s: float = 0.0,
    end_s: float | None = None,
    max_frames: int | None = None,
    limits: VideoLimits | None = None,
    fps: float | None = None,
    cache_frames: int = DEFAULT_CACHE_FRAMES,
) -> Video:
    """Open a video file, a JPEG-frame folder or a sequence of RGB arrays (see the module doc).

    Args:
        stride: keep every ``stride``-th frame of the span.
        start_s, end_s: the span in seconds from the first frame (``end_s`` exclusive).
        max_frames: keep at most this many frames (after stride); without it a selection over
            ``limits.max_frames`` is refused rather than cut silently.
        limits: ``VideoLimits()`` by default.
        fps: the frame rate of a JPEG folder or of arrays (default 30); ignored for files.
        cache_frames: decoded frames kept (LRU).

    Raises:
        VideoFormatError, VideoLimitError, VideoDecodeError (all ``VideoError``).
    """
    limits = limits or VideoLimits()
    _check_selection(stride, start_s, end_s, max_frames, fps)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            return _open_jpeg_folder(path, stride, start_s, end_s, max_frames, limits, fps,
                                     cache_frames)
        if not path.is_file():
            raise VideoFormatError(f"{path} does not exist or is not a file or folder.")
        return _open_file(path, stride, start_s, end_s, max_frames, limits, cache_frames)
    if isinstance(source, np.ndarray) and source.ndim == 4:
        source = list(source)
    if isinstance(source, Sequence):
        return _open_arrays(source, stride, start_s, end_s, max_frames, limits, fps)
    raise VideoFormatError(
        f"Cannot open a video from {type(source).__name__}; give a file path, a folder of "
        "JPEG frames or a list of RGB arrays."
    )


def _check_selection(stride: Any, start_s: Any, end_s: Any, max_frames: Any, fps: Any) -> None:
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise VideoError(f"stride must be a positive integer, got {stride!r}.")
    if not (isinstance(start_s, (int, float)) and math.isfinite(start_s) and start_s >= 0):
        raise VideoError(f"start_s must be a time >= 0 in seconds, got {start_s!r}.")
    if end_s is not None and not (isinstance(end_s, (int, float)) and end_s > start_s):
        raise VideoError(f"end_s must be later than start_s ({start_s}), got {end_s!r}.")
    if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
        raise VideoError(f"max_frames must be a positive integer, got {max_frames!r}.")
    if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise VideoError(f"fps must be a positive number, got {fps!r}.")


def _select(times: Sequence[float], stride: int, start_s: float, end_s: float | None,
            max_frames: int | None, limits: VideoLimits, name: str) -> list[int]:
    """Indices of the frames inside the span, every ``stride``-th, checked against limits."""
    inside = [k for k, t in enumerate(times) if t >= start_s - 1e-9 and
              (end_s is None or t < end_s - 1e-9)]
    if not inside:
        raise VideoError(f"{name}: no frame between {start_s:g} s and "
                         f"{'the end' if end_s is None else f'{end_s:g} s'}; the video lasts "
                         f"{times[-1] if times else 0:.2f} s.")
    chosen = inside[::stride]
    if max_frames is not None:
        chosen = chosen[:max_frames]
    check_frames(len(chosen), limits, stride)
    return chosen


def frame_rate(header_fps: float, times: Sequence[float], name: str) -> tuple[float, bool]:
    """(frames per second, variable?) from the header rate and the frame times.

    The header rate is used when it is a positive finite number and the times agree with it;
    otherwise the rate is measured from the times. A video whose rate is 0/NaN and whose
    frames carry no usable times is refused.
    """
    intervals = np.diff(np.asarray(times, dtype=np.float64))
    variable = False
    measured = math.nan
    if intervals.size:
        positive = intervals[intervals > 0]
        if positive.size:
            measured = (len(times) - 1) / (times[-1] - times[0])
            variable = bool(positive.max() > positive.min() * (1 + _VFR_TOLERANCE) + 1e-6)
    usable_header = math.isfinite(header_fps) and header_fps > 0
    if usable_header and not variable:
        return header_fps, False
    if math.isfinite(measured) and measured > 0:
        return measured, variable
    if usable_header:
        return header_fps, False
    if len(times) == 1:
        return DEFAULT_FPS, False  # one frame: the rate does not matter
    raise VideoFormatError(
        f"{name}: its frame rate is 0 or not a number and its frames have no usable timestamps, "
        "so frame times are unknown. Re-encode it with a frame rate, e.g. "
        "ffmpeg -i in.mp4 -r 30 out.mp4."
    )


def _open_file(path: Path, stride: int, start_s: float, end_s: float | None,
               max_frames: int | None, limits: VideoLimits, cache_frames: int) -> Video:
    probed = probe_file(path, limits, start_s, end_s, stride, max_frames)
    first = probed.pts[0]
    times = [(p - first) * probed.time_base for p in probed.pts]
    source_fps, variable = frame_rate(probed.header_fps, times, path.name)
    chosen = _select(times, stride, start_s, end_s, max_frames, limits, path.name)
    span = times[chosen[-1]] - times[chosen[0]] + 1.0 / source_fps
    check_span(span, limits)
    height, width = probed.coded_size
    quarter_turns = int(round(probed.rotation / 90.0)) % 4
    size = (width, height) if quarter_turns % 2 else (height, width)
    fps = source_fps / stride
    reader = _FileReader(path, probed, quarter_turns, cache_frames)
    return Video(
        source=str(path), kind="file", num_frames=len(chosen), fps=fps, size=size,
        frame_indices=tuple(chosen), timestamps_s=tuple(times[k] for k in chosen),
        duration_s=len(chosen) / fps, source_fps=source_fps, variable_frame_rate=variable,
        rotation=quarter_turns * 90, audio_stream=probed.audio_index, _reader=reader,
    )


def _open_jpeg_folder(path: Path, stride: int, start_s: float, end_s: float | None,
                      max_frames: int | None, limits: VideoLimits, fps: float | None,
                      cache_frames: int) -> Video:
    from PIL import Image

    names = [p for p in path.iterdir() if p.suffix in JPEG_EXTENSIONS and p.is_file()]
    if not names:
        raise VideoFormatError(f"{path} holds no .jpg/.jpeg frames; a frame folder needs files "
                               "named 00000.jpg, 00001.jpg, ...")
    bad = [p.name for p in names if not p.stem.isdigit()]
    if bad:
        raise VideoFormatError(f"{path}: frame files must be named by their number "
                               f"(00000.jpg, 00001.jpg, ...); found {bad[0]!r}.")
    names.sort(key=lambda p: int(p.stem))
    check_file_bytes(sum(p.stat().st_size for p in names), limits, f"The folder {path.name}")
    rate = float(fps or DEFAULT_FPS)
    times = [k / rate for k in range(len(names))]
    chosen = _select(times, stride, start_s, end_s, max_frames, limits, path.name)
    check_span(len(chosen) * stride / rate, limits)
    size = None
    for k in chosen:  # headers only: PIL reads pixels lazily
        with open(names[k], "rb") as handle:
            if handle.read(3) != _JPEG_MAGIC:
                raise VideoFormatError(f"{names[k].name} is not a JPEG file; the folder must "
                                       "hold JPEG frames only.")
        try:
            with Image.open(names[k]) as image:
                frame_size = (image.height, image.width)
        except OSError as exc:
            raise VideoDecodeError(f"{names[k].name} cannot be read ({exc}).") from None
        if size is None:
            check_size(*frame_size, limits)
            size = frame_size
        elif frame_size != size:
            raise VideoFormatError(f"{names[k].name} is {frame_size[1]}x{frame_size[0]} but the "
                                   f"first frame is {size[1]}x{size[0]}; all frames must have "
                                   "one size.")
    return Video(
        source=str(path), kind="jpeg_folder", num_frames=len(chosen), fps=rate / stride,
        size=size, frame_indices=tuple(chosen), timestamps_s=tuple(times[k] for k in chosen),
        duration_s=len(chosen) * stride / rate, source_fps=rate,
        _reader=_JpegReader(names, size, cache_frames),
    )


def _open_arrays(frames: Sequence[Any], stride: int, start_s: float, end_s: float | None,
                 max_frames: int | None, limits: VideoLimits, fps: float | None) -> Video:
    if len(frames) == 0:
        raise VideoFormatError("The list of frames is empty; give at least one RGB frame.")
    first = np.asarray(frames[0])
    if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
        raise VideoFormatError(f"Frames must be RGB uint8 arrays of shape H x W x 3; frame 0 is "
                               f"{first.dtype} {first.shape}.")
    check_size(first.shape[0], first.shape[1], limits)
    rate = float(fps or DEFAULT_FPS)
    times = [k / rate for k in range(len(frames))]
    chosen = _select(times, stride, start_s, end_s, max_frames, limits, "The frames")
    for k in chosen:
        array = frames[k]
        if getattr(array, "shape", None) != first.shape or array.dtype != np.uint8:
            raise VideoFormatError(f"Frame {k} is {getattr(array, 'dtype', type(array))} "
                                   f"{getattr(array, 'shape', '')}; every frame must be uint8 "
                                   f"{first.shape} like frame 0.")
    return Video(
        source="<arrays>", kind="arrays", num_frames=len(chosen), fps=rate / stride,
        size=first.shape[:2], frame_indices=tuple(chosen),
        timestamps_s=tuple(times[k] for k in chosen), duration_s=len(chosen) * stride / rate,
        source_fps=rate, _reader=_ArrayReader(frames),
    )


class _ArrayReader:
    def __init__(self, frames: Sequence[np.ndarray]) -> None:
        self.frames = frames

    def read(self, index: int) -> np.ndarray:
        view = np.asarray(self.frames[index]).view()
        view.setflags(write=False)
        return view


class _CachedReader:
    """An LRU of decoded frames (by source index) behind a lock."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, int(capacity))
        self.cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.lock = threading.RLock()

    def _remember(self, index: int, frame: np.ndarray) -> None:
        frame.setflags(write=False)
        self.cache[index] = frame
        self.cache.move_to_end(index)
        while len(self.cache) > self.capacity:
            self.cache.popitem(last=False)

    def read(self, index: int) -> np.ndarray:
        with self.lock:
            if index in self.cache:
                self.cache.move_to_end(index)
                return self.cache[index]
            frame = self._decode(index)
            self._remember(index, frame)
            return frame

    def _decode(self, index: int) -> np.ndarray:
        raise NotImplementedError


class _JpegReader(_CachedReader):
    def __init__(self, paths: list[Path], size: tuple[int, int], capacity: int) -> None:
        super().__init__(capacity)
        self.paths, self.size = paths, size

    def _decode(self, index: int) -> np.ndarray:
        from PIL import Image

        try:
            with Image.open(self.paths[index]) as image:
                frame = np.array(image.convert("RGB"))
        except OSError as exc:
            raise VideoDecodeError(f"Frame file {self.paths[index].name} is corrupt ({exc}); "
                                   "replace it or drop it from the folder.") from None
        if frame.shape[:2] != self.size:
            raise VideoFormatError(f"{self.paths[index].name} changed size since the folder "
                                   "was opened; open the folder again.")
        return frame


class _FileReader(_CachedReader):
    """Seek + decode with PyAV; decodes forward when the next wanted frame is close."""

    def __init__(self, path: Path, probed: ProbeResult, quarter_turns: int,
                 capacity: int) -> None:
        super().__init__(capacity)
        self.path, self.probed, self.quarter_turns = path, probed, quarter_turns
        self.pts_to_index = {p: k for k, p in enumerate(probed.pts)}
        self.container: Any = None
        self.frames: Iterator[Any] | None = None
        self.position = -1  # source index of the last frame decoded

    def _open(self) -> None:
        import av

        self.container = av.open("file:" + str(self.path.resolve()), format=self.probed.demuxer,
                                 options=dict(OPEN_OPTIONS))
        stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"

    def _restart(self, index: int) -> None:
        if self.container is None:
            self._open()
        stream = self.container.streams.video[0]
        if index > 0 or self.frames is not None:
            self.container.seek(self.probed.pts[index], stream=stream, backward=True)
        self.frames = self.container.decode(stream)
        self.position = -1

    def _decode(self, index: int) -> np.ndarray:
        import av

        if self.frames is None or not (self.position < index <= self.position + _SEQUENTIAL_REACH):
            self._restart(index)
        try:
            for decoded in self.frames:
                source_index = self.pts_to_index.get(decoded.pts, self.position + 1)
                self.position = source_index
                if source_index < index:
                    continue
                frame = np.rot90(decoded.to_ndarray(format="rgb24"), self.quarter_turns)
                frame = np.ascontiguousarray(frame)
                if source_index == index:
                    return frame
                break  # overshot: the wanted frame is missing from the stream
        except av.error.FFmpegError as exc:
            self.frames = None
            raise VideoDecodeError(f"Frame {index} of {self.path.name} cannot be decoded ({exc}); "
                                   "the file is corrupt there. Re-export it or select another "
                                   "span.") from None
        self.frames = None
        raise VideoDecodeError(f"Frame {index} of {self.path.name} is missing or corrupt (the "
                               "stream ended or skipped it). Re-export the file.")

    def __del__(self) -> None:
        container = getattr(self, "container", None)
        if container is not None:
            try:
                container.close()
            except Exception:  # closing at interpreter exit may fail; nothing to do then
                pass
