"""Paint the example photos shown in the segment view (procedural scenes, no media from elsewhere).

    python assets/make_examples.py          # rewrites assets/*.jpg deterministically

Three scenes at photo sizes, with what makes segmentation interesting: several distinct objects,
shading, texture, cast shadows and objects in front of others.

* ``table.jpg`` (1600 x 1067): fruit on a plate, two mugs and a lemon on a wooden table.
* ``street.jpg`` (1600 x 1067): three cars in front of shop fronts, one behind another.
* ``parking.jpg`` (1200 x 1600): a parking lot seen from above, cars in stalls, trees over one.

Everything comes from seeded numpy noise and OpenCV drawing (anti-aliased, sub-pixel), so the
same run gives the same pixels; files are JPEG quality 90, a few hundred KB each.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
QUALITY = 90
_SHIFT = 4  # OpenCV sub-pixel bits for polygon vertices
LIGHT = np.array([-0.45, -0.6, 0.66])  # from the upper left, towards the viewer
LIGHT = LIGHT / np.linalg.norm(LIGHT)


# --- building blocks ---------------------------------------------------------------------------

def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float) -> np.ndarray:
    """Smooth noise in about [-1, 1] with features ``cell`` pixels across (float32 H x W)."""
    grid = rng.uniform(-1, 1, (max(2, int(height / cell) + 2), max(2, int(width / cell) + 2)))
    return cv2.resize(grid.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)


def polygon_mask(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a polygon (N x 2, pixel coordinates)."""
    layer = np.zeros(shape, np.uint8)
    pts = np.round(np.asarray(points, float) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(layer, [pts], 255, cv2.LINE_AA, _SHIFT)
    return layer.astype(np.float32) / 255.0


def ellipse_points(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0,
                   start: float = 0.0, stop: float = 360.0, count: int = 180) -> np.ndarray:
    t = np.radians(np.linspace(start, stop, count))
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    x, y = rx * np.cos(t), ry * np.sin(t)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], 1)


def rounded_rect(x0: float, y0: float, x1: float, y1: float, r: float) -> np.ndarray:
    corners = ((x1 - r, y1 - r, 0), (x0 + r, y1 - r, 90), (x0 + r, y0 + r, 180),
               (x1 - r, y0 + r, 270))
    return np.concatenate([ellipse_points(cx, cy, r, r, 0, a, a + 90, 12) for cx, cy, a in corners])


def transform(points: np.ndarray, cx: float, cy: float, angle: float) -> np.ndarray:
    """Rotate local points (about 0, 0) by ``angle`` degrees and move them to (cx, cy)."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    p = np.asarray(points, float)
    return np.stack([cx + c * p[:, 0] - s * p[:, 1], cy + s * p[:, 0] + c * p[:, 1]], 1)


def paint(image: np.ndarray, alpha: np.ndarray, colour) -> None:
    """Alpha-composite ``colour`` (RGB triple or H x W x 3) onto ``image`` in place."""
    a = alpha[..., None]
    image *= 1.0 - a
    image += a * np.asarray(colour, np.float32)


def cast_shadow(image: np.ndarray, alpha: np.ndarray, dx: float, dy: float, blur: float,
                strength: float) -> None:
    """Darken ``image`` under a shifted, blurred copy of ``alpha``."""
    moved = cv2.warpAffine(alpha, np.float32([[1, 0, dx], [0, 1, dy]]), alpha.shape[::-1])
    soft = cv2.GaussianBlur(moved, (0, 0), blur)
    image *= (1.0 - strength * soft)[..., None]


def sphere_shading(shape, cx, cy, rx, ry, shine=40.0) -> tuple[np.ndarray, np.ndarray]:
    """Lambert diffuse and Blinn specular terms of an ellipsoid seen from the front."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    nx, ny = (cols - cx) / rx, (rows - cy) / ry
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))
    diffuse = np.clip(nx * LIGHT[0] + ny * LIGHT[1] + nz * LIGHT[2], 0.0, 1.0)
    half = LIGHT + np.array([0.0, 0.0, 1.0])
    half = half / np.linalg.norm(half)
    spec = np.clip(nx * half[0] + ny * half[1] + nz * half[2], 0.0, 1.0) ** shine
    return diffuse, spec


