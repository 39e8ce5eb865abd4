"""Is the next image ready, and does the background encoder delay clicks?

For each model (random weights, the real architecture; ``--models``), through an ``AppContext``
as the app uses it:

* open the next image until its first click is decoded: load + encode + click (no prefetch);
  load + cache hit + click (prefetched); load + disk hit + click (a restart, project store);
* a polite click (one every ``--gap`` s, through the model's click lane, as the page's live
  route) while a background encode runs, against the same clicks on a quiet app; with the
  prefetch thread on the process's thread count and on 1 thread (``Prefetcher(threads=1)``).

    python benchmarks/bench_prefetch.py                       # sam2.1-tiny, sam-vit-b
    python benchmarks/bench_prefetch.py --models sam2.1-tiny --clicks 20

Times drift on shared machines; compare figures within one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import DEFAULT_CACHE, DEFAULT_MEDIA  # noqa: E402


def cpu_line() -> str:
    name = subprocess.run("grep -m1 'model name' /proc/cpuinfo", shell=True, capture_output=True,
                          text=True).stdout.split(":", 1)[-1].strip()
    flags = set(Path("/proc/cpuinfo").read_text().split())
    wanted = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name or 'unknown CPU'}; flags: {', '.join(wanted) or 'none of avx2/avx512'}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def context(model_id: str, checkpoint: Path, scratch: Path, store_dir: Path | None):
    from workbench.config import AppConfig
    from workbench.context import AppContext
    from workbench.projects.prefetch import project_embedding_store

    ctx = AppContext(AppConfig(models=(model_id,), default_model=model_id, device="cpu",
                               custom_checkpoints=((model_id, checkpoint),),
                               checkpoint_dir=scratch, cache_bytes="2GiB"))
    if store_dir is not None:
        ctx.attach_disk_embeddings(project_embedding_store(store_dir, 2 * 1024**3))
    ctx.backend(model_id)
    return ctx


def click(ctx, model_id: str, image, digest: str) -> float:
    """One click as the live route runs it (click lane, then the decoder); its seconds."""
    from sam_backends import Prompts

    prompts = Prompts(points=[(image.shape[1] // 2, image.shape[0] // 2)], labels=[1])
    start = time.perf_counter()
    embedding = ctx.encode(model_id, image, digest).embedding
    with ctx.click_lane(model_id).admit(client="bench"):
        ctx.predict(model_id, embedding, prompts).mask(0)
    return time.perf_counter() - start


def open_next(ctx, model_id: str, path: Path) -> tuple[float, bool]:
    """Load, embed (however it comes) and decode a first click: seconds, and whether cached."""
    from sam_backends.images import image_digest, load_image

    start = time.perf_counter()
    image = load_image(path, ctx.config.max_image_pixels)
    digest = image_digest(image)
    cached = ctx.encode(model_id, image, digest).cached
    click(ctx, model_id, image, digest)
    return time.perf_counter() - start, cached


def wait_done(prefetcher, count: int) -> None:
    while prefetcher.status().done + prefetcher.status().failed < count:
        time.sleep(0.02)


def clicks_during(ctx, model_id: str, prefetcher, paths, clicks: int, gap: float,
                  image, digest) -> tuple[list[float], float]:
    """Polite clicks on the open ``image`` while ``prefetcher`` encodes ``paths`` (not encoded
    before): click seconds, and the prefetch's wall time."""
    start = time.perf_counter()
    prefetcher.want("bench-next", model_id, paths)
    while prefetcher.status().running is None and prefetcher.status().done == 0:
        time.sleep(0.005)
    seconds = []
    while len(seconds) < clicks and prefetcher.status().done < len(paths):
        time.sleep(gap)
        seconds.append(click(ctx, model_id, image, digest))
    wait_done(prefetcher, len(paths))
    return seconds, time.perf_counter() - start


