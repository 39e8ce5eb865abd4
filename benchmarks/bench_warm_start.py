"""A person's first upload after the app starts: how long its encode takes, with and without
the warm start (``workbench.warm_start``), old and new alternating in fresh processes.

    python benchmarks/bench_warm_start.py                       # SAM 2.1 tiny, 2 rounds
    python benchmarks/bench_warm_start.py --model sam-vit-b --rounds 3

Each run is its own process (a process's first encode is what is measured): the app's context
is built as ``python app.py`` builds it, with a random-weight, full-size model (written once
into ``--cache``, as ``bench_speed`` does). "cold" then encodes truck.jpg through
``AppContext.encode`` (the entrance an upload takes), which loads the model on the way as the
first upload does today without a warm start; "warm" first runs ``warm_start`` to its end (at
start-up it runs while the person opens the page) and then encodes the same photo. Both then
encode a second, slightly changed photo: the steady pace, for comparison. Prints a table with
the CPU's name.
"""

from __future__ import annotations

import argparse
import json
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
)


def one_run(mode: str, model: str, photo: Path, cache: Path) -> dict:
    """In this process: build the app's context, warm it or not, then two encodes."""
    from sam_backends import get_spec
    from workbench.warm_start import warm_start

    spec = get_spec(model)
    ctx = app_context(model, cache, "bench-warm-")
    try:
        image = load_photo(photo)
        warm = None
        if mode == "warm":
            start = time.perf_counter()
            result = warm_start(ctx, spec.model_id)
            warm = {"warmed": result.warmed, "seconds": time.perf_counter() - start}
        start = time.perf_counter()
        ctx.encode(spec.model_id, image)
        first = time.perf_counter() - start
        changed = image.copy()
        changed[0, 0] ^= 1  # another image to the cache
        start = time.perf_counter()
        ctx.encode(spec.model_id, changed)
        second = time.perf_counter() - start
    finally:
        ctx.close()
    return {"mode": mode, "warm_start": warm, "first_s": first, "second_s": second}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sam2.1-tiny")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--one", choices=("cold", "warm"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    photo = args.media / "truck.jpg"
    if not photo.is_file():
        print(f"{photo} is missing; nothing done")
        return 0
    if args.one:
        print(json.dumps(one_run(args.one, args.model, photo, args.cache)))
        return 0
    ensure_random_checkpoint(args.model, args.cache)  # written once, outside the timed runs
    runs = []
    for round_index in range(args.rounds):
        for mode in ("cold", "warm"):
            run = json_from_process([__file__, "--one", mode, "--model", args.model,
                                     "--media", str(args.media), "--cache", str(args.cache)])
            runs.append(run)
            warmed = run["warm_start"]
            note = "" if warmed is None else f"  (warm start {warmed['seconds']:.1f} s before)"
            print(f"round {round_index + 1} {mode}: first upload's encode "
                  f"{run['first_s']:.2f} s, next {run['second_s']:.2f} s{note}", flush=True)
    print(f"\n{args.model}, {cpu_name()}, median of {args.rounds} processes each:")
    print("| start | first upload's encode s | the next encode s |")
    print("|---|---|---|")
    for mode in ("cold", "warm"):
        mine = [r for r in runs if r["mode"] == mode]
        print(f"| {mode} | {median([r['first_s'] for r in mine]):.2f} | "
              f"{median([r['second_s'] for r in mine]):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
