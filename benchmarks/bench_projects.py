"""How a big project feels: opening it, its first page of thumbnails, moving to the next image.

Generates N tiny images (default 20,000; ``--images``) in a temp folder, then through the app's
own code (``ProjectsService``, ``workbench.projects.values``), prints a table of:

* making the project (first open: files written, scanned);
* opening it again as ``python app.py --project DIR`` does (open + scan for new files);
* the first page of the image list (48 thumbnails made) and the same page again (cached);
* the last page, counts by status, filtering by a class;
* moving to the next image (``open_image``: read the pixels, the stored objects, the bar).

Encoding the next image in the background (how long moving on takes with and without it, and
from the project's disk cache after a restart) is ``bench_prefetch.py``'s table.

    python benchmarks/bench_projects.py                 # 20,000 images
    python benchmarks/bench_projects.py --images 100000
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_prefetch import cpu_line  # noqa: E402


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=20_000)
    args = parser.parse_args()
    from PIL import Image

    from workbench.projects.service import ProjectsService
    from workbench.projects.store import ProjectStore
    from workbench.projects.values import gallery_page, project_bar, summary
    from workbench.session import Session

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "project"
        buffer = io.BytesIO()
        Image.new("RGB", (320, 240), (120, 140, 160)).save(buffer, "JPEG")
        data = buffer.getvalue()
        start = time.perf_counter()
        for i in range(args.images):
            sub = folder / f"part{i // 1000:03d}"
            if i % 1000 == 0:
                sub.mkdir(parents=True)
            (sub / f"img {i:06d}.jpg").write_bytes(data)
        rows.append(("write the image files (not the app)", time.perf_counter() - start))
        seconds, store = timed(lambda: ProjectStore.open(folder, create=True))
        rows.append(("make the project (first open: scan, database)", seconds))
        klass = store.add_class("thing")
        store.close()
        seconds, service = timed(lambda: ProjectsService(folder, None, Path(scratch) / "t"))
        rows.append(("open it as --project does (open + scan for new files)", seconds))
        store = service.shared
        seconds, _ = timed(lambda: gallery_page(store, 0, None, None))
        rows.append(("first page of the list (48 thumbnails made)", seconds))
        seconds, _ = timed(lambda: gallery_page(store, 0, None, None), 5)
        rows.append(("the same page again (thumbnails cached)", seconds))
        seconds, _ = timed(lambda: gallery_page(store, 10**9, None, None))
        rows.append(("the last page (48 thumbnails made)", seconds))
        seconds, _ = timed(lambda: summary(store), 5)
        rows.append(("counts by status (the summary line)", seconds))
        seconds, _ = timed(lambda: gallery_page(store, 0, None, klass.class_id), 5)
        rows.append(("filter by a class (no image has it)", seconds))
        session = Session("bench", "grabcut")
        first = store.page(0, 1)[0].image_id
        service.open_image(session, store, first, 40_000_000)

        def step() -> None:
            entry = store.neighbour(session.link.image_id, +1)
            service.open_image(session, store, entry.image_id, 40_000_000)
            project_bar(session)

        seconds, _ = timed(step, 20)
        rows.append(("next image: pixels, stored objects, the bar (no encode)", seconds))
        service.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"CPU: {cpu_line()}")
    print(f"Project of {args.images:,} images (320 x 240 JPEG files); peak RSS {peak:,.0f} MiB\n")
    print("| step | time |")
    print("|---|---|")
    for name, seconds in rows:
        shown = f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.1f} ms"
        print(f"| {name} | {shown} |")


if __name__ == "__main__":
    main()