def shaded_ball(image, rng, cx, cy, rx, ry, colour, *, pores=0.0, shine=40.0, gloss=0.5,
                shadow=True) -> np.ndarray:
    """A fruit-like ellipsoid with diffuse shading, a highlight and surface texture (the work is
    done in a window around it and its shadow)."""
    x0, y0 = max(0, int(cx - 1.2 * rx)), max(0, int(cy - 1.2 * ry))
    x1 = min(image.shape[1], int(cx + 1.8 * rx) + 1)
    y1 = min(image.shape[0], int(cy + 1.7 * ry) + 1)
    image, cx, cy = image[y0:y1, x0:x1], cx - x0, cy - y0
    shape = image.shape[:2]
    alpha = polygon_mask(shape, ellipse_points(cx, cy, rx, ry))
    if shadow:
        cast_shadow(image, alpha * 0.9, 0.35 * rx, 0.25 * ry, 0.18 * rx, 0.55)
    diffuse, spec = sphere_shading(shape, cx, cy, rx, ry, shine)
    texture = 1.0 + pores * smooth_noise(rng, *shape, max(2.0, rx / 30))
    colour = np.asarray(colour, np.float32)
    shade = (0.28 + 0.85 * diffuse) * texture
    surface = colour * shade[..., None] + 255.0 * gloss * spec[..., None]
    paint(image, alpha, np.clip(surface, 0, 255))
    return x0, y0, alpha


def save(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8)).save(
        path, "JPEG", quality=QUALITY, optimize=True)


# --- table -------------------------------------------------------------------------------------

