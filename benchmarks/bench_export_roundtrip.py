"""Export round trip: every format written, read back by its own reader, compared with the masks.

    python benchmarks/bench_export_roundtrip.py            # ~30 s on one core
    python benchmarks/bench_export_roundtrip.py --images 40 --objects 4

Generates images of 320 x 240 with four kinds of objects (simple: discs, rectangles and blobs
from 2 to 60 px across; holes: discs with 1-3 holes; multi-part: 2-3 discs 4-40 px apart;
specks: a disc with 1-3 pixel specks around it), exports them in every format, reads each back
with the format's own reader (tests/workbench/format_fixtures.py: pycocotools, Ultralytics'
label rules, labelme's shape_to_mask, PIL) and prints a markdown table of the mean and min IoU
per format and shape kind, and the export time per 1000 objects.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "workbench")]

import numpy as np  # noqa: E402
from format_fixtures import (  # noqa: E402
    CLASSES,
    blob,
    disc,
    iou,
    labelled,
    multi_part,
    read_coco,
    read_cutouts,
    read_labelme,
    read_palette_png,
    read_yolo,
    rect,
    with_holes,
)

from workbench.projects.formats import export_project  # noqa: E402

H, W = 240, 320
KINDS = ("simple", "holes", "multi-part", "specks")
FORMAT_RUNS = (("coco", {}), ("coco polygons", {"polygons": True}), ("yolo", {}),
               ("labelme", {}), ("voc", {}), ("cutouts", {}))


def make_mask(kind: str, rng: np.random.Generator) -> np.ndarray:
    cx, cy = rng.uniform(70, W - 70), rng.uniform(70, H - 70)
    r = float(rng.uniform(1, 30))
    if kind == "simple":
        pick = rng.integers(3)
        if pick == 0:
            return disc(H, W, cx, cy, r)
        if pick == 1:
            w, h = rng.integers(1, 60, size=2)
            return rect(H, W, int(cx), int(cy), int(cx) + int(w), int(cy) + int(h))
        return blob(H, W, cx, cy, max(r, 2), int(rng.integers(1 << 30)))
    if kind == "holes":
        r = float(rng.uniform(12, 60))
        return with_holes(H, W, W / 2, H / 2, r, holes=int(rng.integers(1, 4)))
    if kind == "multi-part":
        r = float(rng.uniform(6, 30))
        gap = float(rng.uniform(4, 40))
        parts = int(rng.integers(2, 4))
        return multi_part(H, W, r, gap, parts=parts) if 2 + parts * (2 * r + gap) < W \
            else multi_part(H, W, r, gap, parts=2)
    mask = disc(H, W, cx, cy, max(r, 4))
    for _ in range(int(rng.integers(1, 4))):
        x, y = rng.integers(2, W - 3), rng.integers(2, H - 3)
        mask[y:y + int(rng.integers(1, 3)), x] = True
    return mask


def read_back(name: str, out: Path, images) -> dict[tuple[str, int], np.ndarray]:
    """(image path, object index) -> mask as the format's reader sees it."""
    found = {}
    if name.startswith("coco"):
        for path, anns in read_coco(out).items():
            for k, (_, crowd, mask) in enumerate(anns):
                assert crowd == 0
                found[(path, k)] = mask
    for image in images:
        stem = image.path.rsplit(".", 1)[0]
        if name == "yolo":
            file = out / "labels" / f"{stem}.txt"
            lines = read_yolo(file, W, H) if file.exists() else []
            found.update({(image.path, k): m for k, (_, m) in enumerate(lines)})
        elif name == "labelme":
            shapes = read_labelme(out / f"{stem}.json")
            found.update({(image.path, k): m for k, (_, m) in enumerate(shapes)})
        elif name == "voc":
            objects = read_palette_png(out / "SegmentationObject" / f"{stem}.png")
            found.update({(image.path, k): objects == k + 1 for k in range(len(image.objects))})
    if name == "cutouts":
        crops = read_cutouts(out)
        for image in images:
            for k, obj in enumerate(image.objects):
                mask = obj.mask()
                ys, xs = np.nonzero(mask)
                alpha = crops[f"{image.path.rsplit('.', 1)[0]}_big dog_{k + 1}.png"][..., 3]
                full = np.zeros_like(mask)
                full[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = alpha == 255
                found[(image.path, k)] = full
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100, help="images per shape kind")
    parser.add_argument("--objects", type=int, default=1,
                        help="objects per image (VOC paints overlaps void: 1 measures the "
                             "encoding, not the overlap rule)")
    args = parser.parse_args()
    rng = np.random.default_rng(20)
    work = Path(tempfile.mkdtemp(prefix="bench-formats-"))
    from PIL import Image

    source = work / "pixels.png"
    Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(source)
    images = {kind: [labelled(f"{kind}/img {i}.png",
                              [make_mask(kind, rng) for _ in range(args.objects)],
                              [7] * args.objects, source=source)
                     for i in range(args.images)] for kind in KINDS}
    ious: dict[tuple[str, str], list[float]] = {}
    seconds: dict[str, float] = {}
    total = 0
    for name, options in FORMAT_RUNS:
        fmt = name.split()[0]
        seconds[name] = 0.0
        for kind in KINDS:
            out = work / name.replace(" ", "-") / kind
            started = time.perf_counter()
            report = export_project(fmt, images[kind], CLASSES, out, **options)
            seconds[name] += time.perf_counter() - started
            assert not report.problems, report.problems
            found = read_back(name, out, images[kind])
            scores = ious.setdefault((name, kind), [])
            for image in images[kind]:
                for k, obj in enumerate(image.objects):
                    mask = found.get((image.path, k))
                    scores.append(0.0 if mask is None else iou(mask, obj.mask()))
        total = sum(len(i.objects) for kind in KINDS for i in images[kind])
    header = "| format | " + " | ".join(f"{k} mean / min" for k in KINDS) + \
             " | export s / 1000 objects |"
    print(f"{args.images} images x {args.objects} objects per shape kind, {W} x {H}; "
          f"IoU with the stored mask after export + read-back by the format's own reader\n")
    print(header)
    print("|" + "---|" * (len(KINDS) + 2))
    for name, _ in FORMAT_RUNS:
        cells = [f"{np.mean(ious[(name, k)]):.4f} / {np.min(ious[(name, k)]):.4f}"
                 for k in KINDS]
        print(f"| {name} | " + " | ".join(cells) + f" | {1000 * seconds[name] / total:.2f} |")


if __name__ == "__main__":
    main()
