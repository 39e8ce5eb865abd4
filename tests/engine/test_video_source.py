"""open_video: sources, selection, limits and every kind of bad file (made here, tiny)."""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from sam_backends import SamBackendError
from sam_backends.video import (
    VideoDecodeError,
    VideoError,
    VideoFormatError,
    VideoLimitError,
    VideoLimits,
    open_video,
)
from sam_backends.video.source import frame_rate


def clip_frames(count: int, height: int = 48, width: int = 64) -> list[np.ndarray]:
    """Frames whose red channel encodes the frame number (20 * i) and a moving square."""
    frames = []
    for i in range(count):
        image = np.zeros((height, width, 3), np.uint8)
        image[..., 0] = min(20 * i, 255)
        image[4:12, 2 + 2 * i: 10 + 2 * i, 1] = 255
        frames.append(image)
    return frames


def write_clip(path: Path, count: int = 8, height: int = 48, width: int = 64, rate: int = 10,
               codec: str = "libx264", pix_fmt: str = "yuv420p", rotation: float | None = None,
               audio: bool = False, times: list[float] | None = None) -> Path:
    """A small synthetic clip written with PyAV (optionally rotated, with audio, or VFR)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=16000)
            sound.layout = "mono"
        for i, image in enumerate(clip_frames(count, height, width)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if times is not None:
                frame.pts = int(round(times[i] * 1000))
                frame.time_base = Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if sound is not None:
            samples = int(16000 * count / rate)
            wave = (0.1 * np.sin(np.arange(samples) / 10.0)).astype(np.float32)[None]
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(wave[:, start:start + 1024], format="fltp",
                                                   layout="mono")
                chunk.sample_rate = 16000
                chunk.pts = start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode())
    return path


def red(frame: np.ndarray) -> int:
    return int(round(float(frame[20:, :, 0].mean()) / 20))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


def test_mp4_metadata_and_lazy_frames(clip):
    video = open_video(clip)
    assert (video.num_frames, video.fps, video.size) == (8, 10.0, (48, 64))
    assert video.frame_indices == tuple(range(8)) and video.kind == "file"
    assert math.isclose(video.duration_s, 0.8) and not video.variable_frame_rate
    frame = video.frame(3)
    assert frame.dtype == np.uint8 and frame.shape == (48, 64, 3) and not frame.flags.writeable
    assert [red(f) for f in video] == list(range(8))
    assert [red(video.frame(i)) for i in (6, 1, 7, 0)] == [6, 1, 7, 0]  # seeks both ways
    assert len(video._reader.cache) <= video._reader.capacity
    with pytest.raises(IndexError):
        video.frame(8)


def test_stride_span_and_max_frames(clip):
    video = open_video(clip, stride=2, start_s=0.1, end_s=0.7)
    assert video.frame_indices == (1, 3, 5) and video.fps == 5.0
    assert [red(f) for f in video] == [1, 3, 5]
    assert open_video(clip, max_frames=3).frame_indices == (0, 1, 2)


@pytest.mark.parametrize("suffix,codec", [(".webm", "libvpx-vp9"), (".mkv", "libx264"),
                                          (".mov", "libx264")])
def test_other_containers(tmp_path, suffix, codec):
    video = open_video(write_clip(tmp_path / f"c{suffix}", count=4, codec=codec))
    assert video.num_frames == 4 and [red(f) for f in video] == [0, 1, 2, 3]


def test_rotation_metadata_is_applied(tmp_path):
    video = open_video(write_clip(tmp_path / "r.mp4", count=2, rotation=90))
    assert video.rotation in (90, 270) and video.size == (64, 48)
    assert video.frame(0).shape == (64, 48, 3)


def test_odd_size_and_one_frame(tmp_path):
    video = open_video(write_clip(tmp_path / "odd.mp4", count=1, height=47, width=65,
                                  pix_fmt="yuv444p"))
    assert video.num_frames == 1 and video.size == (47, 65) and video.fps > 0


def test_one_pixel_wide_is_refused(tmp_path):
    path = write_clip(tmp_path / "thin.mp4", count=2, height=64, width=1, pix_fmt="yuv444p")
    with pytest.raises(VideoLimitError, match="at least 8x8"):
        open_video(path)


def test_jpeg_folder_and_arrays(tmp_path):
    for i, image in enumerate(clip_frames(5)):
        Image.fromarray(image).save(tmp_path / f"{i:05d}.jpg", quality=98)
    video = open_video(tmp_path, fps=25, stride=2)
    assert video.kind == "jpeg_folder" and video.frame_indices == (0, 2, 4)
    assert video.fps == 12.5 and [red(f) for f in video] == [0, 2, 4]
    arrays = open_video(clip_frames(3))
    assert arrays.num_frames == 3 and red(arrays.frame(2)) == 2
    (tmp_path / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    with pytest.raises(VideoFormatError, match="named by their number"):
        open_video(tmp_path)


def test_limits_are_checked_from_the_header(tmp_path):
    path = write_clip(tmp_path / "big.mp4", count=4, height=96, width=128)
    with pytest.raises(VideoLimitError, match="pixels"):
        open_video(path, limits=VideoLimits(max_pixels=96 * 127))
    with pytest.raises(VideoLimitError, match="frames"):
        open_video(path, limits=VideoLimits(max_frames=3))
    assert open_video(path, limits=VideoLimits(max_frames=3), max_frames=3).num_frames == 3
    with pytest.raises(VideoLimitError, match="lasts"):
        open_video(path, limits=VideoLimits(max_duration_s=0.2))
    assert open_video(path, limits=VideoLimits(max_duration_s=0.2), max_frames=1).num_frames == 1
    with pytest.raises(VideoLimitError, match="MiB"):
        open_video(path, limits=VideoLimits(max_file_bytes=100))


def test_4k_ten_minutes_refused_before_decoding(tmp_path):
    """A real 4K file (two frames): refused by its header's size, and by its header's duration
    when pixels are allowed (a ten-minute file is refused the same way, just slower to make)."""
    path = write_clip(tmp_path / "4k.mp4", count=2, height=2160, width=3840, rate=1)
    with pytest.raises(VideoLimitError, match="3840x2160"):
        open_video(path)
    with pytest.raises(VideoLimitError, match="lasts"):
        open_video(path, limits=VideoLimits(max_pixels=10**8, max_duration_s=1.0))


def test_many_streams_refused(tmp_path):
    path = tmp_path / "streams.mkv"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for _ in range(12):
            container.add_stream("aac", rate=8000)
        for image in clip_frames(2):
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
    with pytest.raises(VideoLimitError, match="13 streams"):
        open_video(path)


@pytest.mark.parametrize("name,content,match", [
    ("empty.mp4", b"", "empty"),
    ("list.m3u8", b"#EXTM3U\n#EXTINF:1,\nhttp://example.com/a.ts\n", "HLS"),
    ("playlist.mp4", b"#EXTM3U\n#EXTINF:1,\nother.mp4\n", "HLS"),
    ("list.mp4", b"ffconcat version 1.0\nfile 'other.mp4'\n", "ffconcat"),
    ("clip.avi", b"RIFF\x00\x00\x00\x00AVI LIST", "only MP4"),
    ("fake.mp4", b"this is not a video at all, only text" * 4, "does not start like"),
])
def test_refused_before_opening(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(VideoFormatError, match=match) as info:
        open_video(path)
    assert isinstance(info.value, SamBackendError) and isinstance(info.value, VideoError)


def test_truncated_moov(tmp_path, clip):
    data = clip.read_bytes()
    moov = data.find(b"moov")
    assert moov > 0
    for cut in (moov + 40, len(data) // 2):
        path = tmp_path / f"cut{cut}.mp4"
        path.write_bytes(data[:cut] if moov > len(data) // 2 else data[moov - 4:moov + 40])
        with pytest.raises((VideoFormatError, VideoDecodeError), match="Upload|upload|Re-export"):
            open_video(path)


def test_no_video_stream(tmp_path):
    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w") as container:
        sound = container.add_stream("aac", rate=8000)
        sound.layout = "mono"
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        chunk.sample_rate, chunk.pts = 8000, 0
        container.mux(sound.encode(chunk))
        container.mux(sound.encode())
    with pytest.raises(VideoFormatError, match="no video stream"):
        open_video(path)


def test_corrupt_frames_give_a_typed_error_or_frames(tmp_path):
    data = bytearray(write_clip(tmp_path / "ok.mp4", count=8, codec="mjpeg",
                                pix_fmt="yuvj420p").read_bytes())
    mdat = data.find(b"mdat")
    rng = np.random.default_rng(0)
    data[mdat + 8: mdat + 3000] = rng.integers(0, 256, size=2992, dtype=np.uint8).tobytes()
    path = tmp_path / "bad.mp4"
    path.write_bytes(bytes(data))
    try:
        video = open_video(path)
        for frame in video:
            assert frame.shape == (48, 64, 3)
    except VideoError as exc:  # never a raw av/ffmpeg exception
        assert str(exc)


def test_variable_frame_rate(tmp_path):
    times = [0.0, 0.1, 0.2, 0.5, 0.6, 1.2]
    path = write_clip(tmp_path / "vfr.mkv", count=6, times=times)
    video = open_video(path)
    assert video.variable_frame_rate and video.num_frames == 6
    np.testing.assert_allclose(video.timestamps_s, times, atol=2e-3)
    assert math.isclose(video.fps, 5 / 1.2, rel_tol=0.01)


@pytest.mark.parametrize("header", [0.0, math.nan])
def test_frame_rate_zero_or_nan(header):
    assert frame_rate(header, [0.0, 0.04, 0.08], "x") == (pytest.approx(25.0), False)
    assert frame_rate(header, [0.0], "x")[0] > 0  # one frame: any rate will do
    with pytest.raises(VideoFormatError, match="frame rate is 0 or not a number"):
        frame_rate(header, [0.0, 0.0, 0.0], "x")


def test_bad_arguments(clip):
    for kwargs in ({"stride": 0}, {"start_s": -1}, {"end_s": 0.0}, {"max_frames": 0}):
        with pytest.raises(VideoError):
            open_video(clip, **kwargs)
    with pytest.raises(VideoError, match="no frame between"):
        open_video(clip, start_s=5.0)


def test_probe_crash_is_contained(tmp_path, clip, monkeypatch):
    """A child that dies (as on a decoder crash) gives a typed error, not a dead server."""
    monkeypatch.setenv("PYTHONSTARTUP", "")
    monkeypatch.setattr("sys.executable", str(tmp_path / "crash.sh"))
    script = tmp_path / "crash.sh"
    script.write_text("#!/bin/sh\nkill -SEGV $$\n")
    os.chmod(script, 0o755)
    with pytest.raises(VideoDecodeError, match="decoder failed"):
        open_video(clip)


def test_no_temp_files_left(tmp_path, clip):
    before = set(os.listdir(tmp_path))
    open_video(clip)
    assert set(os.listdir(tmp_path)) == before
