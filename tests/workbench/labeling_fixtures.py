"""Projects, box label files and runs for the labelling tests (reduced random-weight models)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.labeling import LabelRun, resolve_models

CLASSES = ("car", "person")
BOX_LINES = "0 0.5 0.5 0.4 0.4\n1 0.3 0.3 0.2 0.3\n"


def make_project_images(folder: Path, count: int, size=(64, 48)) -> list[str]:
    """``count`` distinct random PNGs (``im0.png`` ...); returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    names = []
    for i in range(count):
        pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"im{i}.png")
        names.append(f"im{i}.png")
    return names


def make_boxes(folder: Path, names: list[str]) -> Path:
    """YOLO detection labels (two boxes each) for ``names``, with classes.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "classes.txt").write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    for name in names:
        (folder / Path(name).with_suffix(".txt").name).write_text(BOX_LINES, encoding="utf-8")
    return folder


def huge_png(path: Path, width: int = 10_000, height: int = 10_000) -> Path:
    """A PNG whose header says ``width`` x ``height`` (100 MP) with a few hundred bytes of
    data: refused from the header, never decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return (len(data).to_bytes(4, "big") + body
                + (zlib.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big"))

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    data = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
                     + chunk(b"IEND", b""))
    return path


def boxes_run(spec, boxes: Path, **changes) -> LabelRun:
    return LabelRun(spec.model_id, "boxes", boxes=str(boxes), **changes)


def models_for(run: LabelRun, checkpoint, extra: dict | None = None, **changes):
    given = {checkpoint.spec.model_id: str(checkpoint.path), **(extra or {})}
    return resolve_models(run, given,
                          spec=checkpoint.spec, device="cpu", precision="fp32", **changes)


def objects_by_path(store) -> dict[str, list[tuple]]:
    """Each image's model objects as comparable tuples (class name, RLE counts, score)."""
    names = {c.class_id: c.name for c in store.classes()}
    found = {}
    for entry in store.page(0, 1000):
        found[entry.path] = sorted(
            (names[o.class_id], o.rle["counts"], round(o.score or 0.0, 4), o.run_key)
            for o in store.objects(entry.image_id) if o.source == "model")
    return found
