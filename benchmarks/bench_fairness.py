"""Fairness under a flood, on 127.0.0.1 only: does one page's flood slow or refuse another's
clicks?

    python benchmarks/bench_fairness.py                    # SAM 2.1 tiny (random weights), fp32
    python benchmarks/bench_fairness.py --seconds 10 --in-flight 16

One app is started in this process (random-weight full-size SAM 2.1 tiny; speed does not depend
on weight values). Two page sessions are opened on it, each with its own photo already encoded,
and both talk to the page's click route (``/samwb/segment/*``) exactly as the canvas does:

* **polite**: one click every ``--every`` seconds (a person), timed from request to answer;
* **flood**: ``--in-flight`` requests at once for ``--seconds`` from a process of its own,
  first hovers that all carry the same ``seq`` (so "older than the newest" never drops them),
  then boxes.

The polite side is measured quiet (no flood), then under each flood, in one run. Printed: p50
and p95 of the polite clicks, how many were refused, and what the flood got (answers, refusals
as "busy", hovers replaced or dropped). The target (issue "Fair to every user"): with one
session flooding, the polite click p50 stays within 2x its quiet p50 and none is refused.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_common import (  # noqa: E402
    DEFAULT_CACHE,
    DEFAULT_MEDIA,
    cpu_name,
    ensure_random_checkpoint,
    load_photo,
    percentile,
)


def open_session(ctx, name: str, image, model_id: str):
    """A page session as the Segment view makes one, with its image encoded."""
    from sam_backends.images import image_digest
    from workbench.session import Session

    session = Session(name, model_id)
    session.set_image(image, image_digest(image), f"{name}.jpg")
    ctx.sessions.track(session, "127.0.0.1")
    ctx.encode(model_id, session.image, session.digest)
    return session


def post(client, op: str, body: dict) -> tuple[int, dict, float]:
    start = time.perf_counter()
    response = client.post(f"samwb/segment/{op}", json=body)
    seconds = time.perf_counter() - start
    try:
        data = response.json()
    except ValueError:
        data = {}
    return response.status_code, data, seconds


def polite_clicks(url: str, session, count: int, every: float, stop: threading.Event
                  ) -> tuple[list[float], int]:
    import httpx

    times, refused = [], 0
    with httpx.Client(base_url=url, timeout=60) as client:
        h, w = session.image.shape[:2]
        for i in range(count):
            x, y = (0.2 + 0.6 * ((i * 7) % 10) / 10) * w, (0.3 + 0.4 * ((i * 3) % 10) / 10) * h
            status, data, seconds = post(client, "point", {
                "token": session.token, "gen": session.generation, "x": x, "y": y, "label": 1})
            if status == 200:
                times.append(seconds)
            else:
                refused += 1
            if status == 200 and i % 4 == 3:  # keep the object small: start over now and then
                with session.lock:
                    session.workspace = session.workspace.update_active(lambda o: o.clear())
            if stop.wait(every):
                break
    return times, refused


def flood(url: str, token: str, gen: int, size: tuple[int, int], op: str, in_flight: int,
          seconds: float) -> dict[str, int]:
    """``in_flight`` requests at once for ``seconds`` (run in a process of its own, so the
    flood's client threads do not share the server's interpreter lock)."""
    import httpx

    counts = {"answered": 0, "busy": 0, "stale": 0, "other": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    h, w = size

    def worker(n: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while time.monotonic() < deadline:
                body = {"token": token, "gen": gen}
                if op == "hover":
                    body.update(x=w * (0.3 + 0.01 * (n % 30)), y=h / 2, label=1, seq=7)
                else:
                    body.update(box=[w * 0.1, h * 0.1, w * (0.5 + 0.01 * (n % 30)), h * 0.8])
                status, data, _ = post(client, op, body)
                kind = ("stale" if data.get("stale") else "answered") if status == 200 else (
                    "busy" if status == 503 else "stale" if status == 409 else "other")
                with lock:
                    counts[kind] += 1
                if status == 503:
                    time.sleep(0.01)

    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(worker, range(in_flight)))
    return counts


def measure(url: str, polite, flooder, op: str | None, args) -> dict:
    stop = threading.Event()
    count = max(3, int(args.seconds / args.every))
    result: dict = {}
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        flooding = (pool.submit(flood, url, flooder.token, flooder.generation,
                                flooder.image.shape[:2], op, args.in_flight, args.seconds)
                    if op else None)
        if op:
            time.sleep(0.5)  # the flood is under way before the first polite click
        times, refused = polite_clicks(url, polite, count, args.every, stop)
        if flooding is not None:
            result["flood"] = flooding.result()
    result.update(p50_ms=1000 * (percentile(times, 50) or 0),
                  p95_ms=1000 * (percentile(times, 95) or 0), clicks=len(times), refused=refused)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sam2.1-tiny")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--every", type=float, default=0.3)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)

    import app
    from sam_backends import get_spec
    from workbench.config import AppConfig, ExtraModel

    work = Path(tempfile.mkdtemp(prefix="bench-fairness-"))
    spec = get_spec(args.model)
    path = ensure_random_checkpoint(args.model, args.cache)
    config = AppConfig(models=("grabcut",), extra_models=(ExtraModel(spec, path),),
                       default_model=spec.model_id, device="cpu", precision="fp32",
                       checkpoint_dir=work / "checkpoints", temp_dir=work / "temp")
    photos = [args.media / name for name in ("truck.jpg", "cars.jpg")]
    if all(p.is_file() for p in photos):
        images = [load_photo(p) for p in photos]
    else:
        from sam_backends.testing.random_models import synthetic_image

        print(f"{args.media} has no truck.jpg/cars.jpg: synthetic scenes instead", flush=True)
        images = [synthetic_image(768, 1024, seed) for seed in (1, 2)]
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    demo = app.build_demo(config)
    _, url, _ = app.launch(demo, server_name="127.0.0.1", server_port=None,
                           prevent_thread_lock=True, quiet=True, share=False)
    try:
        ctx = demo.ctx
        polite = open_session(ctx, "polite", images[0], spec.model_id)
        flooder = open_session(ctx, "flood", images[1], spec.model_id)
        rows = [("quiet", measure(url, polite, flooder, None, args)),
                ("flood: hovers, constant seq", measure(url, polite, flooder, "hover", args)),
                ("flood: boxes", measure(url, polite, flooder, "box", args))]
    finally:
        demo.close()
        demo.ctx.close()
    quiet = rows[0][1]["p50_ms"] or 1.0
    print(f"\n{spec.display_name} (random weights), fp32, {os.cpu_count()} cores: {cpu_name()}")
    print(f"polite page: a click every {args.every} s; flood: {args.in_flight} in flight for "
          f"{args.seconds:g} s\n")
    print("| phase | polite p50 ms | p95 ms | x quiet p50 | clicks | refused | flood answered "
          "| flood busy | flood stale/replaced |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        f = r.get("flood", {})
        print(f"| {name} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p50_ms'] / quiet:.2f} "
              f"| {r['clicks']} | {r['refused']} | {f.get('answered', '-')} | {f.get('busy', '-')} "
              f"| {f.get('stale', '-')} |")


if __name__ == "__main__":
    main()
