"""The running app under load, on 127.0.0.1 only: many sessions at once, a burst beyond the
bounds, and a person's click in the page while the burst runs.

    python benchmarks/bench_load.py                     # 50 sessions x 5 prompts, SAM 2.1 tiny
    python benchmarks/bench_load.py --sessions 10 --model grabcut --no-browser

Three phases against one app started in this process (random-weight full-size SAM 2.1 tiny in
exact fp32, or GrabCut; checkpoints cached outside the repository):

1. **sessions**: ``--sessions`` clients at once, each with its own image (crops of the photos in
   ``../shared/media``, or synthetic scenes when absent), ``--prompts`` calls of ``/segment``
   each, as a polite client makes them: a "busy, retry in N s" answer is waited out and the
   call sent again. Every returned mask is checked afterwards against the engine run here on
   that session's own image and prompt (exact fp32: equal pixel for pixel), so a mask computed
   on another session's image would be caught. Time to answer p50/p95/p99, waits included, and
   the number of busy answers.
2. **burst**: ``--burst`` ``gradio_client`` calls at the same moment (clients made beforehand),
   beyond the API lane (1 running + ``api_max_waiting``) and Gradio's queue bound: how many were
   served, refused by the lane, refused by the queue (503), and how long a refusal took; then
   the same burst on the REST API (``POST /v1/segment``: 200 or 503 with ``Retry-After``).
3. **click during a burst** (Playwright + Debian Chromium, skipped with ``--no-browser`` or
   when absent): a page with an encoded image; clicks on the canvas timed from the mouse event
   to the redrawn overlay, first on a quiet server, then while 24 API calls on new images (each
   needing an encode) arrive at once.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from benchmarks.bench_common import (  # noqa: E402
    DEFAULT_CACHE,
    DEFAULT_MEDIA,
    ensure_random_checkpoint,
    load_photo,
    percentile,
    photo_paths,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


@dataclass
class Outcome:
    """One API call: ``kind`` is ok, lane_busy, queue_busy or error."""

    kind: str
    seconds: float
    session: int = -1
    prompt: dict = field(default_factory=dict)
    result: dict | None = None
    detail: str = ""
    refusals: int = 0  # "busy" answers before this one (a polite client waits and retries)


def session_images(count: int, media: Path, folder: Path) -> list[Path]:
    """``count`` distinct images: crops of the photos at sizes 480..800 px wide."""
    rng = np.random.default_rng(0)
    photos = [load_photo(p) for p in photo_paths(media, quick=False)] if media.is_dir() else []
    paths = []
    for n in range(count):
        if photos:
            photo = photos[n % len(photos)]
            width = int(rng.integers(480, min(800, photo.shape[1]) + 1))
            height = min(photo.shape[0], int(width * 0.7))
            x = int(rng.integers(0, photo.shape[1] - width + 1))
            y = int(rng.integers(0, photo.shape[0] - height + 1))
            pixels = np.ascontiguousarray(photo[y:y + height, x:x + width])
        else:
            from sam_backends.testing.random_models import synthetic_image

            pixels = synthetic_image(int(rng.integers(300, 560)), int(rng.integers(400, 800)),
                                     seed=n)
        from PIL import Image

        path = folder / f"session{n:03d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def prompts_for(width: int, height: int, count: int) -> list[dict]:
    """Fixed prompts per image size: points on a grid, then boxes around the centre."""
    prompts = []
    for k in range(count):
        if k % 2 == 0:
            fx, fy = [(0.5, 0.5), (0.3, 0.6), (0.7, 0.4)][(k // 2) % 3]
            prompts.append({"points": [[int(width * fx), int(height * fy)]], "labels": [1]})
        else:
            s = 0.2 + 0.1 * ((k // 2) % 3)
            prompts.append({"box": [int(width * (0.5 - s)), int(height * (0.5 - s)),
                                    int(width * (0.5 + s)), int(height * (0.5 + s))]})
    return prompts


def classify(exc: Exception) -> tuple[str, str]:
    text = str(exc)
    if "busy" in text.lower() and "queue is full" in text.lower():
        return "queue_busy", text
    if "busy" in text.lower():
        return "lane_busy", text
    return "error", text


def make_clients(url: str, count: int) -> list:
    """``count`` gradio_client sessions, made one after the other (a client's start fetches
    the app's config: made all at once they would measure that, not the burst)."""
    from gradio_client import Client

    return [Client(url, verbose=False) for _ in range(count)]


def call_segment(client, image: Path, model: str, prompt: dict, session: int,
                 barrier: threading.Barrier | None = None) -> Outcome:
    """One call; with ``barrier`` every call starts at the same moment."""
    from gradio_client import handle_file

    if barrier is not None:
        barrier.wait(600)
    start = time.perf_counter()
    try:
        result, _ = client.predict(handle_file(str(image)), model, json.dumps(prompt),
                                   api_name="/segment")
        return Outcome("ok", time.perf_counter() - start, session, prompt, result)
    except Exception as exc:  # noqa: BLE001 - refusals arrive as the client's exceptions
        kind, detail = classify(exc)
        return Outcome(kind, time.perf_counter() - start, session, prompt, detail=detail)


def call_rest(url: str, body: dict, barrier: threading.Barrier) -> Outcome:
    """One POST /v1/segment (the app runs open for local use), all starting together."""
    import httpx

    barrier.wait(600)
    start = time.perf_counter()
    try:
        response = httpx.post(url + "v1/segment", json=body, timeout=120)
    except httpx.HTTPError as exc:
        return Outcome("error", time.perf_counter() - start, detail=str(exc))
    seconds = time.perf_counter() - start
    if response.status_code == 200:
        return Outcome("ok", seconds)
    if response.status_code == 503 and "retry-after" in response.headers:
        return Outcome("lane_busy", seconds, detail=response.headers["retry-after"])
    return Outcome("error", seconds, detail=f"{response.status_code} {response.text[:100]}")


def retry_after(text: str) -> float:
    match = re.search(r"[Rr]etry in about (\d+) s", text)
    return min(10.0, float(match.group(1))) if match else 2.0


def run_session(url: str, image: Path, model: str, count: int, session: int) -> list[Outcome]:
    """A polite client: its prompts one after the other; a "busy" answer is waited out as it
    says (at most 10 s at a time, 60 tries) and the prompt sent again. ``seconds`` is the time
    to the answer, waits included."""
    from gradio_client import Client, handle_file
    from PIL import Image

    with Image.open(image) as opened:
        width, height = opened.size
    client = Client(url, verbose=False)
    outcomes = []
    for prompt in prompts_for(width, height, count):
        start = time.perf_counter()
        refusals = 0
        while True:
            try:
                result, _ = client.predict(handle_file(str(image)), model, json.dumps(prompt),
                                           api_name="/segment")
                outcome = Outcome("ok", time.perf_counter() - start, session, prompt, result,
                                  refusals=refusals)
                break
            except Exception as exc:  # noqa: BLE001
                kind, detail = classify(exc)
                if kind.endswith("busy") and refusals < 60:
                    refusals += 1
                    time.sleep(retry_after(detail))
                    continue
                outcome = Outcome(kind, time.perf_counter() - start, session, prompt,
                                  detail=detail, refusals=refusals)
                break
        outcomes.append(outcome)
    return outcomes


def verify(outcomes: list[Outcome], images: list[Path], backend) -> tuple[int, int]:
    """(masks equal to the engine's on the session's own image, masks checked)."""
    from sam_backends import Prompts
    from sam_backends.images import load_image
    from sam_backends.masks import decode_rle

    equal = checked = 0
    by_session: dict[int, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.kind == "ok":
            by_session.setdefault(outcome.session, []).append(outcome)
    for session, done in sorted(by_session.items()):
        image = load_image(images[session])
        embedding = backend.encode(image)
        for outcome in done:
            p = outcome.prompt
            prompts = Prompts(points=p.get("points", []), labels=p.get("labels", []),
                              box=p.get("box"))
            expected = backend.predict(embedding, prompts)
            got = decode_rle(outcome.result["masks"][outcome.result["best"]]["segmentation"])
            checked += 1
            equal += bool(np.array_equal(got, expected.mask(expected.best_index)))
    return equal, checked


def stats(values: list[float]) -> str:
    if not values:
        return "-"
    return " / ".join(f"{percentile(values, q):.2f}" for q in (50, 95, 99))


def browser_clicks(url: str, image: Path, burst: callable, clicks: int) -> dict[str, list[float]]:
    """Click latency (ms) from the mouse event to the redrawn overlay, quiet and under burst."""
    from playwright.sync_api import sync_playwright

    timings: dict[str, list[float]] = {"quiet": [], "burst": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.locator("#image-upload input[type=file]").set_input_files(str(image))
        page.wait_for_selector("[data-testid=prompt-canvas]", timeout=180_000)
        page.wait_for_function("() => !document.querySelector('.progress-text')",
                               timeout=180_000)
        box = page.locator("[data-testid=prompt-canvas]").bounding_box()

        def click(n: int) -> float:
            before = page.eval_on_selector("#canvas [data-render]",
                                           "e => Number(e.dataset.render)")
            x = box["x"] + box["width"] * (0.3 + 0.05 * (n % 8))
            y = box["y"] + box["height"] * 0.5
            start = time.perf_counter()
            page.mouse.click(x, y)
            page.wait_for_function(
                "n => { const e = document.querySelector('#canvas [data-render]');"
                " return e && Number(e.dataset.render) > n; }", arg=before, timeout=60_000)
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
            return (time.perf_counter() - start) * 1000

        for n in range(clicks):
            timings["quiet"].append(click(n))
        done = threading.Event()
        runner = threading.Thread(target=lambda: (burst(), done.set()))
        runner.start()
        time.sleep(1.0)  # let the burst fill the lanes
        n = 0
        while not done.is_set() and n < clicks:
            timings["burst"].append(click(n))
            n += 1
        runner.join()
        browser.close()
    return timings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--model", default="sam2.1-tiny", choices=("sam2.1-tiny", "grabcut"))
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "load.json")
    args = parser.parse_args(argv)

    from app_harness import running_app

    from sam_backends import create_backend, get_spec
    from workbench.config import AppConfig, ExtraModel

    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    extra, model_id, backend = (), "grabcut", create_backend("grabcut")
    if args.model != "grabcut":
        path = ensure_random_checkpoint(args.model, args.cache)
        spec = get_spec(args.model)
        extra = (ExtraModel(spec, path),)
        model_id = spec.model_id
        backend = create_backend(spec, checkpoint=path, device="cpu", precision="fp32")
    config = AppConfig(models=("grabcut",), extra_models=extra, default_model=model_id,
                       device="cpu", precision="fp32", checkpoint_dir=work / "checkpoints",
                       cache_bytes="1GiB", temp_dir=work / "temp", max_image_pixels=4_000_000,
                       api_open_local=True, rate_limit_per_min=0)
    images = session_images(args.sessions, args.media, work)
    report: dict = {"model": model_id, "sessions": args.sessions, "prompts": args.prompts,
                    "cpu": os.cpu_count()}
    with running_app(config) as running:
        url = running.url
        print(f"app at {url}; {args.sessions} sessions x {args.prompts} prompts on {model_id}",
              flush=True)
        start = time.perf_counter()
        with ThreadPoolExecutor(args.sessions) as pool:
            outcomes = [o for batch in pool.map(
                lambda n: run_session(url, images[n], model_id, args.prompts, n),
                range(args.sessions)) for o in batch]
        wall = time.perf_counter() - start
        kinds = {k: sum(o.kind == k for o in outcomes)
                 for k in ("ok", "lane_busy", "queue_busy", "error")}
        ok_seconds = [o.seconds for o in outcomes if o.kind == "ok"]
        report["sessions_phase"] = {"wall_s": wall, "kinds": kinds,
                                    "busy_answers_waited_out": sum(o.refusals for o in outcomes),
                                    "latency_p50_p95_p99_s": stats(ok_seconds),
                                    "errors": sorted({o.detail[:120] for o in outcomes
                                                      if o.kind == "error"})}

        cached = images[0]
        clients = make_clients(url, args.burst)
        barrier = threading.Barrier(args.burst)
        with ThreadPoolExecutor(args.burst) as pool:
            burst = list(pool.map(
                lambda n: call_segment(clients[n], cached, model_id, {"box": [10, 10, 200, 150]},
                                       n, barrier),
                range(args.burst)))
        from PIL import Image

        with Image.open(cached) as opened:
            buffer = io.BytesIO()
            opened.save(buffer, format="PNG")
        body = {"image": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode(),
                "model": model_id, "objects": [{"box": [10, 10, 200, 150]}], "overlay": False,
                "cutout": "none"}
        barrier = threading.Barrier(args.burst)
        with ThreadPoolExecutor(args.burst) as pool:
            rest = list(pool.map(lambda _: call_rest(url, body, barrier), range(args.burst)))
        report["rest_burst_phase"] = {
            "calls": args.burst,
            "kinds": {k: sum(o.kind == k for o in rest) for k in ("ok", "lane_busy", "error")},
            "refusal_p50_p95_p99_s": stats([o.seconds for o in rest if o.kind == "lane_busy"]),
            "served_p50_p95_p99_s": stats([o.seconds for o in rest if o.kind == "ok"]),
            "errors": sorted({o.detail[:120] for o in rest if o.kind == "error"}),
        }
        report["burst_phase"] = {
            "calls": args.burst,
            "kinds": {k: sum(o.kind == k for o in burst)
                      for k in ("ok", "lane_busy", "queue_busy", "error")},
            "refusal_p50_p95_p99_s": stats([o.seconds for o in burst if "busy" in o.kind]),
            "served_p50_p95_p99_s": stats([o.seconds for o in burst if o.kind == "ok"]),
            "lane_refused_total": running.ctx.api_lane.refused,
            "errors": sorted({o.detail[:120] for o in burst if o.kind == "error"}),
        }

        if not args.no_browser and Path(CHROMIUM).exists():
            (work / "burst").mkdir()
            fresh = session_images(24, args.media, work / "burst")
            burst_clients = make_clients(url, len(fresh))

            def encode_burst() -> None:  # 24 new images at once: each needs an encode
                with ThreadPoolExecutor(len(fresh)) as pool:
                    list(pool.map(lambda n: call_segment(burst_clients[n], fresh[n], model_id,
                                                         {"points": [[50, 50]]}, n),
                                  range(len(fresh))))

            clicks = browser_clicks(url, images[1], encode_burst, args.clicks)
            report["click_ms"] = {name: {"n": len(v), "p50": percentile(v, 50),
                                         "p95": percentile(v, 95), "max": max(v) if v else None}
                                  for name, v in clicks.items()}
        report["temp_usage_bytes"] = running.ctx.temp.usage().bytes
    equal, checked = verify(outcomes, images, backend)
    report["masks_equal_to_own_image"] = f"{equal}/{checked}"

    print("\n| phase | figure | value |\n|---|---|---|")
    s = report["sessions_phase"]
    print(f"| sessions | calls ok / lane busy / queue busy / error | {s['kinds']['ok']} / "
          f"{s['kinds']['lane_busy']} / {s['kinds']['queue_busy']} / {s['kinds']['error']} |")
    print(f"| sessions | busy answers waited out and retried | "
          f"{s['busy_answers_waited_out']} |")
    print(f"| sessions | time to answer p50 / p95 / p99 s (waits included) | "
          f"{s['latency_p50_p95_p99_s']} |")
    print(f"| sessions | wall s | {s['wall_s']:.1f} |")
    print(f"| sessions | masks equal to the engine on the session's own image | "
          f"{report['masks_equal_to_own_image']} |")
    b = report["burst_phase"]
    print(f"| burst of {b['calls']} | ok / lane busy / queue busy / error | {b['kinds']['ok']} / "
          f"{b['kinds']['lane_busy']} / {b['kinds']['queue_busy']} / {b['kinds']['error']} |")
    print(f"| burst | refusal p50 / p95 / p99 s | {b['refusal_p50_p95_p99_s']} |")
    print(f"| burst | served p50 / p95 / p99 s | {b['served_p50_p95_p99_s']} |")
    r = report["rest_burst_phase"]
    print(f"| REST burst of {r['calls']} | 200 / 503 busy / error | {r['kinds']['ok']} / "
          f"{r['kinds']['lane_busy']} / {r['kinds']['error']} |")
    print(f"| REST burst | 503 p50 / p95 / p99 s | {r['refusal_p50_p95_p99_s']} |")
    for name, c in report.get("click_ms", {}).items():
        if c["n"]:
            print(f"| page click, {name} | p50 / p95 / max ms (n={c['n']}) | {c['p50']:.0f} / "
                  f"{c['p95']:.0f} / {c['max']:.0f} |")
    print(f"| after | temp folder bytes | {report['temp_usage_bytes']:,} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
