"""Writing tracking results: rendered MP4 (e.g. an overlay), cut-out MP4, mask PNGs, COCO JSON.

``masks`` everywhere is a mapping ``frame index -> {object id: bool H x W}`` (a session's
``MaskTrack`` or a plain dict); frames missing from it are written without masks. Files are
written next to ``path`` under a temporary name and renamed when complete, so a failed export
leaves nothing behind.

Videos: H.264 (libx264), yuv420p, ``movflags=+faststart`` (playable while downloading), at the
video's fps (the average rate for a variable-rate source). yuv420p needs even sides: an odd
width or height is padded by one pixel repeating the edge. The overlay can carry the source's
first audio stream, copied without re-encoding (the span's packets only); when MP4 cannot hold
that codec (e.g. Vorbis from a WebM) the video is written without it and a warning is logged.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .coco import coco_video_document
from .errors import VideoError
from .probe import OPEN_OPTIONS
from .source import Video

LOG = logging.getLogger(__name__)
CHECKER = "checker"


@contextlib.contextmanager
def _atomic(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it to ``path`` on success, else delete."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        yield partial
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _even(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    return np.pad(frame, pad, mode="edge") if height % 2 or width % 2 else frame


def _rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


def cutout_frame(frame: np.ndarray, masks: Mapping[int, np.ndarray],
                 background: tuple[int, int, int] | str = CHECKER, square: int = 16) -> np.ndarray:
    """The masked pixels of ``frame`` on a solid colour or a grey chequerboard."""
    height, width = frame.shape[:2]
    if isinstance(background, str):
        if background != CHECKER:
            raise VideoError(f"background must be an (R, G, B) colour or {CHECKER!r}.")
        yy, xx = np.mgrid[0:height, 0:width]
        light = ((yy // square + xx // square) % 2).astype(bool)
        back = np.where(light[..., None], np.uint8(204), np.uint8(153)).repeat(3, axis=2)
    else:
        back = np.empty_like(frame)
        back[:] = np.asarray(background, dtype=np.uint8)
    keep = np.zeros((height, width), bool)
    for mask in masks.values():
        keep |= mask
    return np.where(keep[..., None], frame, back)


def write_rendered_mp4(video: Video, path: str | Path,
                       render: Callable[[int, np.ndarray], np.ndarray], *,
                       copy_audio: bool = True, crf: int = 20) -> Path:
    """The video with each frame replaced by ``render(index, frame)`` (RGB uint8, same size).

    How masks are drawn over a frame is the application's choice (its drawing spec:
    ``workbench.video.exports.write_overlay_mp4``); the engine only encodes.
    """
    return _write_mp4(video, path, render, copy_audio, crf)


def write_cutout_mp4(video: Video, masks: Mapping[int, Mapping[int, np.ndarray]],
                     path: str | Path, *, background: tuple[int, int, int] | str = CHECKER,
                     object_ids: Sequence[int] | None = None, crf: int = 20) -> Path:
    """Only the objects (``object_ids``, default all) on ``background`` (colour or "checker")."""
    def render(index: int, frame: np.ndarray) -> np.ndarray:
        found = masks[index] if index in masks else {}
        chosen = {k: v for k, v in found.items() if object_ids is None or k in object_ids}
        return cutout_frame(frame, chosen, background)

    return _write_mp4(video, path, render, False, crf)


def _write_mp4(video: Video, path: str | Path, render: Callable[[int, np.ndarray], np.ndarray],
               copy_audio: bool, crf: int) -> Path:
    import av

    path = Path(path)
    with _atomic(path) as partial:
        with av.open(str(partial), "w", format="mp4",
                     options={"movflags": "+faststart"}) as output:
            height, width = video.size
            stream = output.add_stream("libx264", rate=_rate(video.fps),
                                       options={"crf": str(crf), "preset": "veryfast"})
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            audio = _audio_source(video, output) if copy_audio else None
            for index in range(video.num_frames):
                picture = _even(render(index, video.frame(index)))
                frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
                frame.pts = index
                frame.time_base = Fraction(1) / _rate(video.fps)
                output.mux(stream.encode(frame))
            output.mux(stream.encode())
            if audio is not None:
                _copy_audio(video, output, *audio)
    return path


def _audio_source(video: Video, output: Any) -> tuple[Any, Any, Any] | None:
    """(input container, input stream, output stream) for the audio copy, or None."""
    if video.kind != "file" or video.audio_stream is None:
        return None
    import av

    source = av.open("file:" + str(Path(video.source).resolve()),
                     format=video._reader.probed.demuxer, options=dict(OPEN_OPTIONS))
    in_stream = source.streams[video.audio_stream]
    try:
        out_stream = output.add_stream_from_template(in_stream)
    except (ValueError, av.error.FFmpegError) as exc:
        LOG.warning("Audio (%s) cannot be copied into MP4 (%s); writing the video without it.",
                    in_stream.codec_context.name, exc)
        source.close()
        return None
    return source, in_stream, out_stream


def _copy_audio(video: Video, output: Any, source: Any, in_stream: Any, out_stream: Any) -> None:
    """Mux the audio packets of the span, shifted so the span starts at 0."""
    probed = video._reader.probed
    start = probed.pts[0] * probed.time_base + video.timestamps_s[0]
    end = start + video.num_frames / video.fps
    base = in_stream.time_base
    offset = int(round(start / base))
    with source:
        for packet in source.demux(in_stream):
            if packet.pts is None or packet.size == 0:
                continue
            if not start <= packet.pts * base < end:
                continue
            packet.pts -= offset
            if packet.dts is not None:
                packet.dts -= offset
            packet.stream = out_stream
            output.mux(packet)


def write_mask_zip(masks: Mapping[int, Mapping[int, np.ndarray]], path: str | Path) -> Path:
    """One PNG per object per frame (``frame_00012_object_3.png``, 0/255 greyscale)."""
    from PIL import Image

    path = Path(path)
    with _atomic(path) as partial, zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
        for index in sorted(masks):
            for object_id, mask in sorted(masks[index].items()):
                buffer = io.BytesIO()
                Image.fromarray(np.asarray(mask, bool).astype(np.uint8) * 255, "L").save(
                    buffer, format="PNG", optimize=False)
                archive.writestr(mask_png_name(index, object_id), buffer.getvalue())
    return path


def mask_png_name(frame_index: int, object_id: int) -> str:
    return f"frame_{frame_index:05d}_object_{object_id}.png"


def write_rle_json(video: Video, masks: Mapping[int, Mapping[int, np.ndarray]],
                   path: str | Path, object_names: Mapping[int, str] | None = None) -> Path:
    """The clip's masks as a standard COCO document (``coco.coco_video_document``: one image
    per processed frame, RLE segmentations, the object id as ``track_id``)."""
    path = Path(path)
    with _atomic(path) as partial:
        partial.write_text(json.dumps(coco_video_document(video, masks, object_names)),
                           encoding="utf-8")
    return path
