"""Does evicting an embedding give its memory back? The engine alone, with and without trimming.

    python benchmarks/bench_trim.py                       # 60 images, 64 MiB cache, small SAM 2
    python benchmarks/bench_trim.py --images 200 --cache-bytes 256MiB --model sam2.1-tiny

Each variant runs in its own fresh process (the allocator's state is per process): the
server's allocator setting (``tune_allocator``), a bounded ``EmbeddingCache``, and a loop that
encodes ``--images`` distinct images through the cache and decodes one box on each (as the REST
API does). ``trim`` asks malloc to return free pages after evictions (the cache's default);
``no trim`` sets ``trim_after_bytes=0``. Printed: resident memory after the loop, after one
more ``malloc_trim`` (what trimming when idle would add), the bytes the cache counts, and the
excess over what the cache's bound predicts (RSS after the first image + the bound).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def one_run(model: str, images: int, cache_bytes: str, trim: bool) -> dict:
    """The loop itself (runs in the child process)."""
    import gc

    import numpy as np

    from sam_backends import Prompts, create_backend
    from sam_backends.cache import EmbeddingCache
    from sam_backends.speed import accel

    if model == "small":
        from sam_backends.testing.random_models import small_sam2_spec, write_random_checkpoint

        spec = small_sam2_spec()
        folder = Path(tempfile.mkdtemp(prefix="bench-trim-"))
        checkpoint = write_random_checkpoint(spec, folder / spec.checkpoint_file)
    else:
        from benchmarks.bench_common import DEFAULT_CACHE, ensure_random_checkpoint
        from sam_backends import get_spec

        spec = get_spec(model)
        checkpoint = ensure_random_checkpoint(model, DEFAULT_CACHE)
    backend = create_backend(spec, checkpoint=checkpoint, device="cpu", precision="fp32")
    accel.tune_allocator()
    cache = EmbeddingCache(cache_bytes) if trim else EmbeddingCache(cache_bytes,
                                                                    trim_after_bytes=0)
    rng = np.random.default_rng(0)
    first = None
    for n in range(images):
        image = rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8)
        embedding = cache.get_or_compute(n, lambda: backend.encode(image))
        backend.predict(embedding, Prompts(box=(256, 192, 768, 576)))
        del embedding
        gc.collect()
        if first is None:
            first = accel.process_rss_bytes()
    stats = cache.stats()
    end = accel.process_rss_bytes()
    accel.release_free_memory()  # what a trim when idle would add
    return {"rss_mib": end / 2**20, "idle_trim_mib": accel.process_rss_bytes() / 2**20,
            "first_mib": first / 2**20,
            "cached_mib": stats.bytes / 2**20, "bound_mib": stats.max_bytes / 2**20,
            "evicted_mib": stats.evicted_bytes / 2**20, "trims": stats.trims}


def main(argv: list[str] | None = None) -> None:
    from benchmarks.bench_common import json_from_process

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--cache-bytes", default="64MiB")
    parser.add_argument("--model", default="small", choices=("small", "sam2.1-tiny"))
    parser.add_argument("--child", choices=("trim", "no-trim"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(one_run(args.model, args.images, args.cache_bytes,
                                 args.child == "trim")))
        return
    print(f"{args.images} images through a {args.cache_bytes} cache ({args.model}, fp32)\n")
    print("| variant | RSS after 1st image MiB | RSS at end MiB | after one more trim MiB "
          "| cached MiB | evicted MiB | trims | end - first - bound MiB |\n"
          "|---|---|---|---|---|---|---|---|")
    for variant in ("no-trim", "trim"):
        r = json_from_process([__file__, "--child", variant, "--images", str(args.images),
                               "--cache-bytes", args.cache_bytes, "--model", args.model])
        excess = r["rss_mib"] - r["first_mib"] - r["bound_mib"]
        print(f"| {variant} | {r['first_mib']:.0f} | {r['rss_mib']:.0f} "
              f"| {r['idle_trim_mib']:.0f} | {r['cached_mib']:.0f} "
              f"| {r['evicted_mib']:.0f} | {r['trims']} | {excess:+.0f} |", flush=True)


if __name__ == "__main__":
    main()
