"""How the project store scales: scan, open, the list's queries and saving a mask.

    python benchmarks/bench_project_store.py   # 20,000 and 100,000 images (1-4 min: making
                                               # and deleting 100,000 files is most of it)
    python benchmarks/bench_project_store.py --sizes 20000

For each size (smallest first, each adding files to the folder of the one before, and a fresh
project each time), tiny PNG files (the scan never decodes them) in folders of 5,000; one
image in 10 marked done, objects of a second class on one image in 100. Prints one table:
create + scan, reopen, then median and p95 of page (50 rows at a random offset, with and
without filters), neighbour, count, index_of and next_unfinished, and sync_objects of a
1920 x 1080 mask (one commit, fsynced: ``synchronous=FULL``). Peak RSS is the whole process.
"""

from __future__ import annotations

import argparse
import io
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sam_backends.masks import encode_rle  # noqa: E402
from workbench.projects.model import StoredObject  # noqa: E402
from workbench.projects.store import ProjectStore  # noqa: E402


def tiny_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 6), (90, 120, 30)).save(out, "PNG")
    return out.getvalue()


def make_folder(folder: Path, n: int, per_folder: int = 5000, start: int = 0) -> None:
    """Images ``start`` .. ``n - 1`` (a bigger size adds to the folder of a smaller one)."""
    data = tiny_png()
    for i in range(start, n):
        sub = folder / f"part{i // per_folder:03d}"
        if i % per_folder == 0:
            sub.mkdir()
        with open(sub / f"img{i}.png", "wb") as handle:
            handle.write(data)


def seed_statuses_and_objects(folder: Path, class_id: int) -> None:
    """One image in 10 done, one in 100 with an object of ``class_id``: written in one SQL
    transaction (the store's API commits, and fsyncs, once per change)."""
    rle = encode_rle(np.eye(6, 8, dtype=bool))
    conn = sqlite3.connect(folder / "samwb-project.sqlite")
    with conn:
        conn.execute("UPDATE images SET status = 'done' WHERE id % 10 = 1")
        conn.execute(
            "INSERT INTO objects (image_id, local_id, class_id, rle_h, rle_w, rle_counts, "
            "source, created_at, updated_at) SELECT id, 1, ?, 6, 8, ?, 'person', 0, 0 "
            "FROM images WHERE id % 100 = 1", (class_id, rle["counts"]))
    conn.close()


def timed(call, runs: int) -> tuple[float, float]:
    """(median, p95) milliseconds of ``call`` over ``runs`` calls."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def hd_mask() -> np.ndarray:
    yy, xx = np.mgrid[:1080, :1920]
    inside = ((xx - 900) / 500.0) ** 2 + ((yy - 560) / 300.0) ** 2 < 1
    inside &= ~(((xx - 900) / 120.0) ** 2 + ((yy - 560) / 80.0) ** 2 < 1)  # a hole
    inside[100:200, 1500:1800] = True  # a second part
    return inside


def bench_size(folder: Path, n: int, have: int, rows: list, rng: random.Random) -> None:
    for name in ("samwb-project.json", "samwb-project.sqlite"):  # a fresh project each size
        (folder / name).unlink(missing_ok=True)
    make_folder(folder, n, start=have)
    t0 = time.perf_counter()
    store = ProjectStore.open(folder, create=True)
    rows.append((f"create + scan {n:,}", time.perf_counter() - t0, None, "s"))
    car = store.add_class("car")
    store.close()
    seed_statuses_and_objects(folder, car.class_id)

    def reopen():
        ProjectStore.open(folder).close()
    med, p95 = timed(reopen, 5)
    rows.append((f"open {n:,}", med, p95, "ms"))
    store = ProjectStore.open(folder)
    ids = list(range(1, n + 1))  # ids follow the scan: 1..n
    done_pages, class_pages = max(1, n // 10 - 50), max(1, n // 100 - 50)
    cases = [
        ("page(50)", lambda: store.page(rng.randrange(n - 50), 50)),
        ("page(50, status=done)", lambda: store.page(rng.randrange(done_pages), 50, "done")),
        ("page(50, class_id)", lambda: store.page(rng.randrange(class_pages), 50,
                                                  class_id=car.class_id)),
        ("neighbour(+1)", lambda: store.neighbour(rng.choice(ids), 1)),
        ("neighbour(-1, status=done)", lambda: store.neighbour(rng.choice(ids), -1, "done")),
        ("neighbour(+1, class_id)", lambda: store.neighbour(rng.choice(ids), 1,
                                                            class_id=car.class_id)),
        ("count()", lambda: store.count()),
        ("count(status=new)", lambda: store.count("new")),
        ("count(class_id)", lambda: store.count(class_id=car.class_id)),
        ("index_of", lambda: store.index_of(rng.choice(ids))),
        ("next_unfinished", lambda: store.next_unfinished(rng.choice(ids))),
    ]
    for name, call in cases:
        med, p95 = timed(call, 200)
        rows.append((f"{name} @ {n:,}", med, p95, "ms"))
    if n == max(SIZES):
        mask = hd_mask()
        t0 = time.perf_counter()
        hd_rle = encode_rle(mask)
        encode_ms = (time.perf_counter() - t0) * 1000
        image_id = ids[5]
        counter = iter(range(1, 10_000))

        def save():
            store.sync_objects(image_id, [StoredObject(image_id, next(counter) % 4 + 1, 1,
                                                       hd_rle)], [])
        med, p95 = timed(save, 50)
        rows.append(("encode_rle 1920x1080 (not the store)", encode_ms, None, "ms"))
        rows.append((f"sync_objects 1080p mask ({len(hd_rle['counts'])} B RLE)", med, p95,
                     "ms"))
        med, p95 = timed(lambda: store.objects(image_id), 50)
        rows.append(("objects(image) with 4 x 1080p masks", med, p95, "ms"))
    store.close()


SIZES: list[int] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    args = parser.parse_args()
    SIZES[:] = args.sizes
    rng = random.Random(0)
    rows: list = []
    folder = Path(tempfile.mkdtemp(prefix="samwb-bench-"))
    try:
        have = 0
        for n in sorted(args.sizes):
            bench_size(folder, n, have, rows, rng)
            have = n
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{'operation':<52} {'median':>10} {'p95':>10}")
    for name, med, p95, unit in rows:
        p95_text = "" if p95 is None else f"{p95:.2f} {unit}"
        print(f"{name:<52} {med:>7.2f} {unit:<2} {p95_text:>10}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"peak RSS of the whole run: {rss} MB")


if __name__ == "__main__":
    main()
