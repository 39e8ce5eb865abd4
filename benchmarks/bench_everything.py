""""Segment everything": ours against upstream's automatic mask generators, same embedding.

    python benchmarks/bench_everything.py                     # ViT-B, SAM 2.1 tiny; 16 and 32
    python benchmarks/bench_everything.py --models sam2.1-tiny --grids 8 --max-side 600

For each model a full-size random-weight checkpoint is written to a temporary folder (with
``sam_backends.testing.random_models.write_random_checkpoint``, whose scaled mask logits make
thresholds meaningful), loaded by upstream (``SamAutomaticMaskGenerator`` /
``SAM2AutomaticMaskGenerator``) and by us (``create_backend(..., precision=--precision)``
+ ``segment_everything``). The photo
(``--photo`` in ``--media``, default ``../shared/media/truck.jpg``) is encoded once by each
side; encoding is timed separately and excluded from the generator times (upstream's
``set_image`` is made a no-op inside ``generate``, which would otherwise encode again).

Thresholds: random weights predict IoUs far from trained ones, so ``pred_iou_thresh`` and
``stability_score_thresh`` are set to the median of a 4x4 probe grid's candidates (about half
of the candidates pass each), printed with the table. NMS: random-weight masks barely depend on
the point, so at upstream's 0.7 only one or two survive and agreement would say little; the
default ``--box-nms-thresh 1.0`` keeps every filtered candidate (pass 0.7 for upstream's value;
the generators' times hardly depend on it).

Reported per model and grid: generator seconds (wall and process CPU) for upstream and ours,
ours split into decoding the grid and post-processing (the upscaled masks are the largest
allocation, so a machine slow to hand out fresh memory shows there), the speed-up, instance
counts, and agreement: the share of upstream masks that one of ours matches at IoU >= 0.9 (and
the reverse). ``--full-decode`` also times ours with every grid point upscaled (no
predicted-IoU shortcut: ``GridDecoder(iou_floor=0)``, the path before it) in the same run, and
checks that it finds the same instances. JSON goes to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_common import DEFAULT_MEDIA, load_photo  # noqa: E402

MODELS = ("sam-vit-b", "sam2.1-tiny")
DEFAULT_OUT = REPO / "benchmarks" / "results" / "everything.json"


def upstream_model(spec: Any, path: Path) -> tuple[Any, Any]:
    """(upstream model loaded from ``path`` (fp32, CPU), its generator class)."""
    from sam_backends.families import upstream_of

    upstream = upstream_of(spec.family)
    return upstream.build_architecture(spec, str(path)), upstream.automatic_generator()


def keep_image(predictor: Any) -> Any:
    """Make ``set_image``/reset no-ops on an upstream predictor whose image is already set, so
    ``generate`` reuses the embedding (it would otherwise encode the same image again)."""
    predictor.set_image = lambda _image: None
    for reset in ("reset_image", "reset_predictor"):
        if hasattr(predictor, reset):
            setattr(predictor, reset, lambda: None)
    return predictor


def timed(function: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """(result, wall seconds, process CPU seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def probe_thresholds(backend: Any, embedding: Any) -> dict[str, float]:
    """Median predicted IoU and low-res stability of a 4x4 grid's candidates (2 decimals)."""
    import torch

    from sam_backends.automatic.decoding import GridDecoder
    from sam_backends.automatic.filters import stability_scores
    from sam_backends.automatic.grid import grid_points

    with torch.inference_mode():
        decoder = GridDecoder(backend, embedding, True)
        logits, scores = decoder(grid_points(4, embedding.original_size))
        vh, vw = decoder.valid_size
        stability = stability_scores(logits.flatten(0, 1)[:, :vh, :vw], 0.0, 1.0)
    return {"pred_iou_thresh": round(min(max(float(scores.median()), 0.0), 1.0), 2),
            "stability_score_thresh": round(float(stability.median()), 2)}


def run_model(model_id: str, image: Any, grids: list[int], args: argparse.Namespace,
              scratch: Path) -> list[dict[str, Any]]:
    import numpy as np

    from sam_backends import create_backend, get_spec
    from sam_backends.automatic import EverythingParams, segment_everything
    from sam_backends.automatic.agreement import matched_share
    from sam_backends.testing.random_models import write_random_checkpoint

    spec = get_spec(model_id)
    print(f"{model_id}: writing a random-weight checkpoint ...", flush=True)
    path = write_random_checkpoint(spec, scratch / spec.checkpoint_file)
    backend = create_backend(spec, checkpoint=path, device="cpu", precision=args.precision)
    embedding, ours_encode, _ = timed(backend.encode, image)
    thresholds = probe_thresholds(backend, embedding)
    print(f"  thresholds (lowered for random weights): {thresholds}, "
          f"box_nms_thresh {args.box_nms_thresh}", flush=True)
    model, generator_class = upstream_model(spec, path)
    predictor = None
    rows = []
    for grid in grids:
        settings = {"points_per_side": grid, "points_per_batch": 64,
                    "box_nms_thresh": args.box_nms_thresh, **thresholds}
        generator = generator_class(model, **settings)
        if predictor is None:  # encode once per model, reuse for every grid
            _, upstream_encode, _ = timed(generator.predictor.set_image, image)
            predictor = keep_image(generator.predictor)
        generator.predictor = predictor
        print(f"  {grid}x{grid}: upstream ...", end="", flush=True)
        records, up_wall, up_cpu = timed(generator.generate, image)
        print(f" {up_wall:.1f} s; ours ...", end="", flush=True)
        found, our_wall, our_cpu = timed(segment_everything, backend, embedding,
                                         EverythingParams(**settings))
        print(f" {our_wall:.1f} s", flush=True)
        full = full_decode(backend, embedding, EverythingParams(**settings), found) \
            if args.full_decode else None
        theirs = (np.stack([r["segmentation"] for r in records]) if records
                  else np.zeros((0, *image.shape[:2]), bool))
        rows.append({
            "model": model_id, "grid": grid, "precision": backend.precision,
            "thresholds": {**thresholds, "box_nms_thresh": args.box_nms_thresh},
            "encode_s": {"upstream": upstream_encode, "ours": ours_encode},
            "upstream_s": up_wall, "upstream_cpu_s": up_cpu,
            "ours_s": our_wall, "ours_cpu_s": our_cpu, "ours_stages_s": found.seconds,
            "speedup": up_wall / our_wall, "speedup_cpu": up_cpu / our_cpu,
            "instances": {"upstream": len(theirs), "ours": len(found)},
            "agreement": matched_share(theirs, found.masks),
            "reverse_agreement": matched_share(found.masks, theirs),
            "full_decode": full,
        })
    return rows


def full_decode(backend: Any, embedding: Any, params: Any, found: Any) -> dict[str, Any]:
    """Ours again with every grid point upscaled (``iou_floor=0``): seconds, and whether the
    instances are the same as ``found``'s (they must be: the shortcut only skips points the
    IoU filter drops)."""
    import numpy as np

    from sam_backends.automatic import generator, segment_everything

    original = generator.grid_decoder
    generator.grid_decoder = lambda b, e, multimask, floor=0.0: original(b, e, multimask, 0.0)
    try:
        print("  ours, every point upscaled ...", end="", flush=True)
        again, wall, cpu = timed(segment_everything, backend, embedding, params)
    finally:
        generator.grid_decoder = original
    same = (len(again) == len(found) and np.array_equal(again.masks, found.masks)
            and np.array_equal(again.scores, found.scores))
    print(f" {wall:.1f} s; same instances: {same}", flush=True)
    return {"seconds": wall, "cpu_seconds": cpu, "same_instances": bool(same)}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| model | grid | thresholds (iou, stability, nms) | upstream s (cpu) | "
             "ours s (cpu) | ours decode + post s | speed-up wall (cpu) | "
             "instances upstream / ours | agreement (reverse) |", "|---" * 9 + "|"]
    for r in rows:
        t, stages = r["thresholds"], r["ours_stages_s"]
        lines.append(
            f"| {r['model']} ({r['precision']}) | {r['grid']}x{r['grid']} | "
            f"{t['pred_iou_thresh']}, {t['stability_score_thresh']}, {t['box_nms_thresh']} | "
            f"{r['upstream_s']:.1f} ({r['upstream_cpu_s']:.1f}) | "
            f"{r['ours_s']:.1f} ({r['ours_cpu_s']:.1f}) | "
            f"{stages['decode']:.1f} + {stages['postprocess']:.1f} | "
            f"{r['speedup']:.1f}x ({r['speedup_cpu']:.1f}x) | "
            f"{r['instances']['upstream']} / {r['instances']['ours']} | "
            f"{r['agreement']:.1%} ({r['reverse_agreement']:.1%}) |")
    full = [r for r in rows if r.get("full_decode")]
    if full:
        lines += ["", "| model | grid | ours s | every point upscaled s | shortcut speed-up | "
                      "same instances |", "|---" * 6 + "|"]
        lines += [f"| {r['model']} ({r['precision']}) | {r['grid']}x{r['grid']} | "
                  f"{r['ours_s']:.1f} | {r['full_decode']['seconds']:.1f} | "
                  f"{r['full_decode']['seconds'] / r['ours_s']:.2f}x | "
                  f"{r['full_decode']['same_instances']} |" for r in full]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip('"'))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--grids", nargs="+", type=int, default=[16, 32],
                        help="points per side (default 16 32)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for both sides (default 1)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"),
                        help="our backend's precision (upstream is always fp32)")
    parser.add_argument("--box-nms-thresh", type=float, default=1.0)
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA)
    parser.add_argument("--photo", default="truck.jpg")
    parser.add_argument("--max-side", type=int, default=0,
                        help="shrink the photo so its long side is at most this (0: as is)")
    parser.add_argument("--full-decode", action="store_true",
                        help="also time ours with every grid point upscaled (no IoU shortcut)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    photo = args.media / args.photo
    if not photo.is_file():
        print(f"skipped: no photo at {photo} (pass --media DIR / --photo NAME)")
        return 0
    os.environ["SAM_THREADS"] = str(args.threads)  # read by the backends' thread policy
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    image = load_photo(photo)
    if args.max_side and max(image.shape[:2]) > args.max_side:
        from PIL import Image

        scale = args.max_side / max(image.shape[:2])
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    print(f"photo {photo.name} {image.shape[1]}x{image.shape[0]}, threads {args.threads}, "
          f"load average {os.getloadavg()}", flush=True)
    started = time.time()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sam-everything-") as scratch:
        for model_id in args.models:
            rows += run_model(model_id, image, args.grids, args, Path(scratch))
    print()
    print(table(rows))
    report = {"photo": photo.name, "image_size": list(image.shape[:2]), "threads": args.threads,
              "seconds": time.time() - started, "load_average_at_end": os.getloadavg(),
              "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\nJSON written to {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
