"""A refining click the model is unsure of: two decodes (before) against one (now), one run.

    python benchmarks/bench_unsure.py                         # SAM 2.1 tiny and ViT-B, 30 clicks
    python benchmarks/bench_unsure.py --models sam2.1-tiny --clicks 60

Why (``workbench.segment.policy``): the page asks for one mask on a refining click (two or more
points, or a box, with the previous mask's logits) and, when that mask's predicted IoU is under
0.5, for the three candidates of the same prompts so the person can choose. Upstream's decoder
computes every output from one transformer and upscaling whatever it returns, so the second
request repeated the whole decode. ``Backend.predict_single_or_candidates`` selects both from one
decode on the fast SAM backends.

On full-size random weights built once into ``--cache`` (as bench_speed does; speed does not
depend on the values), precision ``auto``, one photo (``--photo`` from ``--media``): a first
click with three candidates, then a refining click with a second point and the best
candidate's logits. Timed, alternating click by click in one process:

* unsure, before: ``predict`` for one mask, then ``predict`` for three (the bar set above any
  score, so every click is an unsure one; with real weights only some are);
* unsure, now: ``predict_single_or_candidates`` with the same bar;
* sure, before / now: one mask (``predict``) against ``predict_single_or_candidates`` with the
  bar under any score: what the check costs a click the model is sure of.

Every pair's masks and scores are compared (they must be equal). Prints p50/p95 in ms per row
and each "now" against its "before".
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (  # noqa: E402
    DEFAULT_CACHE,
    DEFAULT_MEDIA,
    cpu_name,
    ensure_random_checkpoint,
    load_photo,
    percentile,
)

ROWS = ("unsure, before", "unsure, now", "sure, before", "sure, now")


def measure(model_id: str, photo: np.ndarray, clicks: int, cache: Path) -> dict[str, list[float]]:
    from sam_backends import Prompts, create_backend, get_spec

    backend = create_backend(get_spec(model_id), device="cpu", precision="auto",
                             checkpoint=ensure_random_checkpoint(model_id, cache))
    embedding = backend.encode(photo)
    rng = np.random.default_rng(0)
    height, width = photo.shape[:2]
    times: dict[str, list[float]] = {row: [] for row in ROWS}
    for n in range(clicks + 3):  # the first three warm up
        first_point, second_point = (
            (float(rng.uniform(0.1, 0.9) * width), float(rng.uniform(0.1, 0.9) * height))
            for _ in range(2))
        first = backend.predict(embedding, Prompts(points=[first_point], labels=[1],
                                                   multimask=True))
        prompts = Prompts(points=[first_point, second_point], labels=[1, 1],
                          mask_input=first.low_res_logits[first.best_index][None])

        def two_calls(bar: float):
            single = backend.predict(embedding, prompts)
            if float(single.scores[0]) < bar:
                return backend.predict(embedding, dataclasses.replace(prompts, multimask=True))
            return single

        for case, bar in (("unsure", float("inf")), ("sure", float("-inf"))):
            answers = {}
            for when, call in (("before", lambda: two_calls(bar)),
                               ("now", lambda: backend.predict_single_or_candidates(
                                   embedding, prompts, bar))):
                start = time.perf_counter()
                answer = call()
                answer.mask(answer.best_index)
                elapsed = (time.perf_counter() - start) * 1000
                if n >= 3:
                    times[f"{case}, {when}"].append(elapsed)
                answers[when] = answer
            before, now = answers["before"], answers["now"]
            if not (np.array_equal(before.scores, now.scores)
                    and np.array_equal(before.masks, now.masks)):
                raise SystemExit(f"{model_id}: the one-decode answer differs from the two calls")
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["sam2.1-tiny", "sam-vit-b"])
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--photo", default="truck.jpg")
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    path = args.media / args.photo
    if not path.exists():
        raise SystemExit(f"{path} is missing: pass --media with the shared photos")
    photo = load_photo(path)
    print(f"CPU: {cpu_name()}; {args.photo}; {args.clicks} refining clicks per row; "
          "precision auto; masks and scores of each pair equal")
    print(f"\n{'model':<12} {'click':<16} {'p50':>7} {'p95':>7}  now vs before (p50)")
    for model_id in args.models:
        times = measure(model_id, photo, args.clicks, args.cache)
        p50 = {row: percentile(values, 50) for row, values in times.items()}
        for row in ROWS:
            ratio = ""
            if row.endswith("now"):
                before = p50[row.replace("now", "before")]
                ratio = f"{before / p50[row]:.2f}x faster" if p50[row] else ""
            print(f"{model_id:<12} {row:<16} {p50[row]:7.1f} "
                  f"{percentile(times[row], 95):7.1f}  {ratio}")


if __name__ == "__main__":
    main()
