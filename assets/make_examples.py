"""Draw the example images shown in the segment view (synthetic scenes, no photos).

    python assets/make_examples.py          # rewrites assets/*.png deterministically

Each scene has a few clearly separated objects on a soft, lightly textured background, so
clicks and boxes give recognisable masks even with the GrabCut baseline. Small on purpose
(640 px wide, a few dozen KB each).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
SIZE = (640, 448)  # width, height


def _background(top: tuple[int, int, int], bottom: tuple[int, int, int], seed: int) -> Image.Image:
    """Vertical gradient with faint smooth noise (textured but compressible)."""
    width, height = SIZE
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    grad = (1 - t) * np.array(top, float) + t * np.array(bottom, float)
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (height // 16, width // 16, 1))
    noise = np.asarray(Image.fromarray(((noise + 3) * 40).clip(0, 255).astype(np.uint8)[:, :, 0])
                       .resize((width, height), Image.Resampling.BICUBIC), float)[:, :, None]
    image = grad + (noise - 120) * 0.12
    return Image.fromarray(np.broadcast_to(image, (height, width, 3)).clip(0, 255)
                           .astype(np.uint8))


def _shadow(base: Image.Image, box: tuple[int, int, int, int]) -> None:
    """A soft elliptic shadow under an object."""
    layer = Image.new("L", base.size, 0)
    ImageDraw.Draw(layer).ellipse(box, fill=90)
    layer = layer.filter(ImageFilter.GaussianBlur(8))
    base.paste(Image.new("RGB", base.size, (20, 20, 30)), mask=layer)


def shapes() -> Image.Image:
    image = _background((236, 232, 220), (196, 188, 170), seed=1)
    draw = ImageDraw.Draw(image)
    _shadow(image, (70, 330, 250, 370))
    draw.ellipse((80, 150, 240, 310), fill=(220, 60, 60), outline=(150, 30, 30), width=3)
    _shadow(image, (290, 330, 450, 370))
    draw.rounded_rectangle((300, 170, 440, 340), radius=18, fill=(50, 110, 200),
                           outline=(25, 60, 120), width=3)
    _shadow(image, (470, 335, 610, 370))
    draw.polygon([(540, 150), (610, 345), (470, 345)], fill=(245, 190, 40),
                 outline=(160, 110, 10))
    return image


def fruit() -> Image.Image:
    image = _background((250, 245, 235), (150, 110, 80), seed=2)
    draw = ImageDraw.Draw(image)
    _shadow(image, (110, 300, 530, 380))
    draw.ellipse((120, 250, 520, 360), fill=(235, 235, 240), outline=(170, 170, 180), width=3)
    for (cx, cy, r, color) in ((220, 250, 62, (230, 80, 40)), (330, 235, 70, (120, 180, 40)),
                               (430, 255, 55, (250, 170, 30))):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color,
                     outline=tuple(int(c * 0.6) for c in color), width=3)
        draw.ellipse((cx - r // 3, cy - r // 2, cx - r // 6, cy - r // 3), fill=(255, 255, 255))
    return image


def street() -> Image.Image:
    image = _background((150, 200, 245), (230, 240, 250), seed=3)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 320, SIZE[0], SIZE[1]), fill=(90, 92, 98))
    for x in range(20, SIZE[0], 90):
        draw.rectangle((x, 380, x + 45, 388), fill=(235, 235, 235))
    draw.rectangle((470, 120, 600, 320), fill=(180, 120, 90), outline=(120, 70, 50), width=3)
    for wy in (145, 205, 265):
        for wx in (490, 545):
            draw.rectangle((wx, wy, wx + 35, wy + 35), fill=(250, 230, 150))
    _shadow(image, (90, 330, 400, 365))
    draw.rounded_rectangle((100, 250, 390, 330), radius=22, fill=(200, 30, 50),
                           outline=(110, 10, 20), width=3)
    draw.polygon([(160, 250), (200, 195), (310, 195), (350, 250)], fill=(200, 30, 50),
                 outline=(110, 10, 20))
    draw.polygon([(180, 248), (208, 207), (250, 207), (250, 248)], fill=(170, 210, 240))
    draw.polygon([(262, 248), (262, 207), (302, 207), (332, 248)], fill=(170, 210, 240))
    for wx in (165, 325):
        draw.ellipse((wx - 32, 298, wx + 32, 362), fill=(30, 30, 30))
        draw.ellipse((wx - 14, 316, wx + 14, 344), fill=(160, 160, 160))
    return image


SCENES = {"shapes.png": shapes, "fruit.png": fruit, "street.png": street}


def main() -> None:
    for name, draw in SCENES.items():
        path = HERE / name
        draw().save(path, optimize=True)
        print(f"{path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
