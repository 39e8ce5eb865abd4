"""Reading a video file's header in a child process, so a decoder crash cannot take us down.

``probe_file(path, ...)`` sniffs the first bytes (the extension alone proves nothing), then runs
``python -m sam_backends.video.probe`` with a timeout. The child opens the file with the one
allowed demuxer (``mov`` for MP4/MOV/M4V, ``matroska`` for WebM/MKV), only the ``file``
protocol and no external references (``enable_drefs=0``), checks the limits on the header,
demuxes the video packets of the selected span (no decoding) for exact timestamps, and decodes
one frame to prove the stream is decodable and to read the rotation. It answers one JSON line.

HLS playlists, ffconcat lists, SDP files, images and anything else are refused in the parent,
before the child even starts.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import VideoDecodeError, VideoError, VideoFormatError, VideoLimitError
from .limits import VideoLimits, check_file_bytes, check_frames, check_size, check_span

ALLOWED_EXTENSIONS = {".mp4": "mov", ".mov": "mov", ".m4v": "mov", ".webm": "matroska",
                      ".mkv": "matroska"}
_MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
# What ffmpeg is allowed to do while reading: local files only, no referenced files.
OPEN_OPTIONS = {"protocol_whitelist": "file", "enable_drefs": "0", "use_absolute_path": "0"}
_KINDS = {"format": VideoFormatError, "limit": VideoLimitError, "decode": VideoDecodeError}


@dataclass(frozen=True)
class ProbeResult:
    """Header facts about one video stream (presentation order).

    ``pts``: every frame's timestamp in ``time_base`` units up to the end of the span (sorted);
    ``coded_size``: (H, W) as stored; ``rotation``: degrees counter-clockwise to display it.
    """

    demuxer: str
    coded_size: tuple[int, int]
    rotation: int
    header_fps: float
    time_base: float
    pts: tuple[int, ...]
    stream_index: int
    audio_index: int | None
    codec: str


def sniff_demuxer(path: Path) -> str:
    """The demuxer for ``path`` from its extension and first bytes, or a ``VideoFormatError``."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    name = path.name
    if head.lstrip().startswith(b"#EXTM3U"):
        raise VideoFormatError(f"{name} is an HLS playlist (.m3u8), which refers to other files "
                               "or URLs; upload the video file itself (MP4, MOV, WebM or MKV).")
    if head.lstrip().lower().startswith(b"ffconcat"):
        raise VideoFormatError(f"{name} is an ffconcat list that refers to other files; upload "
                               "one video file (MP4, MOV, WebM or MKV).")
    extension = path.suffix.lower()
    if extension not in ALLOWED_EXTENSIONS:
        raise VideoFormatError(
            f"{name}: only MP4, MOV, M4V, WebM and MKV files or a folder of numbered JPEG frames "
            "can be opened. Convert it first, e.g. ffmpeg -i in.avi -c:v libx264 out.mp4."
        )
    if head[4:8] in _MP4_BOXES:
        return "mov"
    if head.startswith(_EBML_MAGIC):
        return "matroska"
    raise VideoFormatError(
        f"{name} does not start like an MP4/MOV or WebM/MKV file (it is another format or "
        "damaged despite its extension). Re-export it as MP4."
    )


def probe_file(
    path: Path, limits: VideoLimits, start_s: float, end_s: float | None, stride: int,
    max_frames: int | None = None,
) -> ProbeResult:
    """Check ``path`` against ``limits`` and read its header in a child process.

    Raises:
        VideoFormatError, VideoLimitError, VideoDecodeError: with a message for the user.
    """
    size = path.stat().st_size
    if size == 0:
        raise VideoFormatError(f"{path.name} is empty (0 bytes); the upload probably failed.")
    check_file_bytes(size, limits)
    demuxer = sniff_demuxer(path)
    request = {"path": str(path.resolve()), "demuxer": demuxer, "limits": limits.as_dict(),
               "start_s": start_s, "end_s": end_s, "stride": stride,
               "max_frames": max_frames}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sam_backends.video.probe"], input=json.dumps(request),
            capture_output=True, text=True, timeout=limits.probe_timeout_s, env=env,
        )
    except subprocess.TimeoutExpired:
        raise VideoDecodeError(
            f"Reading the header of {path.name} took more than {limits.probe_timeout_s:g} s; "
            "the file is probably damaged. Re-export it as MP4."
        ) from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise VideoDecodeError(
            f"The decoder failed on {path.name} (exit status {done.returncode}); the file is "
            "damaged or uses an unsupported codec. Re-export it as MP4 (H.264)."
        )
    answer = json.loads(lines[-1])
    if "error" in answer:
        raise _KINDS.get(answer["error"], VideoError)(answer["message"])
    answer["coded_size"] = tuple(answer["coded_size"])
    answer["pts"] = tuple(answer["pts"])
    return ProbeResult(**answer)


# ---- the child side -----------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _rate(value: Any) -> float:
    try:
        rate = float(value) if value is not None else math.nan
    except (TypeError, ZeroDivisionError, ValueError):
        rate = math.nan
    return rate if math.isfinite(rate) and rate > 0 else math.nan