def table() -> np.ndarray:
    """Fruit on a white plate, a blue and a cream mug and a lemon, on a wooden table."""
    rng = np.random.default_rng(11)
    height, width = 1067, 1600
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    horizon = 360
    wall = np.array([214, 203, 186], np.float32) * (0.78 + 0.22 * (1 - rows / horizon))[..., None]
    wall *= (1 + 0.03 * smooth_noise(rng, height, width, 120))[..., None]
    depth = np.clip((rows - horizon) / (height - horizon), 0, 1)
    warp = 30 * smooth_noise(rng, height, width, 160)
    grain = np.sin((rows + warp) / (1.2 + 3.0 * depth) + 2 * smooth_noise(rng, height, width, 40))
    wood = np.array([142, 92, 55], np.float32) * (0.85 + 0.09 * grain + 0.05 *
                                                 smooth_noise(rng, height, width, 8))[..., None]
    plank = np.abs(np.sin(math.pi * (cols - width / 2) / (260 + 300 * depth[:, :1] + 1e-3)
                          * (0.55 + 0.45 * depth)))
    wood *= (0.72 + 0.28 * np.clip(plank * 12, 0, 1))[..., None]
    wood *= (0.75 + 0.3 * depth)[..., None]
    image = np.where((rows < horizon)[..., None], wall, wood).astype(np.float32)
    image[horizon - 4:horizon + 3] *= 0.55  # the table's back edge
    # The plate: a rim ellipse and a slightly darker well.
    plate = polygon_mask((height, width), ellipse_points(560, 760, 360, 150))
    cast_shadow(image, plate, 40, 30, 25, 0.45)
    porcelain = np.array([238, 238, 234], np.float32) * (0.88 + 0.12 * (1 - (cols - 200) / 720)
                                                          .clip(0, 1))[..., None]
    paint(image, plate, porcelain)
    paint(image, polygon_mask((height, width), ellipse_points(560, 768, 270, 105)) * 0.6,
          porcelain * 0.9)
    # Fruit: an orange behind a red apple, a second orange, grapes, a pear beside.
    shaded_ball(image, rng, 470, 660, 120, 116, (235, 120, 20), pores=0.06, shine=18, gloss=0.25)
    shaded_ball(image, rng, 700, 690, 112, 108, (238, 132, 24), pores=0.06, shine=18, gloss=0.25)
    ax, ay, apple = shaded_ball(image, rng, 560, 760, 118, 110, (175, 22, 30), pores=0.02,
                                shine=60, gloss=0.55)
    ah, aw = apple.shape
    streaks = 0.93 + 0.07 * np.sin(cols[:ah, :aw] / 5 + 1.5 * smooth_noise(rng, ah, aw, 30))
    image[ay:ay + ah, ax:ax + aw] *= (1 - apple * (1 - streaks))[..., None]
    stem = np.array([[552, 655], [560, 654], [575, 620], [568, 618]], float)
    paint(image, polygon_mask((height, width), stem), (70, 50, 30))
    for i, (gx, gy) in enumerate([(330, 770), (300, 740), (350, 735), (320, 805), (365, 795),
                                  (290, 785), (385, 765)]):
        shaded_ball(image, rng, gx, gy, 34, 36, (95, 40, 90), shine=70, gloss=0.5, shadow=i < 4)
    pear_alpha = np.maximum(polygon_mask((height, width), ellipse_points(1340, 830, 95, 100)),
                            polygon_mask((height, width), ellipse_points(1325, 715, 58, 72, -8)))
    pear_alpha = np.maximum(pear_alpha, polygon_mask((height, width), np.array(
        [[1288, 760], [1385, 760], [1370, 700], [1290, 705]], float)))
    cast_shadow(image, pear_alpha, 35, 22, 18, 0.5)
    diffuse, spec = sphere_shading((height, width), 1330, 790, 100, 150, 30)
    pear_colour = np.array([150, 175, 40], np.float32) * (0.3 + 0.8 * diffuse)[..., None]
    pear_colour *= (1 + 0.05 * smooth_noise(rng, height, width, 3))[..., None]
    paint(image, pear_alpha, np.clip(pear_colour + 90 * spec[..., None], 0, 255))
    paint(image, polygon_mask((height, width), np.array(
        [[1318, 648], [1326, 648], [1338, 610], [1331, 607]], float)), (80, 60, 30))
    # Mugs: shaded cylinders with a rim, a handle and coffee in the blue one.
    for (x0, x1, top, bottom, colour, coffee) in ((980, 1200, 440, 700, (40, 80, 170), True),
                                                  (1240, 1420, 400, 610, (225, 215, 190), False)):
        cx, rx = (x0 + x1) / 2, (x1 - x0) / 2
        ry = 0.22 * rx
        mid = (top + bottom) / 2
        handle = np.concatenate([ellipse_points(x1 - 5, mid, 62, 80, 0, -80, 80, 40),
                                 ellipse_points(x1 - 5, mid, 34, 52, 0, 80, -80, 40)])
        body = np.concatenate([[[x0, top]], ellipse_points(cx, bottom, rx, ry, 0, 180, 0, 60),
                               [[x1, top]]])
        body_alpha = np.maximum(polygon_mask((height, width), body),
                                polygon_mask((height, width), handle))
        cast_shadow(image, body_alpha, 55, 25, 22, 0.5)
        across = np.clip((cols - cx) / rx, -1, 1)
        shade = 0.35 + 0.75 * np.clip(np.sqrt(1 - across ** 2) * 0.8 - across * 0.45, 0, 1)
        glaze = np.asarray(colour, np.float32) * shade[..., None]
        glaze += 120 * np.exp(-((across + 0.45) / 0.08) ** 2)[..., None]
        paint(image, body_alpha, np.clip(glaze, 0, 255))
        paint(image, polygon_mask((height, width), ellipse_points(cx, top, rx, ry)),
              np.asarray(colour, np.float32) * 1.05)
        inner = polygon_mask((height, width), ellipse_points(cx, top + 3, rx - 12, ry - 6))
        paint(image, inner, (60, 35, 20) if coffee else np.asarray(colour, np.float32) * 0.55)
    shaded_ball(image, rng, 860, 900, 120, 78, (245, 210, 40), pores=0.08, shine=25, gloss=0.3)
    vignette = 1.0 - 0.25 * (((cols - width / 2) / width) ** 2
                             + ((rows - height / 2) / height) ** 2)
    image *= vignette[..., None]
    image += rng.normal(0, 2.0, image.shape).astype(np.float32)
    return image


