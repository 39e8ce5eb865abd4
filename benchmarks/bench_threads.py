"""A click's tail while something else runs: the decode thread policy on and off, one run.

    python benchmarks/bench_threads.py                          # SAM 2.1 tiny, 40 clicks a row
    python benchmarks/bench_threads.py --models sam2.1-tiny sam-vit-b --clicks 60

For each model (full-size random weights, built once into ``--cache`` as bench_speed does;
precision ``auto``: bf16 where the CPU has it natively, else fp32-fast), the engine's decode of
one point click on an encoded photo is timed in five situations, in this order, in one process:

* quiet: nothing else runs; the policy gives the decode every core;
* encode running, policy off: another thread of this process encodes images in a loop (on
  every core, as the app's encoder lane does) and the click decodes on every core too;
* encode running, one thread: ``workbench.threads.ThreadPolicy`` without an encode that gives
  way (the policy before ``sam_backends.speed.give_way``): it sees the encode through its
  ``heavy_running`` count and decodes on one thread;
* encode running, policy on: as the app runs now: the encode gives way
  (``GiveWay.giving_way``), the click is urgent work, so the encode pauses at its next
  operation and the decode gets every core;
* busy process, policy off / on: another process spins on one core (``--spinners``), seen by
  the policy through ``/proc`` (``CpuLoad``).

Printed per row: the threads the decode ran on, click p50/p95 in ms, p95 against the quiet
p95, and (rows with an encode) the encodes finished per minute, the cost of the policy to the
encoder. The target (issue 26): p95 with an encode running <= 2x the quiet p95.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
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
    load_photo,
    percentile,
)


def spin(stop) -> None:
    while not stop.is_set():
        pass


def time_clicks(backend, embedding, size, count: int, policy) -> tuple[list[float], int]:
    """``count`` point clicks spread over the image; (ms per click, threads of the last)."""
    from sam_backends import Prompts

    height, width = size
    rng = np.random.default_rng(0)
    times, threads = [], 0
    for _ in range(count):
        x, y = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        prompts = Prompts(points=((x, y),), labels=(1,), multimask=True)
        start = time.perf_counter()
        if policy is None:
            backend.predict(embedding, prompts).masks  # noqa: B018 - the full-size masks
        else:
            with policy.for_decode() as threads:
                backend.predict(embedding, prompts).masks  # noqa: B018
        times.append((time.perf_counter() - start) * 1000)
        time.sleep(0.03)  # a person's clicks are apart; the other work goes on meanwhile
    return times, threads


def run_model(model_id: str, args: argparse.Namespace, image: np.ndarray) -> list[dict]:
    import torch

    from sam_backends import create_backend, get_spec
    from sam_backends.speed.give_way import GiveWay
    from workbench.threads import CpuLoad, ThreadPolicy, decode_cores

    checkpoint = ensure_random_checkpoint(model_id, args.cache)
    backend = create_backend(get_spec(model_id), checkpoint=checkpoint, device="cpu",
                             precision="auto")
    embedding = backend.encode(image)
    backend.predict(embedding, __import__("sam_backends").Prompts(
        points=((10.0, 10.0),), labels=(1,)))  # warm-up
    cores = decode_cores()
    heavy = [0]
    give_way = GiveWay()
    policy = ThreadPolicy(cores, lambda: max(0, heavy[0] - give_way.giving_way_now), CpuLoad(),
                          give_way=give_way)
    one_thread = ThreadPolicy(cores, lambda: heavy[0], CpuLoad())
    rows = []

    def row(name: str, use_policy: bool, encodes: int | None = None, seconds: float = 0.0,
            clicks=None, label: str | None = None) -> None:
        times, threads = clicks
        rows.append({"model": model_id, "precision": backend.precision, "situation": name,
                     "policy": label or ("on" if use_policy else "off"),
                     "threads": threads if use_policy else torch.get_num_threads(),
                     "p50": percentile(times, 50), "p95": percentile(times, 95),
                     "encodes_per_min": None if encodes is None else encodes * 60 / seconds})

    row("quiet", True, clicks=time_clicks(backend, embedding, image.shape[:2], args.clicks,
                                          policy))

    variants = (("off", None, False), ("one thread", one_thread, False), ("on", policy, True))
    for label, chosen, gives_way in variants:
        stop, done = threading.Event(), [0]

        def encoder() -> None:
            heavy[0] += 1
            try:
                while not stop.is_set():
                    if gives_way:
                        with give_way.giving_way():
                            backend.encode(image)
                    else:
                        backend.encode(image)
                    done[0] += 1
            finally:
                heavy[0] -= 1

        worker = threading.Thread(target=encoder)
        start = time.perf_counter()
        worker.start()
        time.sleep(0.5)
        clicks = time_clicks(backend, embedding, image.shape[:2], args.clicks, chosen)
        stop.set()
        worker.join()
        row("encode running", chosen is not None, done[0], time.perf_counter() - start,
            clicks, label)

    for use_policy in (False, True):
        stop = multiprocessing.Event()
        spinners = [multiprocessing.Process(target=spin, args=(stop,))
                    for _ in range(args.spinners)]
        for p in spinners:
            p.start()
        time.sleep(0.6)  # long enough for the policy's /proc window to see them
        clicks = time_clicks(backend, embedding, image.shape[:2], args.clicks,
                             policy if use_policy else None)
        stop.set()
        for p in spinners:
            p.join()
        row(f"{args.spinners} busy process", use_policy, clicks=clicks)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["sam2.1-tiny"])
    parser.add_argument("--clicks", type=int, default=40)
    parser.add_argument("--spinners", type=int, default=1)
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    photo = args.media / "truck.jpg"
    if photo.is_file():
        image, name = load_photo(photo), photo.name
    else:
        image, name = np.random.default_rng(0).integers(0, 255, (768, 1024, 3), np.uint8), \
            "a random 1024 x 768 image"
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; image: {name}; "
          f"{args.clicks} point clicks per row, 30 ms apart")
    rows = []
    for model_id in args.models:
        rows += run_model(model_id, args, image)
    quiet = {r["model"]: r["p95"] for r in rows if r["situation"] == "quiet"}
    print("\n| model | precision | situation | policy | decode threads | click p50 ms | "
          "click p95 ms | p95 / quiet p95 | encodes/min |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = r["p95"] / quiet[r["model"]]
        encodes = "" if r["encodes_per_min"] is None else f"{r['encodes_per_min']:.1f}"
        print(f"| {r['model']} | {r['precision']} | {r['situation']} | {r['policy']} | "
              f"{r['threads']} | {r['p50']:.1f} | {r['p95']:.1f} | {ratio:.2f}x | {encodes} |")
    print("\ntarget: p95 with something else running <= 2x the quiet p95 (policy on)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
