"""GrabCut click latency: the single full-resolution pass against coarse-to-fine, same run.

    python benchmarks/bench_grabcut.py                       # cars.jpg from ../shared/media
    python benchmarks/bench_grabcut.py --photo path/to/photo.jpg --repeats 3

Prompts are fixed fractions of the image size (never tuned to an output): five single
foreground points, one point pair (foreground + background) and one box. For each prompt and
each variant (``old``: ``fast_points=False``; ``new``: the default) the table shows the median
predict time (wall clock, and CPU time of this process, which a busy machine inflates less)
over ``--repeats`` runs and, for ``new``, the IoU of its mask with ``old``'s
(GrabCut on one click is a guess either way; the IoU says how far the answer moved).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_common import DEFAULT_MEDIA, load_photo  # noqa: E402

POINTS = ((0.33, 0.5), (0.83, 0.42), (0.44, 0.25), (0.58, 0.87), (0.2, 0.8))


def prompts_for(height: int, width: int) -> list[tuple[str, object]]:
    from sam_backends.types import Prompts

    rows = [(f"point {x:.2f},{y:.2f}", Prompts(points=[(x * width, y * height)], labels=[1]))
            for x, y in POINTS]
    rows.append(("point pair", Prompts(points=[(0.33 * width, 0.5 * height),
                                               (0.05 * width, 0.95 * height)], labels=[1, 0])))
    rows.append(("box", Prompts(box=(0.15 * width, 0.3 * height, 0.45 * width, 0.72 * height))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, default=DEFAULT_MEDIA / "cars.jpg")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    import numpy as np

    from sam_backends.families.grabcut import backend as grabcut_backend
    from sam_backends.registry import get_spec

    image = load_photo(args.photo)
    height, width = image.shape[:2]
    spec = get_spec("grabcut")
    backends = {"old": grabcut_backend.load(spec, None, "cpu", "fp32", fast_points=False),
                "new": grabcut_backend.load(spec, None, "cpu", "fp32")}
    embedding = backends["new"].encode(image)
    print(f"{args.photo.name} {width}x{height}, median of {args.repeats} run(s), seconds")
    print(f"{'prompt':<18} {'old s':>7} {'new s':>7} {'old cpu':>7} {'new cpu':>7} "
          f"{'speed-up':>8} {'IoU new/old':>11}")
    totals = {"old": [], "new": []}
    for name, prompts in prompts_for(height, width):
        seconds, cpu, masks = {}, {}, {}
        for variant, backend in backends.items():
            runs, cpu_runs = [], []
            for _ in range(args.repeats):
                start, start_cpu = time.perf_counter(), time.process_time()
                masks[variant] = backend.predict(embedding, prompts).masks[0]
                runs.append(time.perf_counter() - start)
                cpu_runs.append(time.process_time() - start_cpu)
            seconds[variant] = statistics.median(runs)
            cpu[variant] = statistics.median(cpu_runs)
            if name != "box":
                totals[variant].append(seconds[variant])
        union = np.count_nonzero(masks["old"] | masks["new"])
        iou = np.count_nonzero(masks["old"] & masks["new"]) / union if union else 1.0
        print(f"{name:<18} {seconds['old']:7.3f} {seconds['new']:7.3f} {cpu['old']:7.3f} "
              f"{cpu['new']:7.3f} {seconds['old'] / seconds['new']:7.1f}x {iou:11.2f}")
    old, new = statistics.median(totals["old"]), statistics.median(totals["new"])
    print(f"{'points median':<18} {old:7.3f} {new:7.3f} {old / new:7.1f}x")
    print(f"{'points worst':<18} {max(totals['old']):7.3f} {max(totals['new']):7.3f}")


if __name__ == "__main__":
    main()