def bench_model(model_id: str, args, photos: list[Path], scratch: Path) -> list[tuple]:
    from sam_backends import get_spec
    from sam_backends.background import encoder_blocks
    from sam_backends.images import image_digest, load_image
    from sam_backends.testing.random_models import write_random_checkpoint
    from workbench.projects.prefetch import Prefetcher

    spec = get_spec(model_id)
    checkpoint = DEFAULT_CACHE / f"random-{spec.checkpoint_file}"
    if not checkpoint.is_file():
        print(f"{model_id}: writing a random-weight checkpoint ...", flush=True)
        write_random_checkpoint(spec, checkpoint)
    project = scratch / f"project-{model_id}"
    ctx = context(model_id, checkpoint, scratch, project)
    precision = ctx.backend(model_id).precision
    blocks = len(encoder_blocks(ctx.backend(model_id)))
    print(f"{model_id} ({precision}, {blocks} encoder blocks): warming up ...", flush=True)
    warm = load_image(photos[-1])
    ctx.encode(model_id, warm)
    click(ctx, model_id, warm, image_digest(warm))
    rows = []

    cold = [open_next(ctx, model_id, photos[i])[0] for i in range(args.cold)]
    rows.append((model_id, "open next: encode + click (no prefetch)", statistics.median(cold),
                 len(cold)))
    prefetcher = ctx.services.prefetcher
    prefetcher.want("bench", model_id, [photos[args.cold]])
    wait_done(prefetcher, 1)
    seconds, cached = open_next(ctx, model_id, photos[args.cold])
    assert cached
    rows.append((model_id, "open next: prefetched (memory hit) + click", seconds, 1))
    ctx.close()

    restarted = context(model_id, checkpoint, scratch, project)  # a restart: memory empty
    seconds, cached = open_next(restarted, model_id, photos[args.cold])
    assert cached
    rows.append((model_id, "open next: after a restart (disk hit) + click", seconds, 1))
    image = load_image(photos[0])  # the open image: on disk since the cold open
    digest = image_digest(image)
    restarted.encode(model_id, image, digest)
    restarted.attach_disk_embeddings(None)
    quiet = []
    for _ in range(args.clicks):
        time.sleep(args.gap)
        quiet.append(click(restarted, model_id, image, digest))
    rows.append((model_id, "click, quiet: p50 / p95", (statistics.median(quiet),
                                                        percentile(quiet, 0.95)), len(quiet)))
    unused = photos[args.cold + 1:-1]  # never encoded in this run
    for turn, threads in enumerate(args.threads):
        background = unused[turn * args.background:(turn + 1) * args.background]
        worker = Prefetcher(restarted, threads=threads)
        try:
            during, wall = clicks_during(restarted, model_id, worker, background, args.clicks,
                                         args.gap, image, digest)
        finally:
            worker.close()
        label = "process's" if threads is None else str(threads)
        rows.append((model_id, f"click during a background encode ({label} threads): "
                     "p50 / p95 / max", (statistics.median(during), percentile(during, 0.95),
                                         max(during)), len(during)))
        rows.append((model_id, f"  that background encode of {len(background)} image(s), "
                     "wall (with the clicks)", wall, 1))
    restarted.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="sam2.1-tiny,sam-vit-b")
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--clicks", type=int, default=20, help="clicks per latency figure")
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between clicks")
    parser.add_argument("--cold", type=int, default=1, help="cold opens to time")
    parser.add_argument("--background", type=int, default=1, help="images encoded behind")
    parser.add_argument("--threads", default="auto,1",
                        help="prefetch thread counts to compare (auto: the process's)")
    args = parser.parse_args()
    args.threads = [None if t == "auto" else int(t) for t in args.threads.split(",")]
    photos = sorted(p for p in args.media.glob("*.jpg"))
    needed = args.cold + 2 + args.background * len(args.threads)
    if len(photos) < needed:
        sys.exit(f"{args.media} needs at least {needed} .jpg photos for these settings")
    import torch

    print(f"CPU: {cpu_line()}; torch {torch.__version__}, {torch.get_num_threads()} threads",
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-prefetch-") as scratch:
        for model_id in args.models.split(","):
            rows += bench_model(model_id.strip(), args, photos, Path(scratch))
    print("\n| model | what | seconds | n |\n|---|---|---|---|")
    for model_id, what, value, count in rows:
        shown = " / ".join(f"{v * 1000:.0f} ms" for v in value) if isinstance(value, tuple) \
            else f"{value:.3f} s"
        print(f"| {model_id} | {what} | {shown} | {count} |")


if __name__ == "__main__":
    main()
