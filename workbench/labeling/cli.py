"""``samwb label``: auto-label a project from the command line.

    samwb label PROJECT --text "car, person" --model sam2.1-tiny [--images GLOB] [--workers N]
    samwb label PROJECT --everything --model sam2.1-tiny [--points 16]
    samwb label PROJECT --boxes LABELS_DIR --model sam-vit-b
    samwb label PROJECT ... --ray [ADDRESS]            (or env RAY_ADDRESS)

Text goes to the model itself when it reads text (sam3), else OWLv2 finds boxes that the model
cuts out (as the page's "OWLv2 + the model above"). One class per phrase. Weights: as the app
finds them (``--checkpoint ID=PATH``, env ``SAM_CHECKPOINT_<ID>``, the checkpoints folder).

The same command again continues an interrupted run and duplicates nothing. Exit status 0 when
the run finished (also with failed images: they are listed), 2 on a refusal, 130 when stopped.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import Any

from .spec import DEFAULT_POINTS, DEFAULT_THRESHOLD, DETECTOR

MAX_LISTED = 20  # failures printed (the rest counted)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``label`` to ``samwb``'s subcommands (``workbench.projects.cli``)."""
    label = commands.add_parser("label", help="auto-label the project's images as proposals")
    label.add_argument("project", type=Path, help="the project folder")
    what = label.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="phrases to find, comma-separated (a class per phrase)")
    what.add_argument("--everything", action="store_true", help="segment everything")
    what.add_argument("--boxes", type=Path, metavar="DIR",
                      help="cut out the boxes of YOLO detection label files in DIR")
    label.add_argument("--model", default="sam2.1-tiny",
                       help="SAM model id (sam2.1-tiny, sam-vit-b, sam3, ...); "
                            f"{DETECTOR}+ID is accepted for text")
    label.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                       help="least score kept (the page's slider; default %(default)s)")
    label.add_argument("--points", type=int, default=DEFAULT_POINTS,
                       help="--everything: points per side (default %(default)s)")
    label.add_argument("--images", default="*",
                       help="glob over image paths in the project (default: all)")
    label.add_argument("--max-pixels", type=int, default=None,
                       help="refuse larger images (default: env SAM_MAX_PIXELS or 50 MP)")
    label.add_argument("--workers", type=int, default=1,
                       help="model replicas on this machine (processes when > 1)")
    label.add_argument("--threads", type=int, default=None,
                       help="PyTorch threads per worker (default: cores / workers)")
    label.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                       help="run on a Ray cluster (no ADDRESS: env RAY_ADDRESS, else a local "
                            "one); needs pip install \".[ray]\"")
    label.add_argument("--batch-size", type=int, default=2, help="--ray: images per batch")
    label.add_argument("--checkpoint", action="append", metavar="ID=PATH",
                       help="weights for a model id (repeatable), e.g. sam2.1-tiny=/w/t.pt")
    label.add_argument("--checkpoint-dir", default=None,
                       help="the checkpoints folder (default: env SAM_CHECKPOINT_DIR)")
    label.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best)")
    label.add_argument("--precision", default=None, help="fp32 or auto (default: auto)")
    label.add_argument("--no-progress", action="store_true", help="no progress bar")
    return label


def build_run(args: argparse.Namespace):
    from .spec import LabelRun

    model = args.model.removeprefix(f"{DETECTOR}+")
    common = {"threshold": args.threshold, "images": args.images,
              "max_pixels": args.max_pixels}
    if args.everything:
        return LabelRun(model, "everything", points_per_side=args.points, **common)
    if args.boxes is not None:
        return LabelRun(model, "boxes", boxes=str(args.boxes.resolve()), **common)
    return LabelRun(model, "text", phrases=args.text, **common)


def make_executor(args: argparse.Namespace):
    address = args.ray
    if address is None and os.environ.get("RAY_ADDRESS", "").strip():
        address = ""
    if address is not None:
        from .ray_executor import RayExecutor, import_ray

        import_ray()  # says how to install it before anything is loaded
        return RayExecutor(address or None, workers=None if args.workers == 1 else args.workers,
                           threads=args.threads or 1, batch_size=args.batch_size)
    from .executors import LocalExecutor

    return LocalExecutor(args.workers, threads=args.threads)


def run(args: argparse.Namespace) -> int:
    """``samwb label``: the exit status (see the module doc)."""
    from sam_backends.errors import SamBackendError
    from workbench.projects.model import ProjectError
    from workbench.projects.store import ProjectStore

    from .driver import Progress, label_project
    from .models import parse_checkpoints, resolve_models
    from .spec import LabelRunError

    progress = Progress()
    try:
        spec = build_run(args)
        executor = make_executor(args)
        models = resolve_models(spec, parse_checkpoints(args.checkpoint),
                                checkpoint_dir=args.checkpoint_dir, device=args.device,
                                precision=args.precision)
        with ProjectStore.open(args.project) as store:
            print(f"Labelling {store.name}: {spec.describe()} ({executor.name})", flush=True)
            bar = _Bar(args.no_progress)
            try:
                label_project(store, spec, models, executor, cancel=threading.Event(),
                              progress=progress, on_result=bar.update)
            finally:
                bar.close()
    except KeyboardInterrupt:
        print(f"\nStopped after {progress.done} images; each finished image is saved. Run the "
              "same command again to go on.", file=sys.stderr)
        return 130
    except (ProjectError, LabelRunError, SamBackendError) as exc:
        print(f"samwb: {exc}", file=sys.stderr)
        return 2
    print(summary(progress))
    return 0


def summary(progress) -> str:
    lines = [f"Labelled {progress.labelled} images, found {progress.found} objects; "
             f"failed {progress.failed}; skipped {progress.skipped} (done before or missing); "
             f"{progress.seconds:.1f} s ({progress.images_per_second:.2f} images/s)."]
    for path, reason in progress.failures[:MAX_LISTED]:
        lines.append(f"  failed: {path}: {reason}")
    if len(progress.failures) > MAX_LISTED:
        lines.append(f"  ... and {len(progress.failures) - MAX_LISTED} more failures")
    return "\n".join(lines)


class _Bar:
    """tqdm's bar: images done of those to do, images per second, time left."""

    def __init__(self, disabled: bool) -> None:
        self.disabled = disabled
        self.bar = None

    def update(self, progress) -> None:
        if self.disabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=progress.total, unit="img", desc="label", file=sys.stderr,
                            dynamic_ncols=True)
        self.bar.set_postfix(found=progress.found, failed=progress.failed, refresh=False)
        self.bar.update(progress.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
