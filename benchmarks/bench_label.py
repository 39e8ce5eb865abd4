"""``samwb label`` throughput: local workers, Ray on this machine, a two-node Ray cluster.

    python benchmarks/bench_label.py                # 200 images (issue 22's figure)
    python benchmarks/bench_label.py --count 24     # fewer images, a few minutes on 2 cores

Model: SAM 2.1 tiny at full size with random weights (a checkpoint in the official format,
built once into ~/.cache; nothing is downloaded). Mode: "boxes", one fixed box per image (the
middle half), so each image costs one encode and one decode: the time is the model's, not the
grid's post-processing. Images: the photos in ../shared/media/*.jpg (copied into a temporary
project folder, never into the repository) plus generated 1024x768 ones, up to ``--count``.
Precision "auto" (fp32 on a CPU without native bf16).

Configurations, each on a fresh copy of the project (same images, same run):

* local, 1 worker x 1 thread; local, 1 worker x 2 threads; local, 2 workers x 1 thread;
* Ray on this machine: ``ray.init(num_cpus=2)``, 2 actors x 1 CPU;
* a two-node Ray cluster on this machine: ``ray start --head --num-cpus=1`` and a worker node
  ``ray start --address=... --num-cpus=1``, then ``ray.init(address=...)``. The nodes run with
  ``--block`` and are stopped by their process ids at the end (not ``ray stop``, which would
  also stop other people's Ray processes on a shared machine).

Per configuration: wall time (model loads and actor starts included) and the steady rate
(images after the first result, over the time from the first to the last result). Ray's
overhead per image is against the local run on the same cores (2 workers x 1 thread).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from bench_common import DEFAULT_CACHE, DEFAULT_MEDIA, ensure_random_checkpoint  # noqa: E402

MODEL = "sam2.1-tiny"


def cpu_name() -> str:
    name, flags = platform.processor() or "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name in ("", "unknown CPU", "x86_64"):
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    avx = sorted(f for f in flags if f.startswith(("avx", "amx")))
    return f"{name}; {os.cpu_count()} CPUs; flags: {' '.join(avx) or 'no AVX'}"


def make_images(folder: Path, count: int, media: Path) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    photos = sorted(media.glob("*.jpg")) if media.is_dir() else []
    for i, photo in enumerate(photos[:count]):
        shutil.copyfile(photo, folder / f"photo{i}{photo.suffix}")  # a temporary project
    rng = np.random.default_rng(0)
    for i in range(len(photos[:count]), count):
        base = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        image = Image.fromarray(base).resize((1024, 768), Image.BILINEAR)
        image.save(folder / f"gen{i:04d}.jpg", quality=90)


def make_boxes(folder: Path, images: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "classes.txt").write_text("thing\n")
    for image in images.iterdir():
        (folder / f"{image.stem}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    return folder


def timed(source: Path, work: Path, name: str, run, models, executor) -> dict:
    from workbench.labeling import label_project
    from workbench.projects.store import ProjectStore

    folder = work / name
    shutil.copytree(source, folder)
    stamps: list[float] = []
    start = time.perf_counter()
    with ProjectStore.open(folder, create=True) as store:
        done = label_project(store, run, models, executor,
                             on_result=lambda p: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - start
    steady = ((len(stamps) - 1) / (stamps[-1] - stamps[0])
              if len(stamps) > 2 and stamps[-1] > stamps[0] else float("nan"))
    row = {"name": name, "images": done.labelled, "failed": done.failed, "wall": wall,
           "wall_rate": done.labelled / wall, "steady_rate": steady}
    print(f"  {name}: {done.labelled} images in {wall:.1f} s, steady {steady:.3f} images/s",
          flush=True)
    return row


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_node_cluster(temp: Path) -> tuple[str, list[subprocess.Popen]]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    common = ["--num-cpus=1", "--block", "--disable-usage-stats"]
    head = subprocess.Popen(["ray", "start", "--head", f"--port={port}",
                             "--node-ip-address=127.0.0.1", "--include-dashboard=false",
                             f"--temp-dir={temp}", *common], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes = [head]
    address = f"127.0.0.1:{port}"
    time.sleep(8)
    worker = subprocess.Popen(["ray", "start", f"--address={address}",
                               "--node-ip-address=127.0.0.1", *common], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes.append(worker)
    time.sleep(8)
    return address, nodes


def stop(nodes: list[subprocess.Popen]) -> None:
    for node in reversed(nodes):
        node.terminate()
        try:
            node.wait(timeout=60)
        except subprocess.TimeoutExpired:
            node.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=200, help="images (default 200)")
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--skip", default="", help="comma-separated configurations to skip")
    args = parser.parse_args()
    os.environ.pop("RAY_ADDRESS", None)
    from workbench.labeling import LabelRun, LocalExecutor, resolve_models
    from workbench.labeling.ray_executor import RayExecutor

    print(f"CPU: {cpu_name()}")
    checkpoint = ensure_random_checkpoint(MODEL, args.cache)
    work = Path(tempfile.mkdtemp(prefix="bench-label-"))
    rows = []
    try:
        source = work / "source"
        make_images(source, args.count, args.media)
        boxes = make_boxes(work / "boxes", source)
        run = LabelRun(MODEL, "boxes", boxes=str(boxes))
        models = resolve_models(run, {MODEL: str(checkpoint)}, device="cpu")
        print(f"{args.count} images, {MODEL} (random weights, full size), one box each")
        skip = set(filter(None, args.skip.split(",")))
        configs = [
            ("local 1x1", lambda: LocalExecutor(1, threads=1)),
            ("local 1x2", lambda: LocalExecutor(1, threads=2)),
            ("local 2x1", lambda: LocalExecutor(2, threads=1)),
            ("ray local 2x1", lambda: RayExecutor(num_cpus=2, threads=1)),
        ]
        for name, make in configs:
            if name not in skip:
                rows.append(timed(source, work, name.replace(" ", "-"), run, models, make()))
        if "ray 2-node" not in skip:
            address, nodes = two_node_cluster(work / "ray")
            try:
                rows.append(timed(source, work, "ray-2-node", run, models,
                                  RayExecutor(address, threads=1)))
            finally:
                stop(nodes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(rows)


def report(rows: list[dict]) -> None:
    base = {r["name"]: r for r in rows}.get("local-2x1")
    one = {r["name"]: r for r in rows}.get("local-1x1")
    print("\n| configuration | images | wall s | images/s (wall) | images/s (steady) "
          "| overhead per image vs local 2x1 (wall / steady) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        over = ""
        if base and r["name"].startswith("ray"):
            wall = base["wall_rate"] / r["wall_rate"] - 1
            steady = base["steady_rate"] / r["steady_rate"] - 1
            over = f"{wall:+.1%} / {steady:+.1%}"
        print(f"| {r['name']} | {r['images']} | {r['wall']:.1f} | {r['wall_rate']:.3f} "
              f"| {r['steady_rate']:.3f} | {over} |")
    if base and one:
        print(f"\n1 -> 2 workers (1 thread each): x{base['steady_rate'] / one['steady_rate']:.2f} "
              f"steady, x{base['wall_rate'] / one['wall_rate']:.2f} wall (linear: x2; target "
              ">= x1.6)")


if __name__ == "__main__":
    main()