# --- street ------------------------------------------------------------------------------------

def car_side(image, rng, x, ground, length, colour, facing=1) -> None:
    """A side view of a saloon car: body, cabin, windows, wheels, lights and a shadow."""
    h, w = image.shape[:2]
    s = length / 440.0
    tyre = 44 * s

    def pts(local):  # local coordinates: x along the car (0..440), y up from the ground
        p = np.asarray(local, float)
        px = x + (p[:, 0] if facing > 0 else 440 - p[:, 0]) * s
        return np.stack([px, ground - p[:, 1] * s], 1)

    body = pts([[6, 22], [0, 60], [8, 92], [110, 104], [150, 150], [185, 158], [300, 156],
                [345, 108], [430, 98], [440, 62], [434, 22]])
    alpha = polygon_mask((h, w), body)
    wheels = [(95, 44), (350, 44)]
    shadow = polygon_mask((h, w), ellipse_points(x + 220 * s, ground, 235 * s, 14 * s))
    image *= (1 - 0.75 * cv2.GaussianBlur(shadow, (0, 0), 6 * s))[..., None]
    rows = np.mgrid[0:h, 0:w][0].astype(np.float32)
    height_up = (ground - rows) / s
    profile = 0.55 + 0.35 * np.clip((height_up - 20) / 80, 0, 1)
    profile += 0.45 * np.exp(-((height_up - 92) / 6) ** 2)  # the shoulder line catches light
    profile -= 0.2 * np.clip((height_up - 104) / 40, 0, 1)
    paint_colour = np.asarray(colour, np.float32) * profile[..., None]
    paint_colour *= (1 + 0.015 * smooth_noise(rng, h, w, 4))[..., None]
    paint(image, alpha, np.clip(paint_colour, 0, 255))
    for window in ([[128, 104], [158, 146], [215, 150], [215, 104]],
                   [[225, 104], [225, 150], [292, 148], [330, 104]]):
        glass = polygon_mask((h, w), pts(window))
        sky = np.array([70, 90, 110], np.float32) * (0.6 + 0.5 * np.clip((height_up - 104) / 46,
                                                                         0, 1))[..., None]
        paint(image, glass, sky)
    paint(image, polygon_mask((h, w), pts([[219, 40], [221, 40], [221, 100], [219, 100]])),
          np.asarray(colour, np.float32) * 0.35)  # door seam
    paint(image, polygon_mask((h, w), pts([[426, 70], [440, 70], [438, 84], [428, 86]])),
          (250, 240, 200))
    paint(image, polygon_mask((h, w), pts([[0, 66], [10, 66], [10, 82], [2, 82]])), (190, 20, 20))
    for wx, wy in wheels:
        cx, cy = pts([[wx, wy]])[0]
        paint(image, polygon_mask((h, w), ellipse_points(cx, cy, tyre, tyre)), (24, 24, 26))
        rim = polygon_mask((h, w), ellipse_points(cx, cy, 0.6 * tyre, 0.6 * tyre))
        diffuse, spec = sphere_shading((h, w), cx, cy, 0.6 * tyre, 0.6 * tyre, 20)
        paint(image, rim, np.clip(np.array([150, 152, 158]) * (0.5 + 0.6 * diffuse)[..., None]
                                  + 80 * spec[..., None], 0, 255))
        for k in range(5):
            a = math.radians(72 * k + 10)
            spoke = np.array([[cx, cy], [cx + 0.55 * tyre * math.cos(a),
                                         cy + 0.55 * tyre * math.sin(a)]])
            layer = np.zeros((h, w), np.uint8)
            cv2.line(layer, tuple(np.round(spoke[0] * 16).astype(int)),
                     tuple(np.round(spoke[1] * 16).astype(int)), 255,
                     max(1, round(5 * s)), cv2.LINE_AA, 4)
            paint(image, layer.astype(np.float32) / 255 * 0.8, (70, 70, 75))


