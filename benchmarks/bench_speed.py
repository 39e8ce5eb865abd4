"""Speed of our backends against the upstream predictors, side by side, on the same photos.

    python benchmarks/bench_speed.py                       # every SAM model (long: ~1 h)
    python benchmarks/bench_speed.py --models sam-vit-b sam2.1-tiny --quick
    python benchmarks/bench_speed.py --models sam2.1-tiny edgetam  # EdgeTAM against tiny
    python benchmarks/bench_speed.py --models sam-vit-b samhq-vit-b   # the cost of SAM-HQ

For each model, three processes run one after the other on the same photos (``--media``,
default ``../shared/media`` beside the repository) and the same fixed prompts:

* ``upstream``: the official predictor in fp32, library defaults;
* ``fp32``: our backend in the exact mode;
* ``auto``: our backend in the default precision (bf16 where the hardware has it, else
  fp32-fast: the fast path with fp32 matrices).

EdgeTAM runs through transformers, which is its reference: it has no ``upstream`` run (compare
its rows with SAM 2.1 tiny's). Checkpoints are full-size random-weight models built with the
upstream builders (EdgeTAM: a transformers folder) and cached outside the repository
(``--cache``); compute time does not depend on weight values.

Reported per model and variant: encode time (median over the photos, a warm-up encode
excluded), click latency p50/p95 for a point, a box, a box + points and a refinement (up to
full-resolution masks), click-to-overlay p50 (adds the UI's preview rendering and JPEG), peak
resident memory of the process, and bytes per cached embedding. For ``auto`` against ``fp32``:
median and worst mask IoU over the fixed fidelity prompts and the lowest cosine similarity of
the embeddings. Results are printed as a table and written as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_common import (  # noqa: E402
    DEFAULT_CACHE,
    DEFAULT_MEDIA,
    DEFAULT_OUT,
    ensure_random_checkpoint,
    ensure_random_edgetam,
    median,
    percentile,
    photo_paths,
)

SAM_MODELS = ("sam-vit-b", "sam-vit-l", "sam-vit-h", "sam2.1-tiny", "sam2.1-small",
              "sam2.1-base-plus", "sam2.1-large", "edgetam")
HF_MODELS = ("edgetam",)  # transformers folders: their reference is transformers itself
# Not in the default run; their ``upstream`` is transformers' SamHQProcessor + SamHQModel.
SAMHQ_MODELS = ("samhq-vit-b", "samhq-vit-l", "samhq-vit-h")
VARIANTS = ("upstream", "fp32", "auto")  # fp32 before auto: auto compares with its outputs
CLICK_KINDS = ("point", "box", "box+points", "refine")
WORKER = Path(__file__).resolve().with_name("bench_worker.py")


def run_worker(model: str, variant: str, checkpoint: Path, photos: list[Path], clicks: int,
               exact_dir: Path, scratch: Path) -> dict[str, Any]:
    """One model/variant in a fresh process; returns its JSON result."""
    out = scratch / f"{model}-{variant}.json"
    command = [sys.executable, str(WORKER), "--model", model, "--variant", variant,
               "--checkpoint", str(checkpoint), "--photos", *map(str, photos),
               "--clicks", str(clicks), "--exact-dir", str(exact_dir), "--out", str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{model} {variant} failed (exit {completed.returncode}):\n{tail}")
    return json.loads(out.read_text())


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    """Medians and percentiles of one worker's raw timings (seconds -> ms for clicks)."""
    clicks = raw["click_seconds"]
    summary = {
        "precision": raw["precision"],
        "threads": raw["threads"],
        "encode_s": median(raw["encode_seconds"]),
        "encode_cpu_s": median(raw["encode_cpu_seconds"]),
        "clicks_cpu_ms": {kind: median(v) * 1e3 for kind, v in raw["click_cpu_seconds"].items()},
        "clicks_ms": {
            kind: {"p50": percentile(clicks.get(kind, []), 50) * 1e3,
                   "p95": percentile(clicks.get(kind, []), 95) * 1e3}
            for kind in CLICK_KINDS if clicks.get(kind)
        },
        "overlay_p50_ms": percentile(raw["overlay_seconds"], 50) * 1e3,
        "overlay_p95_ms": percentile(raw["overlay_seconds"], 95) * 1e3,
        "peak_rss_mb": raw["peak_rss_bytes"] / 2**20,
        "embedding_bytes": raw["embedding_bytes"],
    }
    if raw["fidelity"]:
        ious = [v for photo in raw["fidelity"] for v in photo["ious"]]
        cosines = [v for photo in raw["fidelity"] for v in photo["cosine"].values()]
        summary["fidelity"] = {
            "median_iou": median(ious), "worst_iou": min(ious), "masks": len(ious),
            "min_cosine": min(cosines) if cosines else None,
            "identical_prompts": sum(p["identical_prompts"] for p in raw["fidelity"]),
            "prompts": sum(p["prompts"] for p in raw["fidelity"]),
        }
    return summary