def _probe(request: dict) -> dict:
    import av

    limits = VideoLimits(**request["limits"])
    name = Path(request["path"]).name
    try:
        container = av.open("file:" + request["path"], format=request["demuxer"],
                            options=dict(OPEN_OPTIONS))
    except av.error.FFmpegError as exc:
        what = "MP4/MOV" if request["demuxer"] == "mov" else "WebM/MKV"
        raise _Refused("format", (
            f"{name} is not a complete {what} file ({exc.strerror or exc}): its header (for MP4 "
            "the 'moov' index) is missing, truncated or damaged, so its frames cannot be "
            "located. Re-export or upload the file again; an interrupted upload often causes "
            "this.")) from None
    with container:
        if len(container.streams) > limits.max_streams:
            raise _Refused("limit", f"{name} has {len(container.streams)} streams, more than the "
                           f"limit of {limits.max_streams}; keep one video (and one audio) stream.")
        videos = list(container.streams.video)
        if not videos:
            raise _Refused("format", f"{name} has no video stream (audio or data only); "
                           "upload a video.")
        stream = videos[0]
        context = stream.codec_context
        height, width = int(context.height or 0), int(context.width or 0)
        try:
            check_size(height, width, limits)
        except VideoLimitError as exc:
            raise _Refused("limit", f"{name}: {exc}") from None
        time_base = float(stream.time_base) if stream.time_base else math.nan
        header_fps = _rate(stream.average_rate)
        if math.isnan(header_fps):
            header_fps = _rate(stream.guessed_rate)
        duration = math.nan
        if stream.duration and math.isfinite(time_base):
            duration = stream.duration * time_base
        elif container.duration:
            duration = container.duration / 1e6
        start_s, end_s = request["start_s"], request["end_s"]
        span = (min(end_s, duration) if end_s is not None else duration) - start_s
        if request.get("max_frames") and not math.isnan(header_fps):  # only that many are read
            span = min(span, request["max_frames"] * request["stride"] / header_fps)
        try:
            check_span(span, limits)
            if math.isfinite(span) and not math.isnan(header_fps):
                estimate = math.ceil(span * header_fps / request["stride"] - 0.5)
                estimate = min(estimate, request.get("max_frames") or estimate)
                check_frames(estimate, limits, request["stride"])
        except VideoLimitError as exc:
            raise _Refused("limit", f"{name}: {exc} (from the file's header)") from None
        if not math.isfinite(time_base):
            raise _Refused("format", f"{name}: its video stream has no time base; re-encode it.")
        pts = _demux_pts(container, stream, name, time_base, end_s)
        rotation = _first_frame_rotation(av, request["path"], request["demuxer"], name)
        audio = list(container.streams.audio)
        return {
            "demuxer": request["demuxer"], "coded_size": [height, width], "rotation": rotation,
            "header_fps": header_fps, "time_base": time_base, "pts": pts,
            "stream_index": stream.index, "audio_index": audio[0].index if audio else None,
            "codec": context.name,
        }


def _demux_pts(container: Any, stream: Any, name: str, time_base: float,
               end_s: float | None) -> list[int]:
    """Presentation timestamps of the video packets up to ``end_s`` (sorted, unique)."""
    import av

    stamps: list[int] = []
    first = None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the flush packet
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:
                raise _Refused("format", f"{name}: its frames have no timestamps; re-encode it, "
                               "e.g. ffmpeg -i in.mp4 -c:v libx264 out.mp4.")
            first = stamp if first is None else min(first, stamp)
            stamps.append(stamp)
            # B-frames arrive out of order: read a second past the end before stopping.
            if end_s is not None and packet.dts is not None and \
                    (packet.dts - first) * time_base > end_s + 1.0:
                break
    except av.error.FFmpegError as exc:
        if not stamps:
            raise _Refused("decode", f"{name}: its video data cannot be read ({exc}); the file "
                           "is truncated or damaged. Upload it again.") from None
    if not stamps:
        raise _Refused("decode", f"{name} has a video stream without any frame; the file is "
                       "empty or truncated. Upload it again.")
    return sorted(set(stamps))


def _first_frame_rotation(av: Any, path: str, demuxer: str, name: str) -> int:
    """Decode the first frame (it must decode) and return its display rotation in degrees."""
    try:
        with av.open("file:" + path, format=demuxer, options=dict(OPEN_OPTIONS)) as container:
            for frame in container.decode(video=0):
                rotation = int(round(getattr(frame, "rotation", 0) or 0))
                return rotation % 360
    except av.error.FFmpegError as exc:
        raise _Refused("decode", f"{name}: its first frame cannot be decoded ({exc}); the file "
                       "is corrupt or uses an unsupported codec. Re-export it as MP4 (H.264)."
                       ) from None
    raise _Refused("decode", f"{name}: no frame could be decoded; the file is corrupt or "
                   "truncated. Upload it again.")


def main() -> int:
    request = json.loads(sys.stdin.read())
    try:
        answer = _probe(request)
    except _Refused as exc:
        answer = {"error": exc.kind, "message": str(exc)}
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
