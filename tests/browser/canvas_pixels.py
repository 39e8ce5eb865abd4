"""What a view's browser canvas shows, read from its pixels (shared by the browser tests).

``drawn_colours`` reads the mask layer (``canvas.pcl-masks``, the masks without the image) and
returns its most frequent RGBA values: a mask's fill is its colour at the spec's fill opacity,
its outline the same colour opaque (``workbench.drawing``).
"""

from __future__ import annotations

from typing import Any

DRAWN = """sel => { const c = document.querySelector(sel + ' canvas.pcl-masks');
  if (!c || !c.width) return [];
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const counts = new Map();
  for (let i = 0; i < d.length; i += 4) {
    if (!d[i + 3]) continue;
    const key = `${d[i]},${d[i + 1]},${d[i + 2]},${d[i + 3]}`;
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8)
    .map(([key, n]) => key.split(',').map(Number).concat([n])); }"""


def drawn_colours(page: Any, view: str) -> list[tuple[int, int, int, int, int]]:
    """(R, G, B, A, pixel count) of the mask layer of ``view`` (e.g. ``"#compare-canvas"``),
    most frequent first; empty when nothing is drawn."""
    return [tuple(row) for row in page.evaluate(DRAWN, view)]


def fill_of(page: Any, view: str) -> tuple[tuple[int, int, int], int]:
    """(RGB, alpha) of the most frequent translucent pixel: the largest mask's fill."""
    rows = [r for r in drawn_colours(page, view) if r[3] < 255]
    assert rows, f"no mask fill drawn on {view}"
    r, g, b, a, _ = rows[0]
    return (r, g, b), a


def close(rgb: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 2) -> bool:
    """Un-premultiplied canvas colours round by a unit or two."""
    return all(abs(int(x) - int(y)) <= tolerance for x, y in zip(rgb, expected))


def image_to_screen(page: Any, view: str, x: float, y: float, width: int,
                    height: int) -> tuple[float, float]:
    """Screen position of image pixel (x, y) of a ``width`` x ``height`` image on ``view``'s
    canvas (the image is fitted and centred in the viewport, zoom and pan included)."""
    box = page.locator(f"{view} img.pcl-img").bounding_box()
    return box["x"] + x / width * box["width"], box["y"] + y / height * box["height"]