def _ratio(base: float | None, value: float | None) -> str:
    return f"{base / value:.1f}x" if base and value else "-"


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Plain-text table: one row per model and variant, ratios against upstream."""
    header = (f"{'model':<17}{'variant':<9}{'encode s':>10}{'ratio':>7}"
              + "".join(f"{k + ' p50/p95 ms':>24}" for k in CLICK_KINDS)
              + f"{'overlay p50':>13}{'peak MB':>9}{'emb MiB':>9}")
    lines = [header, "-" * len(header)]
    for model, variants in results.items():
        base = variants.get("upstream")
        for variant, s in variants.items():
            cells = [(f"{model:<17}{variant:<9}{s['encode_s']:>10.2f}"
                      f"{_ratio(base and base['encode_s'], s['encode_s']):>7}")]
            for kind in CLICK_KINDS:
                c = s["clicks_ms"].get(kind)
                b = base["clicks_ms"].get(kind) if base else None
                text = "-" if c is None else (
                    f"{c['p50']:.1f}/{c['p95']:.1f} {_ratio(b and b['p50'], c['p50'])}")
                cells.append(f"{text:>24}")
            emb = s["embedding_bytes"] / 2**20 if s["embedding_bytes"] else 0
            cells.append(f"{s['overlay_p50_ms']:>13.1f}{s['peak_rss_mb']:>9.0f}"
                         f"{(f'{emb:.1f}' if emb else '-'):>9}")
            lines.append("".join(cells))
    lines.append("")
    lines.append("CPU time (all threads; insensitive to other load) - encode s and click p50 ms:")
    for model, variants in results.items():
        base = variants.get("upstream")
        for variant, s in variants.items():
            cells = [(f"  {model:<17}{variant:<9}{s['encode_cpu_s']:>8.2f}"
                      f"{_ratio(base and base['encode_cpu_s'], s['encode_cpu_s']):>7}")]
            for kind in CLICK_KINDS:
                c = s["clicks_cpu_ms"].get(kind)
                b = base["clicks_cpu_ms"].get(kind) if base else None
                cells.append(f"  {kind} {c:.1f} {_ratio(b, c)}" if c is not None else "")
            lines.append("".join(cells))
    lines.append("")
    lines.append("fidelity, auto against fp32 (IoU over every returned mask of the fixed prompts):")
    for model, variants in results.items():
        f = variants.get("auto", {}).get("fidelity")
        if f:
            lines.append(
                f"  {model:<17} median IoU {f['median_iou']:.4f}  worst IoU {f['worst_iou']:.4f}"
                f"  ({f['masks']} masks; {f['identical_prompts']}/{f['prompts']} prompts "
                f"pixel-identical)  min embedding cosine {f['min_cosine']:.6f}"
            )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Where the figures were taken (they are only comparable on the same machine)."""
    import torch

    from sam_backends.speed.accel import cpu_has_native_bf16, fastest_precision

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "native_bf16": cpu_has_native_bf16(),
        "auto_precision_cpu": fastest_precision("cpu"),
        "torch": torch.__version__,
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Speed of our backends against upstream.")
    parser.add_argument("--models", nargs="+", default=list(SAM_MODELS),
                        choices=SAM_MODELS + SAMHQ_MODELS)
    parser.add_argument("--runs", type=int, default=5,
                        help="rounds of the four timed clicks per photo (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="two photos and two click rounds (for development)")
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="folder for the random-weight checkpoints (outside the repo)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    if not args.media.is_dir():
        parser.error(f"no photo folder at {args.media}; pass --media DIR")
    photos = photo_paths(args.media, args.quick)
    if not photos:
        parser.error(f"no .jpg/.png photos in {args.media}")
    clicks = 2 if args.quick else args.runs
    info = machine()
    print(f"photos: {', '.join(p.name for p in photos)}; click rounds per photo: {clicks}; "
          f"load average {info['load_average_at_start']}", flush=True)

    results: dict[str, dict[str, dict[str, Any]]] = {}
    raw: dict[str, dict[str, Any]] = {}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="sam-bench-") as scratch_name:
        scratch = Path(scratch_name)
        for model in args.models:
            if model in HF_MODELS:
                checkpoint, variants = ensure_random_edgetam(args.cache), VARIANTS[1:]
            else:
                checkpoint, variants = ensure_random_checkpoint(model, args.cache), VARIANTS
            exact_dir = scratch / f"{model}-exact"
            results[model] = {}
            for variant in variants:
                print(f"  {model} {variant} ...", end="", flush=True)
                t0 = time.time()
                raw[f"{model}/{variant}"] = run_worker(model, variant, checkpoint, photos,
                                                       clicks, exact_dir, scratch)
                results[model][variant] = summarise(raw[f"{model}/{variant}"])
                print(f" {time.time() - t0:.0f} s", flush=True)

    print()
    print(table(results))
    report = {"machine": info, "photos": [p.name for p in photos], "click_rounds": clicks,
              "seconds": time.time() - started, "load_average_at_end": os.getloadavg(),
              "results": results, "raw": raw}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\nJSON written to {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