def street() -> np.ndarray:
    """Shop fronts, a pavement and a road with three parked cars, one partly hidden."""
    rng = np.random.default_rng(23)
    height, width = 1067, 1600
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    sky = np.array([150, 190, 230], np.float32) + (rows / 300)[..., None] * np.array([50, 30, 10])
    image[:] = sky + (12 * np.clip(smooth_noise(rng, height, width, 90), 0, 1))[..., None]
    kerb, road_top = 650, 690
    fronts = [(0, 420, 110, (176, 120, 96)), (420, 820, 60, (205, 196, 176)),
              (820, 1180, 140, (140, 150, 160)), (1180, 1600, 90, (190, 160, 110))]
    for x0, x1, top, colour in fronts:
        wall = np.asarray(colour, np.float32) * (0.9 + 0.06 * smooth_noise(rng, height, width, 6)
                                                 )[..., None]
        brick = (((rows // 14) % 2 == 0) | ((cols + 14 * ((rows // 14) % 2)) % 56 < 2))
        wall *= (1 - 0.06 * brick)[..., None]
        block = np.zeros((height, width), np.float32)
        block[top:kerb, x0:x1] = 1
        paint(image, block, wall)
        image[top:top + 10, x0:x1] *= 0.7
        for wy in range(top + 40, kerb - 200, 120):
            for wx in range(x0 + 40, x1 - 90, 110):
                glass = np.zeros((height, width), np.float32)
                glass[wy:wy + 80, wx:wx + 60] = 1
                reflection = np.array([60, 80, 100], np.float32) + \
                    (40 * ((cols - rows * 0.6) % 90 < 25))[..., None]
                paint(image, glass, reflection)
                image[wy + 80:wy + 86, wx - 4:wx + 64] *= 0.8
        shop = np.zeros((height, width), np.float32)
        shop[kerb - 170:kerb - 10, x0 + 30:x1 - 30] = 1
        paint(image, shop, np.array([40, 45, 55], np.float32) + (50 * (rows > kerb - 60))
              [..., None])
        awning = polygon_mask((height, width), np.array(
            [[x0 + 20, kerb - 200], [x1 - 20, kerb - 200], [x1 - 5, kerb - 160],
             [x0 + 5, kerb - 160]]))
        stripes = np.where(((cols - x0) // 40) % 2 == 0, 1.0, 0.75)[..., None]
        paint(image, awning, np.array([170, 40, 40] if x0 % 840 == 0 else [40, 110, 80],
                                      np.float32) * stripes)
    pavement = np.array([170, 168, 160], np.float32) * (0.93 + 0.05 * smooth_noise(
        rng, height, width, 3))[..., None]
    pavement *= (1 - 0.15 * ((cols + rows * 2.2) % 120 < 3))[..., None]
    image[kerb:road_top] = pavement[kerb:road_top]
    image[road_top - 8:road_top] *= 0.75
    depth = (rows - road_top) / (height - road_top)
    asphalt = np.array([82, 84, 88], np.float32) * (0.9 + 0.08 * smooth_noise(
        rng, height, width, 2) + 0.05 * smooth_noise(rng, height, width, 60))[..., None]
    image[road_top:] = asphalt[road_top:]
    lane_y = 960
    for x0 in range(-40, width, 260):
        dash = polygon_mask((height, width), np.array(
            [[x0, lane_y - 6], [x0 + 140, lane_y - 6], [x0 + 146, lane_y + 8],
             [x0 - 6, lane_y + 8]]))
        paint(image, dash * 0.9, (225, 225, 215))
    image *= (0.92 + 0.12 * depth.clip(0, 1))[..., None]
    # A lamp post on the pavement, then the cars: the blue one behind the red one.
    post = np.zeros((height, width), np.float32)
    post[250:kerb + 20, 1496:1510] = 1
    cast_shadow(image, post, 30, 0, 6, 0.3)
    paint(image, post, np.array([40, 44, 40], np.float32) * (0.8 + 0.4 * ((cols - 1496) / 14)
                                                           .clip(0, 1))[..., None])
    car_side(image, rng, 1030, 790, 520, (30, 70, 150), facing=-1)
    car_side(image, rng, 200, 880, 640, (190, 20, 32))
    car_side(image, rng, 720, 905, 600, (225, 225, 222), facing=-1)
    image += rng.normal(0, 2.0, image.shape).astype(np.float32)
    return image


# --- parking lot -------------------------------------------------------------------------------

def car_top(image, rng, cx, cy, angle, colour, length=330.0) -> None:
    """A car seen from above: body, roof, windscreens, mirrors, shading and a cast shadow."""
    h, w = image.shape[:2]
    half_l, half_w = length / 2, length * 0.22
    body = transform(rounded_rect(-half_l, -half_w, half_l, half_w, half_w * 0.55), cx, cy, angle)
    alpha = polygon_mask((h, w), body)
    cast_shadow(image, alpha, 22, 28, 10, 0.6)
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    across = (-(cols - cx) * s + (rows - cy) * c) / half_w  # -1..1 over the width
    along = ((cols - cx) * c + (rows - cy) * s) / half_l
    bulge = np.sqrt(np.clip(1 - across ** 2, 0, 1))
    shade = 0.5 + 0.5 * bulge - 0.12 * across
    body_colour = np.asarray(colour, np.float32) * shade[..., None]
    body_colour += (60 * np.exp(-((across + 0.35) / 0.12) ** 2))[..., None]
    paint(image, alpha, np.clip(body_colour, 0, 255))
    for x0, x1, tint in ((-0.05, 0.35, 1.0), (-0.5, -0.3, 0.85)):
        glass = transform(np.array([[x0 * half_l, -0.72 * half_w], [x1 * half_l, -0.82 * half_w],
                                    [x1 * half_l, 0.82 * half_w], [x0 * half_l, 0.72 * half_w]]),
                          cx, cy, angle)
        g = polygon_mask((h, w), glass)
        reflection = np.array([40, 50, 60], np.float32) * tint + \
            (50 * np.clip(1 - np.abs(across + along) * 2, 0, 1))[..., None]
        paint(image, g, reflection)
    roof = transform(rounded_rect(-0.3 * half_l, -0.7 * half_w, -0.05 * half_l, 0.7 * half_w, 12),
                     cx, cy, angle)
    paint(image, polygon_mask((h, w), roof),
          np.clip(np.asarray(colour, np.float32) * (0.75 + 0.45 * bulge)[..., None], 0, 255))
    for side in (-1, 1):
        mirror = transform(rounded_rect(0.3 * half_l, side * half_w - 10, 0.38 * half_l,
                                        side * half_w + 10, 4), cx, cy, angle)
        paint(image, polygon_mask((h, w), mirror), np.asarray(colour, np.float32) * 0.7)
        for end, light in ((0.97, (250, 245, 220)), (-0.98, (200, 20, 20))):
            lamp = transform(np.array(ellipse_points(end * half_l, side * 0.62 * half_w, 6, 14)),
                             cx, cy, angle)
            paint(image, polygon_mask((h, w), lamp), light)


def tree_top(image, rng, cx, cy, radius) -> None:
    """A tree canopy from above: lumpy outline, leafy texture, a long soft shadow."""
    h, w = image.shape[:2]
    t = np.linspace(0, 2 * math.pi, 200, endpoint=False)
    lumps = 1 + 0.09 * np.sin(7 * t + 1.3) + 0.06 * np.sin(13 * t) + 0.04 * np.sin(23 * t + 2)
    outline = np.stack([cx + radius * lumps * np.cos(t), cy + radius * lumps * np.sin(t)], 1)
    alpha = polygon_mask((h, w), outline)
    cast_shadow(image, alpha, 0.35 * radius, 0.45 * radius, 0.12 * radius, 0.6)
    diffuse, _ = sphere_shading((h, w), cx, cy, radius * 1.1, radius * 1.1)
    leaves = 0.75 + 0.25 * smooth_noise(rng, h, w, 5) + 0.15 * smooth_noise(rng, h, w, 16)
    colour = np.array([62, 110, 45], np.float32) * ((0.35 + 0.8 * diffuse) * leaves)[..., None]
    paint(image, alpha, np.clip(colour, 0, 255))


def parking() -> np.ndarray:
    """Two rows of stalls either side of a lane; seven cars, one leaving, two trees."""
    rng = np.random.default_rng(37)
    height, width = 1600, 1200
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    asphalt = 0.88 + 0.07 * smooth_noise(rng, height, width, 2) + \
        0.06 * smooth_noise(rng, height, width, 80)
    image = (np.array([96, 97, 100], np.float32) * asphalt[..., None]).astype(np.float32)
    for _ in range(6):  # oil stains
        x, y = rng.uniform(100, width - 100), rng.uniform(100, height - 100)
        rx, ry, turn = rng.uniform(20, 45), rng.uniform(12, 30), rng.uniform(0, 180)
        stain = polygon_mask((height, width), ellipse_points(x, y, rx, ry, turn))
        image *= (1 - 0.25 * cv2.GaussianBlur(stain, (0, 0), 8))[..., None]
    stall_w, depth = 200, 400
    left, right = 60, width - 60 - depth
    for y in range(80, height - 100 + 1, stall_w):
        for x0 in (left, right):
            line = np.zeros((height, width), np.float32)
            line[y - 4:y + 4, x0:x0 + depth] = 1
            paint(image, line * 0.92, (236, 234, 220))
    for x0 in (left + depth, right):
        line = np.zeros((height, width), np.float32)
        line[80:height - 120, x0 - 4:x0 + 4] = 1
        paint(image, line * 0.92, (236, 234, 220))
    arrow = np.array([[600, 1200], [640, 1120], [615, 1120], [615, 1000], [585, 1000],
                      [585, 1120], [560, 1120]], float)
    paint(image, polygon_mask((height, width), arrow) * 0.85, (232, 230, 215))
    # Island with two trees at the bottom left, kerbed.
    island = polygon_mask((height, width), rounded_rect(40, 1340, 420, 1560, 40))
    paint(image, island, (150, 150, 140))
    grass = np.array([70, 110, 50], np.float32) * (0.85 + 0.15 * smooth_noise(
        rng, height, width, 3))[..., None]
    paint(image, polygon_mask((height, width), rounded_rect(56, 1356, 404, 1544, 30)), grass)
    cars = [(left + depth / 2, 180, 0, (180, 25, 30)), (left + depth / 2, 380, 180, (30, 60, 140)),
            (left + depth / 2, 780, 0, (225, 225, 225)), (right + depth / 2, 380, 0, (20, 20, 24)),
            (right + depth / 2, 580, 180, (230, 190, 40)), (right + depth / 2, 980, 2, (120, 130,
                                                                                     140)),
            (left + depth / 2 + 10, 1180, 8, (60, 130, 90)), (610, 640, 72, (200, 200, 205))]
    for cx, cy, angle, colour in cars:
        car_top(image, rng, cx, cy, angle, colour)
    tree_top(image, rng, 170, 1380, 150)
    tree_top(image, rng, 1060, 1120, 130)
    image *= (1 - 0.12 * ((cols / width - 0.5) ** 2 + (rows / height - 0.5) ** 2))[..., None]
    image += rng.normal(0, 2.0, image.shape).astype(np.float32)
    return image


SCENES = {"table.jpg": table, "street.jpg": street, "parking.jpg": parking}


def main() -> None:
    for name, draw in SCENES.items():
        path = HERE / name
        save(draw(), path)
        print(f"{path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
