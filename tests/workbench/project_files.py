"""Tiny image files for the project store's tests (the store never decodes them on a scan)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image


def png_bytes(w: int = 40, h: int = 30, color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), color).save(out, "PNG")
    return out.getvalue()


def make_images(folder: Path, names, w: int = 40, h: int = 30) -> None:
    """The same small PNG under each relative name (folders made as needed)."""
    data = png_bytes(w, h)
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
