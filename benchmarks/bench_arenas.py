"""Encodes and clicks in the app with glibc's per-thread malloc arenas (today's default) and
with one arena (``accel.tune_allocator``), fresh processes alternating.

    python benchmarks/bench_arenas.py                        # SAM 2.1 tiny, 3 rounds
    python benchmarks/bench_arenas.py --model sam-vit-b --rounds 2

Why: the app runs each encode on a thread of its own (``workbench.threads.in_own_thread``).
glibc gives such a thread an arena whose heaps are at most 64 MiB, so the encoder's 20-60 MiB
temporaries are mapped and page-faulted afresh on every encode there; in the main arena they
are reused. "many" runs with ``MALLOC_ARENA_MAX`` at glibc's own default (8 per core, which
``tune_allocator`` leaves alone), "one" with the setting. Each process builds the app's context
with a random-weight, full-size model (written once into ``--cache``), encodes ``--encodes``
changed copies of truck.jpg through ``AppContext.encode`` (the entrance an upload takes) and
decodes ``--clicks`` points through ``AppContext.predict`` (the app's decode thread), 50 ms
apart. The first encode (model load and first use) is left out of the medians. Prints a table
with the CPU's name: encode wall and kernel seconds, page faults, click p50 / p95, and the
resident memory at the end and at its peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from benchmarks.bench_common import (  # noqa: E402
    DEFAULT_CACHE,
    DEFAULT_MEDIA,
    app_context,
    cpu_name,
    ensure_random_checkpoint,
    json_from_process,
    load_photo,
    median,
    percentile,
)

MODES = ("many", "one")
WARM_CLICKS = 3  # left out of the click figures


def one_run(model: str, photo: Path, cache: Path, encodes: int, clicks: int) -> dict:
    """In this process: the app's context, then the encodes and the clicks."""
    import numpy as np

    from sam_backends import Prompts
    from sam_backends.speed import accel

    applied = accel.tune_allocator()  # first, as ``app.build_demo`` does
    ctx = app_context(model, cache, "bench-arenas-")
    rows = []
    try:
        image = load_photo(photo)
        embedding = None
        for index in range(encodes + 1):
            changed = image.copy()
            changed[index, index] ^= 1  # a new image to the cache each time
            before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            embedding = ctx.encode(model, changed).embedding
            after = resource.getrusage(resource.RUSAGE_SELF)
            rows.append({"wall_s": time.perf_counter() - start,
                         "kernel_s": after.ru_stime - before.ru_stime,
                         "faults": after.ru_minflt - before.ru_minflt})
        rng = np.random.default_rng(0)
        height, width = image.shape[:2]
        click_ms = []
        for _ in range(clicks):
            point = (float(rng.uniform(0.15, 0.85) * width),
                     float(rng.uniform(0.15, 0.85) * height))
            start = time.perf_counter()
            ctx.predict(model, embedding, Prompts(points=[point], labels=[1],
                                                          multimask=True))
            click_ms.append(1000 * (time.perf_counter() - start))
            time.sleep(0.05)
        rss = accel.process_rss_bytes()
    finally:
        ctx.close()
    return {"applied": applied, "first": rows[0], "encodes": rows[1:],
            "click_ms": click_ms[WARM_CLICKS:],
            "rss_mib": None if rss is None else rss / 2**20,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_env(mode: str) -> dict[str, str]:
    """``many``: glibc's default arena limit, given explicitly so the setting leaves it."""
    from sam_backends.speed.accel import ARENAS_ENV

    env = {k: v for k, v in os.environ.items() if k != ARENAS_ENV}
    if mode == "many":
        env[ARENAS_ENV] = str(8 * (os.cpu_count() or 1))
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sam2.1-tiny")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--encodes", type=int, default=4, help="timed encodes a process")
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.encodes < 1 or args.clicks <= WARM_CLICKS:
        parser.error(f"--encodes must be at least 1 and --clicks above {WARM_CLICKS} (the "
                     f"first {WARM_CLICKS} clicks warm the decoder up and are not counted)")
    photo = args.media / "truck.jpg"
    if not photo.is_file():
        print(f"{photo} is missing; nothing done")
        return 0
    if args.one:
        print(json.dumps(one_run(args.model, photo, args.cache, args.encodes, args.clicks)))
        return 0
    ensure_random_checkpoint(args.model, args.cache)  # written once, outside the timed runs
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for round_index in range(args.rounds):
        for mode in MODES:
            run = json_from_process(
                [__file__, "--one", "--model", args.model, "--encodes", str(args.encodes),
                 "--clicks", str(args.clicks), "--media", str(args.media),
                 "--cache", str(args.cache)], env=child_env(mode))
            runs[mode].append(run)
            print(f"round {round_index + 1} {mode}: encode "
                  f"{median([r['wall_s'] for r in run['encodes']]):.2f} s (kernel "
                  f"{median([r['kernel_s'] for r in run['encodes']]):.2f} s), click p50 "
                  f"{median(run['click_ms']):.1f} ms, RSS {run['rss_mib']:.0f} MiB", flush=True)
    print(f"\n{args.model}, {cpu_name()}, {args.rounds} processes a mode, "
          f"{args.encodes} encodes and {args.clicks} clicks each (medians over all):")
    print("| arenas | encode s | of which kernel s | page faults | click p50 / p95 ms "
          "| RSS at end / peak MiB |")
    print("|---|---|---|---|---|---|")
    for mode in MODES:
        encodes = [row for run in runs[mode] for row in run["encodes"]]
        clicks = [ms for run in runs[mode] for ms in run["click_ms"]]
        print(f"| {mode} | {median([r['wall_s'] for r in encodes]):.2f} | "
              f"{median([r['kernel_s'] for r in encodes]):.2f} | "
              f"{median([r['faults'] for r in encodes]):,.0f} | "
              f"{median(clicks):.1f} / {percentile(clicks, 95):.1f} | "
              f"{median([r['rss_mib'] for r in runs[mode]]):,.0f} / "
              f"{median([r['peak_rss_mib'] for r in runs[mode]]):,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
