"""Soak: mixed traffic for ``--minutes`` on 127.0.0.1; does resident memory stay under the budget
and stop growing?

    python benchmarks/bench_soak.py                            # 30 minutes, 6GiB budget
    python benchmarks/bench_soak.py --minutes 2 --budget 4GiB  # a quick check

The app runs in a process of its own (so its memory is measured alone), started by this script
with ``--serve``: the real app (``app.build_demo`` / ``app.launch`` with the flags below:
GrabCut and a random-weight full-size SAM 2.1 tiny, CPU, fp32, ``--memory-budget``,
``--api-open-local``). Inside it one thread plays the browser tabs that come and go: every
``--page-every`` seconds a new tab opens with a new image (a ``Session`` made, set and tracked
as the Segment view's upload does) and, beyond ``--pages`` open, the oldest tab closes (released
as ``demo.unload`` does); each tab's secret token is written to ``pages.jsonl`` for the
traffic below, since only a page receives it.

Traffic from this process, all at once, until the time is up:

* page clicks: points, boxes and hovers on the newest tabs through the click route
  (``/samwb/segment/*``), as the canvas sends them (the first click on a tab encodes it);
* REST: ``POST /v1/segment`` with a box on a new image, one after the other;
* everything: ``/segment_everything`` (16 x 16 grid) on a new image every ``--everything-every``
  seconds (``gradio_client``);
* video: ``/track`` of a short clip (``--track-frames`` frames) every ``--track-every`` seconds.

The server's RSS is sampled every 10 s. Printed: the peak, the budget, the slope of the last
third (MB/min, a least-squares line), requests done and refused, then five ``/track`` runs in a
row with RSS after each (targets: RSS never above the budget; slope under 1 MB/min once warm;
the fifth track ends where the first did), and the app's own ``/metrics`` at the end.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_common import DEFAULT_CACHE, DEFAULT_MEDIA  # noqa: E402

MODEL = "sam2.1-tiny"
SAMPLE_EVERY_S = 10.0
MB = 1e6


# --- the server side (--serve) ----------------------------------------------------------------

def image_for(seed: int, height: int = 768, width: int = 1024) -> np.ndarray:
    """A distinct image per seed (a new cache entry each): noise with a flat object."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    pixels[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = rng.integers(
        0, 256, 3, dtype=np.uint8)
    return pixels


