"""Text prompts: time per stage for SAM 3 and for OWLv2 + SAM, at full size with random weights.

    python benchmarks/bench_text.py                 # full size: about 8-12 min on 2 CPU cores
    python benchmarks/bench_text.py --quick         # reduced configs: a smoke test, ~1 min

Models (random weights: nothing is downloaded; the times are those of the real architectures,
the masks are meaningless): SAM 3 (transformers' default ``Sam3VideoConfig``, ~852 M parameters,
1008 px), OWLv2 base/16 (default ``Owlv2Config``, 960 px), SAM 2.1 tiny and SAM ViT-B (random
checkpoints in the official formats). The photo is ``../shared/media/truck.jpg`` (read at run
time; the benchmark says so and stops if it is absent). Stages:

* encode: the SAM image encoder, once per image (SAM 3: ViT + both necks);
* detect: OWLv2's image side + text + class head (first phrase), then text + head only
  (second phrase: the image side is cached);
* text prompt: SAM 3's detector on the cached features, per phrase (all instances at once);
* decode / instance: one box -> mask decode (OWLv2 + SAM), or one point click (SAM 3).

Threads: ``--threads`` (default 2). Precision: "auto" (fp32 on a CPU without native bf16).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO_ROOT.parent / "shared" / "media" / "truck.jpg"
PHRASES = ("truck", "wheel")
MAX_BOXES = 8  # boxes decoded per phrase set (random detectors find boxes everywhere)


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def bench_sam3(image, work: Path, quick: bool, precision: str) -> list[tuple[str, str, float]]:
    from sam_backends import Prompts, create_backend
    from sam_backends.testing.text_models import small_sam3_config, write_random_sam3

    config = small_sam3_config() if quick else None
    folder, built = _timed(write_random_sam3, work / "sam3", config)
    backend, loaded = _timed(create_backend, "sam3", checkpoint=folder, device="cpu",
                             precision=precision)
    embedding, encode = _timed(backend.encode, image)
    rows = [("SAM 3", "build+save random (not a user cost)", built),
            ("SAM 3", "load", loaded), ("SAM 3", f"encode ({backend.precision})", encode)]
    for phrase in PHRASES:
        found, seconds = _timed(backend.segment_text, embedding, phrase, 0.5)
        rows.append(("SAM 3", f"text prompt {phrase!r} ({len(found)} found)", seconds))
    height, width = embedding.original_size
    click = Prompts(points=[(width / 2, height / 2)], labels=[1])
    backend.predict(embedding, click)  # warm-up
    _, seconds = _timed(backend.predict, embedding, click)
    rows.append(("SAM 3", "decode / instance (point click)", seconds))
    return rows


def bench_owlv2(image, work: Path, quick: bool, precision: str) -> list[tuple[str, str, float]]:
    from sam_backends import create_backend, get_spec
    from sam_backends.testing.random_models import (
        small_sam1_spec,
        small_sam2_spec,
        write_random_checkpoint,
    )
    from sam_backends.testing.text_models import small_owlv2_config, write_random_owlv2
    from sam_backends.text import DetectThenSegment, load_owlv2

    folder = write_random_owlv2(work / "owlv2", small_owlv2_config() if quick else None)
    detector, loaded = _timed(load_owlv2, folder, "cpu", precision)
    rows = [("OWLv2", "load", loaded)]
    found, seconds = _timed(detector.detect, image, PHRASES[0], 0.0)
    rows.append(("OWLv2", f"detect {PHRASES[0]!r} (image side + text)", seconds))
    _, seconds = _timed(detector.detect, image, PHRASES[1], 0.0)
    rows.append(("OWLv2", f"detect {PHRASES[1]!r} (image side cached)", seconds))
    sams = ((small_sam2_spec(), small_sam1_spec()) if quick
            else (get_spec("sam2.1-tiny"), get_spec("sam-vit-b")))
    from sam_backends.families import upstream_of

    for spec in sams:
        suffix = upstream_of(spec.family).CHECKPOINT_SUFFIX
        path = write_random_checkpoint(spec, work / f"{spec.model_id}{suffix}")
        sam = create_backend(spec, checkpoint=path, device="cpu", precision=precision)
        pipeline = DetectThenSegment(detector, sam, max_instances=MAX_BOXES)
        embedding, encode = _timed(sam.encode, image)
        instances = pipeline.segment_text(image, ", ".join(PHRASES), 0.0, embedding=embedding)
        name = f"OWLv2 + {spec.model_id}"
        rows.append((name, f"encode ({sam.precision})", encode))
        rows.append((name, "detect (both phrases, cached image side)",
                     instances.seconds["detect"]))
        per = instances.seconds["decode"] / max(len(instances), 1)
        rows.append((name, f"decode / instance ({len(instances)} boxes)", per))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced-size configs (smoke)")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--only", choices=("sam3", "owlv2"), default=None)
    args = parser.parse_args(argv)
    if not args.image.is_file():
        print(f"Skipping the text benchmark: the photo {args.image} is absent (pass --image).")
        return 0
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(REPO_ROOT))
    from sam_backends.images import load_image

    image = load_image(args.image)
    print(f"photo {args.image.name} {image.shape[1]}x{image.shape[0]}, {args.threads} threads, "
          f"{'reduced' if args.quick else 'full-size'} random-weight models")
    rows: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-text-") as tmp:
        if args.only in (None, "sam3"):
            rows += bench_sam3(image, Path(tmp), args.quick, args.precision)
        if args.only in (None, "owlv2"):
            rows += bench_owlv2(image, Path(tmp), args.quick, args.precision)
    width = max(len(model) for model, _, _ in rows)
    print(f"\n{'model'.ljust(width)}  {'stage'.ljust(46)}  seconds")
    for model, stage, seconds in rows:
        print(f"{model.ljust(width)}  {stage.ljust(46)}  {seconds:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
