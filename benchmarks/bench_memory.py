"""Memory and disk over many short sessions: does anything grow without bound?

    python benchmarks/bench_memory.py                         # 1,000 sessions, GrabCut
    python benchmarks/bench_memory.py --sessions 100 --model sam2.1-tiny

Starts ``python app.py`` as its own process on 127.0.0.1 (so its memory is measured alone) with
a small embedding-cache bound, then runs ``--sessions`` short sessions, ``--workers`` at a time:
each a fresh ``gradio_client`` session that uploads its own image (distinct pixels, so every one
is a new cache entry) and asks ``/segment`` for one box. The server's resident memory (RSS) is
sampled before, every ``--every`` sessions and after; the run's temp folder is measured after
the last session and once more after Ctrl-C (a clean shutdown must remove it). With
``--model sam2.1-tiny`` a random-weight full-size checkpoint is built once and passed with
``--checkpoint`` (checkpoints cached outside the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_common import DEFAULT_CACHE, ensure_random_checkpoint  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def folder_bytes(folder: Path) -> tuple[int, int]:
    from workbench.temp_root import usage

    found = usage(folder)
    return found.files, found.bytes


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 300) -> None:
    import httpx

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if process.poll() is not None:
            raise SystemExit(f"the app exited with {process.returncode}")
        try:
            if httpx.get(url + "gradio_api/info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the app did not start in time")


def make_image(folder: Path, n: int, size: tuple[int, int]) -> Path:
    from PIL import Image

    rng = np.random.default_rng(n)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    pixels[size[1] // 4: 3 * size[1] // 4, size[0] // 4: 3 * size[0] // 4] = rng.integers(
        0, 256, 3, dtype=np.uint8)
    path = folder / f"s{n:05d}.png"
    Image.fromarray(pixels).save(path)
    return path


def one_session(url: str, image: Path, model: str, size: tuple[int, int]) -> bool:
    from gradio_client import Client, handle_file

    w, h = size
    box = [w // 4 - 5, h // 4 - 5, 3 * w // 4 + 5, 3 * h // 4 + 5]
    try:
        client = Client(url, verbose=False)
        client.predict(handle_file(str(image)), model, json.dumps({"box": box}),
                       api_name="/segment")
        return True
    except Exception as exc:  # noqa: BLE001 - counted and shown, the run goes on
        print(f"  session failed: {str(exc)[:120]}", flush=True)
        return False
    finally:
        image.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--model", default="grabcut", choices=("grabcut", "sam2.1-tiny"))
    parser.add_argument("--cache-bytes", default="8MiB")
    parser.add_argument("--size", default="200x150", help="image size WxH")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)

    size = tuple(int(v) for v in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    temp_parent = work / "temp"
    port = free_port()
    command = [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port),
               "--models", "grabcut" if args.model == "grabcut" else f"grabcut,{args.model}",
               "--default-model", args.model, "--device", "cpu", "--cache-bytes",
               args.cache_bytes, "--temp-dir", str(temp_parent), "--checkpoint-dir",
               str(work / "checkpoints")]
    if args.model != "grabcut":
        checkpoint = ensure_random_checkpoint(args.model, args.cache)
        command += ["--checkpoint", f"{args.model}={checkpoint}"]
    env = dict(os.environ, SAM_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    samples: list[tuple[int, float]] = []
    try:
        wait_ready(url, process)
        samples.append((0, rss_mib(process.pid)))
        print(f"app pid {process.pid} at {url}; RSS at start {samples[0][1]:.0f} MiB", flush=True)
        ok = 0
        start = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            for first in range(0, args.sessions, args.every):
                batch = range(first, min(args.sessions, first + args.every))
                images = [make_image(work, n, size) for n in batch]
                ok += sum(pool.map(lambda p: one_session(url, p, args.model, size), images))
                samples.append((batch[-1] + 1, rss_mib(process.pid)))
                print(f"  {batch[-1] + 1} sessions: RSS {samples[-1][1]:.0f} MiB", flush=True)
        wall = time.perf_counter() - start
        time.sleep(2)
        after_rss = rss_mib(process.pid)
        runs = list(temp_parent.glob("run-*"))
        temp_files, temp_size = folder_bytes(temp_parent)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    left_files, left_size = folder_bytes(temp_parent)
    print(f"\n{ok}/{args.sessions} sessions ok in {wall:.0f} s ({args.model}, cache bound "
          f"{args.cache_bytes}, {args.workers} at a time)\n")
    print("| sessions done | server RSS MiB |\n|---|---|")
    for done, rss in samples:
        print(f"| {done} | {rss:.0f} |")
    print(f"| after (idle 2 s) | {after_rss:.0f} |")
    print(f"\ntemp folder after the sessions: {temp_files} files, {temp_size / 1e6:.1f} MB "
          f"in {len(runs)} run folder(s)")
    print(f"temp folder after Ctrl-C: {left_files} files, {left_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
