"""Draw the example clip shown in the video view (synthetic, no footage from anywhere else).

    python assets/make_video_example.py     # rewrites assets/moving_shapes.mp4

Three seconds at 24 fps, 640 x 360: a red disc rolls left to right, a blue rounded square
bobs up and down, a yellow triangle drifts right to left and passes in front of the disc
(an occlusion for the tracker to survive). H.264 yuv420p with ``faststart``, written by
PyAV (about 100 KB), so every browser plays it and nothing needs an ``ffmpeg`` binary.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "moving_shapes.mp4"
WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 24, 3


def _background() -> np.ndarray:
    """A soft vertical gradient (compresses to almost nothing)."""
    t = np.linspace(0.0, 1.0, HEIGHT)[:, None, None]
    grad = (1 - t) * np.array((214, 226, 240), float) + t * np.array((150, 170, 150), float)
    return np.broadcast_to(grad, (HEIGHT, WIDTH, 3)).astype(np.uint8)


def draw_frame(index: int, background: np.ndarray | None = None) -> np.ndarray:
    """Frame ``index`` (0-based) as RGB uint8 H x W x 3."""
    t = index / (FPS * SECONDS)  # 0 .. 1 over the clip
    image = Image.fromarray(background if background is not None else _background())
    draw = ImageDraw.Draw(image)
    # red disc: left to right along the lower third
    cx, cy, r = 90 + 420 * t, 250, 52
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(220, 50, 60))
    # blue rounded square: bobbing in the upper middle
    sx, sy = 300, 110 + 45 * math.sin(2 * math.pi * t * 1.5)
    draw.rounded_rectangle((sx - 55, sy - 55, sx + 55, sy + 55), radius=16, fill=(40, 90, 210))
    # yellow triangle: right to left, in front of the disc near the end
    tx, ty = 560 - 260 * t, 240
    draw.polygon([(tx, ty - 70), (tx - 65, ty + 50), (tx + 65, ty + 50)], fill=(240, 200, 40))
    return np.asarray(image)


def write_clip(path: Path = OUTPUT, frames: int = FPS * SECONDS) -> Path:
    import av

    background = _background()
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS, 1))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "26", "preset": "medium", "threads": "1"}
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(draw_frame(index, background), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


if __name__ == "__main__":
    out = write_clip()
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB)")