def serve(args: argparse.Namespace, app_args: list[str]) -> None:
    """Run the app and the tabs that come and go (see the module docstring) until SIGINT."""
    import app
    from sam_backends.images import image_digest
    from workbench.session import Session

    config = app.config_from_args(app_args)
    demo = app.build_demo(config)
    app.launch(demo, prevent_thread_lock=True, quiet=True)
    ctx = demo.ctx
    print(f"[serve] {ctx.memory.describe()}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pages = Path(args.work) / "pages.jsonl"
    open_ids: list[str] = []
    n = 0
    while not stop.wait(0 if n == 0 else args.page_every):
        n += 1
        image = image_for(100_000 + n)
        session = Session(f"soak-{n}", MODEL)
        session.set_image(image, image_digest(image), f"tab{n}.png")
        try:
            ctx.sessions.track(session, "127.0.0.1")
        except Exception as exc:  # noqa: BLE001 - a refused tab is counted by the registry
            print(f"[serve] tab {n} refused: {exc}", flush=True)
            continue
        open_ids.append(session.session_id)
        with pages.open("a") as handle:
            handle.write(json.dumps({"token": session.token, "gen": session.generation,
                                     "h": image.shape[0], "w": image.shape[1]}) + "\n")
        while len(open_ids) > args.pages:
            ctx.sessions.release(open_ids.pop(0))  # the tab closed
    demo.close()
    ctx.close()


# --- the client side --------------------------------------------------------------------------

def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / MB
    return float("nan")


def png_of(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def clip_for(folder: Path, frames: int) -> Path:
    """The shared dog clip when present, else a synthetic one (a square moving on noise)."""
    shared = DEFAULT_MEDIA / "01_dog.mp4"
    if shared.is_file():
        return shared
    import av

    path = folder / "clip.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(max(frames, 4)):
            frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
            frame[60:180, 40 + 10 * i: 160 + 10 * i] = (200, 40, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


class Traffic:
    """The client loops, sharing a stop event and counters."""

    def __init__(self, url: str, work: Path, args: argparse.Namespace) -> None:
        self.url, self.work, self.args = url, work, args
        self.stop = threading.Event()
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.seed = 0

    def count(self, kind: str, status: int | str) -> None:
        with self.lock:
            self.counts[f"{kind} {status}"] += 1

    def next_seed(self) -> int:
        with self.lock:
            self.seed += 1
            return self.seed

    def pages(self) -> list[dict]:
        path = self.work / "pages.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()[-3:] if line]

    def clicks(self) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=120) as client:
            i = 0
            while not self.stop.is_set():
                pages = self.pages()
                if not pages:
                    self.stop.wait(1)
                    continue
                page = pages[i % len(pages)]
                h, w = page["h"], page["w"]
                op = ("point", "box", "hover")[i % 3]
                body = {"token": page["token"], "gen": page["gen"]}
                if op == "box":
                    body["box"] = [w * 0.2, h * 0.2, w * 0.8, h * 0.8]
                else:
                    body.update(x=w * (0.3 + 0.04 * (i % 10)), y=h / 2, label=1)
                    if op == "hover":
                        body["seq"] = i
                response = client.post(f"samwb/segment/{op}", json=body)
                self.count("click", response.status_code)
                i += 1
                self.stop.wait(0.5)

    def rest(self) -> None:
        import httpx

        with httpx.Client(base_url=self.url, timeout=300) as client:
            while not self.stop.is_set():
                image = image_for(self.next_seed())
                h, w = image.shape[:2]
                body = {"image": "data:image/png;base64," + base64.b64encode(
                    png_of(image)).decode(), "model": MODEL, "mask_only": True,
                    "objects": [{"box": [w // 4, h // 4, 3 * w // 4, 3 * h // 4]}]}
                try:
                    response = client.post("v1/segment", json=body)
                    self.count("rest", response.status_code)
                    if response.status_code in (429, 503):
                        self.stop.wait(float(response.headers.get("retry-after", 2)))
                except httpx.HTTPError as exc:
                    self.count("rest", type(exc).__name__)

    def gradio_loop(self, every: float, call) -> None:
        from gradio_client import Client

        client = Client(self.url, verbose=False)
        while not self.stop.wait(every):
            call(client)

    def everything(self, client) -> None:
        from gradio_client import handle_file

        path = self.work / f"everything-{self.next_seed()}.png"
        path.write_bytes(png_of(image_for(500_000 + self.seed, 480, 640)))
        try:
            client.predict(handle_file(str(path)), MODEL, '{"points_per_side": 16}',
                           api_name="/segment_everything")
            self.count("everything", "ok")
        except Exception as exc:  # noqa: BLE001 - counted, the soak goes on
            self.count("everything", f"refused ({str(exc)[:40]})")
        finally:
            path.unlink(missing_ok=True)

    def track(self, client) -> None:
        from gradio_client import handle_file

        prompts = json.dumps({"objects": [{"id": 1, "frame": 0, "box": [40, 60, 160, 180]}]})
        try:
            client.predict(handle_file(str(self.clip)), MODEL, prompts, 0, 0, 0,
                           self.args.track_frames, api_name="/track")
            self.count("track", "ok")
        except Exception as exc:  # noqa: BLE001 - counted, the soak goes on
            self.count("track", f"refused ({str(exc)[:40]})")


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    if len(samples) < 2:
        return float("nan")
    t = np.array([s[0] for s in samples]) / 60.0
    y = np.array([s[1] for s in samples])
    return float(np.polyfit(t, y, 1)[0])


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 600) -> None:
    import httpx

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if process.poll() is not None:
            raise SystemExit(f"the app exited with {process.returncode}")
        try:
            if httpx.get(url + "healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the app did not start in time")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--budget", default="6GiB", help="--memory-budget of the app")
    parser.add_argument("--pages", type=int, default=8, help="tabs open at once")
    parser.add_argument("--page-every", type=float, default=5.0)
    parser.add_argument("--everything-every", type=float, default=60.0)
    parser.add_argument("--track-every", type=float, default=120.0)
    parser.add_argument("--track-frames", type=int, default=4)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args, app_args = parser.parse_known_args(argv)
    if args.serve:
        serve(args, [a for a in app_args if a != "--"])
        return

    from benchmarks.bench_common import ensure_random_checkpoint
    from benchmarks.bench_memory import free_port
    from sam_backends.cache import parse_bytes

    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    checkpoint = ensure_random_checkpoint(MODEL, args.cache)
    port = free_port()
    command = [sys.executable, __file__, "--serve", "--work", str(work), "--pages",
               str(args.pages), "--page-every", str(args.page_every), "--",
               "--host", "127.0.0.1", "--port", str(port), "--models", f"grabcut,{MODEL}",
               "--default-model", MODEL, "--checkpoint", f"{MODEL}={checkpoint}",
               "--device", "cpu", "--precision", "fp32", "--memory-budget", args.budget,
               "--api-open-local", "--temp-dir", str(work / "temp"), "--checkpoint-dir",
               str(work / "checkpoints")]
    env = dict(os.environ, SAM_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    log = (work / "server.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    budget_mb = parse_bytes(args.budget) / MB
    samples: list[tuple[float, float]] = []
    traffic = Traffic(url, work, args)
    try:
        wait_ready(url, process)
        traffic.clip = clip_for(work, args.track_frames)
        start = time.monotonic()
        samples.append((0.0, rss_mb(process.pid)))
        print(f"app pid {process.pid} at {url}; RSS at start {samples[0][1]:.0f} MB; budget "
              f"{budget_mb:.0f} MB; {args.minutes:g} min of traffic", flush=True)
        loops = [threading.Thread(target=traffic.clicks, daemon=True),
                 threading.Thread(target=traffic.rest, daemon=True),
                 threading.Thread(target=traffic.gradio_loop, daemon=True,
                                  args=(args.everything_every, traffic.everything)),
                 threading.Thread(target=traffic.gradio_loop, daemon=True,
                                  args=(args.track_every, traffic.track))]
        for loop in loops:
            loop.start()
        end = start + args.minutes * 60
        while time.monotonic() < end:
            time.sleep(min(SAMPLE_EVERY_S, max(0.0, end - time.monotonic())))
            samples.append((time.monotonic() - start, rss_mb(process.pid)))
            print(f"  {samples[-1][0] / 60:5.1f} min: RSS {samples[-1][1]:,.0f} MB", flush=True)
        traffic.stop.set()
        for loop in loops:
            loop.join(600)
        from gradio_client import Client

        client = Client(url, verbose=False)
        tracks = [rss_mb(process.pid)]
        for _ in range(5):
            traffic.track(client)
            tracks.append(rss_mb(process.pid))
        import httpx

        metrics = httpx.get(url + "metrics", timeout=30).text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
    peak = max(rss for _, rss in samples)
    last_third = [s for s in samples if s[0] >= samples[-1][0] * 2 / 3]
    print(f"\n{args.minutes:g} min, budget {budget_mb:,.0f} MB: peak RSS {peak:,.0f} MB "
          f"({'under' if peak <= budget_mb else 'OVER'} the budget); slope of the last third "
          f"{slope_mb_per_min(last_third):+.2f} MB/min ({len(last_third)} samples)")
    print("requests: " + ", ".join(f"{k}: {v}" for k, v in sorted(traffic.counts.items())))
    print("five /track runs in a row, RSS MB: before " + " -> ".join(f"{r:,.0f}" for r in tracks)
          + f"; the fifth ends {tracks[-1] - tracks[1]:+,.0f} MB from the first")
    wanted = ("samwb_process_resident_memory_bytes", "samwb_embedding_cache_bytes",
              "samwb_embedding_cache_entries", "samwb_embedding_cache_trims_total",
              "samwb_sessions ", "samwb_session_bytes", "samwb_session_history_drops_total",
              "samwb_memory_share_bytes")
    print("the app's /metrics at the end:")
    for line in metrics.splitlines():
        if line.startswith(wanted):
            print("  " + line)
    print(f"server log: {work / 'server.log'}")


if __name__ == "__main__":
    main()
