"""A click's decode as the app lays out its threads, before and after the one-pool layout.

    python benchmarks/bench_pools.py                               # SAM 2.1 tiny, 30 clicks
    python benchmarks/bench_pools.py --models sam2.1-tiny sam-vit-b --clicks 40 --rounds 2

Why (``workbench.threads``): PyTorch's CPU wheels use GNU OpenMP, which gives every thread that
runs a parallel region a pool of helpers living as long as that thread; while the pools'
threads outnumber the cores, each of a decode's many small parallel regions waits for a sleeping
helper to wake. The app used to load models and encode in its request threads, which live on,
and decode in whichever request thread took the click.

Each layout runs in a fresh process (a pool cannot be undone in-process), on full-size random
weights built once into ``--cache`` (as bench_speed does; speed does not depend on the values),
precision ``auto``. One photo is encoded, then point clicks at random places are decoded, one
every ``--gap-ms`` (a person's pace: the helpers have gone to sleep in between):

* one thread does everything: the main thread loads, encodes and decodes (one pool: the
  fastest layout there is, and no app can serve requests like that);
* before: a request thread loads and encodes and stays alive (as an API worker does), and the
  click decodes in another request thread;
* now: the load and the encode each run ``in_own_thread`` (a thread that ends with the work)
  and the click decodes on the app's ``DecodeThread``.

Printed: decode p50/p95 in ms per layout, and each against "one thread does everything".
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
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
    json_from_process,
    load_photo,
    percentile,
)

LAYOUTS = {
    "one-thread": "one thread does everything",
    "before": "before: encoder thread alive, decode in a request thread",
    "now": "now: load/encode in threads that end, decode thread",
}


def _clicks(image: np.ndarray, count: int) -> list:
    from sam_backends import Prompts

    rng = np.random.default_rng(0)
    height, width = image.shape[:2]
    return [Prompts(points=((float(rng.uniform(0.1, 0.9) * width),
                             float(rng.uniform(0.1, 0.9) * height)),), labels=(1,),
                    multimask=True) for _ in range(count)]


def _measure(layout: str, model_id: str, checkpoint: Path, photo: Path, clicks: int,
             gap_s: float) -> list[float]:
    """Decode milliseconds of ``clicks`` clicks in ``layout`` (run in a fresh process)."""
    from sam_backends import create_backend, get_spec
    from workbench.threads import DecodeThread, in_own_thread

    spec = get_spec(model_id)
    image = load_photo(photo)

    def load():
        return create_backend(spec, checkpoint=checkpoint, device="cpu", precision="auto")

    times: list[float] = []

    def decode_all(backend, embedding, run) -> None:
        for prompts in _clicks(image, clicks):
            time.sleep(gap_s)
            began = time.perf_counter()
            run(lambda: backend.predict(embedding, prompts))
            times.append((time.perf_counter() - began) * 1e3)

    if layout == "one-thread":
        backend = load()
        decode_all(backend, backend.encode(image), lambda work: work())
    elif layout == "before":
        made: dict = {}
        ready, finish = threading.Event(), threading.Event()

        def request_worker() -> None:  # loads and encodes, then lives on
            made["backend"] = load()
            made["embedding"] = made["backend"].encode(image)
            ready.set()
            finish.wait()

        worker = threading.Thread(target=request_worker, daemon=True)
        worker.start()
        ready.wait()
        clicker = threading.Thread(target=decode_all, args=(
            made["backend"], made["embedding"], lambda work: work()))
        clicker.start()
        clicker.join()
        finish.set()
        worker.join()  # a thread with an OpenMP pool still alive at exit can abort the process
    elif layout == "now":
        backend = in_own_thread(load)
        embedding = in_own_thread(lambda: backend.encode(image))
        decoder = DecodeThread()
        clicker = threading.Thread(target=decode_all, args=(backend, embedding, decoder.run))
        clicker.start()
        clicker.join()
        decoder.close()
    else:
        raise SystemExit(f"unknown layout {layout!r}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["sam2.1-tiny"])
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--gap-ms", type=float, default=150.0)
    parser.add_argument("--rounds", type=int, default=1, help="layouts alternate this often")
    parser.add_argument("--photo", type=Path, default=DEFAULT_MEDIA / "truck.jpg")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--one", nargs=2, metavar=("LAYOUT", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # the child process: one layout, its times as JSON on stdout
        layout, model_id = args.one
        checkpoint = ensure_random_checkpoint(model_id, args.cache)
        times = _measure(layout, model_id, checkpoint, args.photo, args.clicks,
                         args.gap_ms / 1e3)
        print(json.dumps(times))
        return
    if not args.photo.is_file():
        raise SystemExit(f"{args.photo} is missing (../shared/media); nothing measured")
    print(f"CPU: {cpu_name()}; clicks {args.gap_ms:.0f} ms apart, {args.clicks} per layout, "
          f"{args.rounds} round(s); precision auto")
    rows = []
    for model_id in args.models:
        ensure_random_checkpoint(model_id, args.cache)
        times: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
        for _ in range(args.rounds):
            for layout in LAYOUTS:
                times[layout] += json_from_process(
                    [__file__, "--one", layout, model_id, "--clicks", str(args.clicks),
                     "--gap-ms", str(args.gap_ms), "--photo", str(args.photo),
                     "--cache", str(args.cache)])
        base = percentile(times["one-thread"], 50)
        for layout, label in LAYOUTS.items():
            p50, p95 = percentile(times[layout], 50), percentile(times[layout], 95)
            rows.append((model_id, label, p50, p95, p50 / base))
    print(f"\n{'model':12s} {'layout':58s} {'p50':>7s} {'p95':>7s}  vs one thread")
    for model_id, label, p50, p95, ratio in rows:
        print(f"{model_id:12s} {label:58s} {p50:7.1f} {p95:7.1f}  {ratio:5.2f}x")


if __name__ == "__main__":
    main()
