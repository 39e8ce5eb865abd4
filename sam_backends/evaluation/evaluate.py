"""Interactive-segmentation quality of each model on a folder of images with ground-truth masks.

    python -m sam_backends.evaluate --models sam-vit-b sam2.1-tiny grabcut \\
        --images data/images --masks data/masks --out results/

For every image, the mask is ``<masks>/<image stem>.png`` (non-zero = object; see
``ground_truth``). Each model encodes each image once, then replays the click protocol of
``click_simulation`` (up to ``--max-clicks`` clicks) and one box prompt (the ground truth's tight
box). Written into ``--out``:

* ``results.csv`` / ``results.json``: one ``model`` row per model (means over images) and one
  ``image`` row per model and image. Columns: mIoU after 1, 3 and 5 clicks, NoC@85 and NoC@90
  (clicks to reach 85 % / 90 % IoU, the click budget when never reached), box-prompt mIoU,
  seconds per click (decoder wall time, post-processing included), encode seconds, and an error
  message for a model that failed. The JSON also holds the IoU after every click and the clicks.
* ``miou_vs_clicks.png``: mIoU against the number of clicks, one line per model.

Programmatic use (tests evaluate random-weight models this way)::

    result = evaluate([backend, ModelEntry(spec, checkpoint=path)], samples)
    write_results(result, out_dir)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..base import Backend
from ..errors import ImageError, SamBackendError
from ..factory import create_backend, list_models
from ..images import load_image
from ..registry import ModelSpec, get_spec
from .click_simulation import Click, box_iou, run_click_protocol
from .ground_truth import load_mask

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
REPORTED_CLICKS = (1, 3, 5)
NOC_THRESHOLDS = (0.85, 0.90)
DEFAULT_MAX_CLICKS = 20
CSV_COLUMNS = (
    "kind", "model_id", "image", "images",
    "miou_1", "miou_3", "miou_5", "noc_85", "noc_90", "box_miou",
    "seconds_per_click", "encode_seconds", "error",
)  # fmt: skip


class DatasetError(SamBackendError, ValueError):
    """The images/masks folders cannot be evaluated (missing, mismatched or empty masks)."""


# --- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One image and its object: RGB uint8 H x W x 3 and a bool H x W mask of the same size."""

    name: str
    image: np.ndarray = field(repr=False)
    target: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[:2] != self.target.shape:
            raise DatasetError(
                f"{self.name}: the mask is {self.target.shape[1]}x{self.target.shape[0]} but the "
                f"image is {self.image.shape[1]}x{self.image.shape[0]}; they must be the same size."
            )
        if not self.target.any():
            raise DatasetError(f"{self.name}: the mask is empty; it must mark the object.")

    def load(self) -> Sample:
        return self


@dataclass(frozen=True)
class SampleFiles:
    """An image file and its mask file, decoded only when the evaluation reaches them."""

    name: str
    image_path: Path
    mask_path: Path

    def load(self) -> Sample:
        """Decode both files. Raises ``DatasetError`` for an unreadable or mismatched pair."""
        try:
            image = load_image(self.image_path)
            target = load_mask(self.mask_path)
        except ImageError as exc:  # the same for every model: a dataset problem
            raise DatasetError(str(exc)) from exc
        return Sample(self.image_path.name, image, target)


def find_samples(images_dir: str | Path, masks_dir: str | Path) -> list[SampleFiles]:
    """Pair every image in ``images_dir`` with ``masks_dir/<stem>.png``, sorted by file name.

    Raises:
        DatasetError: a folder is missing, holds no image, or some images have no mask.
    """
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for folder, what in ((images_dir, "Images"), (masks_dir, "Masks")):
        if not folder.is_dir():
            raise DatasetError(f"{what} folder {folder} does not exist.")
    images = sorted(
        p for p in images_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not images:
        raise DatasetError(
            f"No image in {images_dir} (looked for {', '.join(IMAGE_SUFFIXES)} files)."
        )
    stems: dict[str, Path] = {}
    for path in images:
        if path.stem in stems:
            raise DatasetError(
                f"{stems[path.stem].name} and {path.name} share the stem {path.stem!r}, so they "
                "would share one mask; rename one of them."
            )
        stems[path.stem] = path
    missing = [p.name for p in images if not (masks_dir / f"{p.stem}.png").is_file()]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        shown = ", ".join(missing[:5]) + more
        raise DatasetError(
            f"{len(missing)} image(s) have no mask in {masks_dir}: {shown}. A mask is a PNG with "
            "the image's file stem (photo.jpg -> photo.png), non-zero = object."
        )
    return [SampleFiles(p.name, p, masks_dir / f"{p.stem}.png") for p in images]


@dataclass(frozen=True)
class ModelEntry:
    """A model to load for the evaluation (one at a time, released after its run).

    Attributes:
        model: a catalogue id or a ``ModelSpec`` (tests pass reduced-size specs).
        checkpoint: explicit checkpoint path; default: the catalogue file in the checkpoints
            folder.
    """

    model: str | ModelSpec
    checkpoint: str | Path | None = None

    @property
    def spec(self) -> ModelSpec:
        return self.model if isinstance(self.model, ModelSpec) else get_spec(self.model)


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageResult:
    """One model on one image.

    Attributes:
        ious: IoU after click k at index k-1 (``max_clicks`` long).
        clicks: the clicks the protocol made.
        click_seconds: decoder wall time of each click.
    """

    model_id: str
    image: str
    ious: tuple[float, ...]
    clicks: tuple[Click, ...]
    box_iou: float
    click_seconds: tuple[float, ...]
    encode_seconds: float

    def noc(self, threshold: float) -> int:
        for index, iou in enumerate(self.ious):
            if iou >= threshold:
                return index + 1
        return len(self.ious)


@dataclass(frozen=True)
class ModelResult:
    """One model over all images; ``error`` is set (and ``images`` may be partial) if it failed."""

    model_id: str
    display_name: str
    images: tuple[ImageResult, ...]
    error: str | None = None

    def miou_curve(self) -> list[float]:
        """mIoU after k clicks, for k = 1..max_clicks (empty when no image was evaluated)."""
        if not self.images:
            return []
        return [float(v) for v in np.mean([r.ious for r in self.images], axis=0)]

    def summary(self) -> dict[str, float | int | None]:
        """The reported figures (None where there is nothing to average)."""
        if not self.images:
            return {key: None for key in CSV_COLUMNS[4:12]}
        curve = self.miou_curve()
        seconds = [s for r in self.images for s in r.click_seconds]
        return {
            **{f"miou_{k}": (curve[k - 1] if k <= len(curve) else None) for k in REPORTED_CLICKS},
            **{f"noc_{round(t * 100)}": float(np.mean([r.noc(t) for r in self.images]))
               for t in NOC_THRESHOLDS},
            "box_miou": float(np.mean([r.box_iou for r in self.images])),
            "seconds_per_click": float(np.mean(seconds)) if seconds else None,
            "encode_seconds": float(np.mean([r.encode_seconds for r in self.images])),
        }  # fmt: skip


@dataclass(frozen=True)
class EvaluationResult:
    models: tuple[ModelResult, ...]
    max_clicks: int

    @property
    def failed(self) -> list[ModelResult]:
        return [m for m in self.models if m.error is not None]


# --- running --------------------------------------------------------------------------------


def evaluate_backend(
    backend: Backend, samples: Sequence[Sample | SampleFiles], max_clicks: int, progress=None
) -> ModelResult:
    """Run the click protocol and the box prompt on every sample with a loaded backend."""
    results = []
    for item in samples:
        sample = item.load()
        start = time.perf_counter()
        embedding = backend.encode(sample.image)
        encode_seconds = time.perf_counter() - start
        trace = run_click_protocol(backend, embedding, sample.target, max_clicks)
        box, _ = box_iou(backend, embedding, sample.target)
        results.append(
            ImageResult(
                backend.model_id, sample.name, trace.ious, trace.clicks, box,
                trace.decode_seconds, encode_seconds,
            )
        )  # fmt: skip
        if progress is not None:
            progress.update(1)
    return ModelResult(backend.model_id, backend.spec.display_name, tuple(results))


def evaluate(
    models: Iterable[Backend | ModelEntry],
    samples: Sequence[Sample | SampleFiles],
    *,
    max_clicks: int = DEFAULT_MAX_CLICKS,
    device: str | None = None,
    precision: str | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Evaluate each model on every sample, one model at a time.

    A ``ModelEntry`` is loaded just before its run and released after it, so only one model is
    in memory. A model that fails (missing checkpoint, bad image, ...) gets its error message
    in its result and the others still run; dataset problems that concern every model
    (``DatasetError``) stop the whole evaluation.
    """
    from tqdm.auto import tqdm

    if max_clicks < 1:
        raise ValueError(f"max_clicks must be at least 1, got {max_clicks}.")
    models = list(models)
    bar = tqdm(total=len(models) * len(samples), unit="image", disable=not progress)
    results = []
    try:
        for model in models:
            spec = model.spec
            bar.set_description(spec.model_id)
            done_before = bar.n
            try:
                backend = model if isinstance(model, Backend) else create_backend(
                    spec, model.checkpoint, device, precision, checkpoint_dir=checkpoint_dir
                )
                results.append(evaluate_backend(backend, samples, max_clicks, bar))
            except DatasetError:
                raise
            except SamBackendError as exc:
                results.append(ModelResult(spec.model_id, spec.display_name, (), str(exc)))
                bar.update(len(samples) - (bar.n - done_before))
            finally:
                backend = None  # release a loaded model before the next one is built
    finally:
        bar.close()
    return EvaluationResult(tuple(results), max_clicks)


# --- writing --------------------------------------------------------------------------------


def _model_row(model: ModelResult) -> dict:
    return {
        "kind": "model", "model_id": model.model_id, "image": "",
        "images": len(model.images), **model.summary(), "error": model.error or "",
    }  # fmt: skip


def _image_row(model: ModelResult, image: ImageResult) -> dict:
    single = ModelResult(model.model_id, model.display_name, (image,))
    return {
        "kind": "image", "model_id": model.model_id, "image": image.image,
        "images": 1, **single.summary(), "error": "",
    }  # fmt: skip


def result_rows(result: EvaluationResult) -> list[dict]:
    """``model`` rows (means) followed by ``image`` rows, with the ``CSV_COLUMNS`` keys."""
    return [_model_row(m) for m in result.models] + [
        _image_row(m, image) for m in result.models for image in m.images
    ]


def write_results(result: EvaluationResult, out_dir: str | Path) -> dict[str, Path]:
    """Write results.csv, results.json and miou_vs_clicks.png into ``out_dir`` (created)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out / "results.csv",
        "json": out / "results.json",
        "plot": out / "miou_vs_clicks.png",
    }
    with open(paths["csv"], "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in result_rows(result):
            writer.writerow({k: _csv_value(row[k]) for k in CSV_COLUMNS})
    document = {
        "protocol": {
            "max_clicks": result.max_clicks,
            "noc_thresholds": list(NOC_THRESHOLDS),
            "first_click": "positive, at the object's interior point (farthest from its boundary)",
            "next_clicks": "interior point of the largest error region; positive if missed, "
                           "negative if false positive; previous logits fed back when supported",
            "box": "the ground truth's tight box, alone",
        },
        "models": [{**_model_row(m), "miou_curve": m.miou_curve()} for m in result.models],
        "images": [
            {**_image_row(m, image), "ious": list(image.ious),
             "clicks": [[c.x, c.y, c.label] for c in image.clicks],
             "click_seconds": list(image.click_seconds)}
            for m in result.models for image in m.images
        ],
    }  # fmt: skip
    paths["json"].write_text(json.dumps(document, indent=2), encoding="utf-8")
    plot_miou_curves(result, paths["plot"])
    return paths


def _csv_value(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def plot_miou_curves(result: EvaluationResult, path: str | Path) -> None:
    """mIoU against the number of clicks, one line per model (Agg canvas: no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    clicks = np.arange(1, result.max_clicks + 1)
    for model in result.models:
        curve = model.miou_curve()
        if curve:
            axes.plot(clicks, curve, marker="o", markersize=3, label=model.display_name)
    for threshold in NOC_THRESHOLDS:
        axes.axhline(threshold, color="0.75", linestyle="--", linewidth=0.8)
    axes.set_xlabel("number of clicks")
    axes.set_ylabel("mIoU")
    axes.set_ylim(0.0, 1.02)
    axes.set_xlim(1, max(2, result.max_clicks))
    axes.set_xticks(clicks if result.max_clicks <= 20 else clicks[::2])
    axes.grid(True, alpha=0.3)
    axes.set_title("mIoU against number of clicks")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    figure.savefig(path)


# --- command line ---------------------------------------------------------------------------


def _format(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_table(result: EvaluationResult, stream=sys.stdout) -> None:
    header = ("model", "mIoU@1", "mIoU@3", "mIoU@5", "NoC@85", "NoC@90", "box mIoU", "s/click")
    lines = [header]
    for model in result.models:
        s = model.summary()
        lines.append((
            model.model_id, _format(s["miou_1"]), _format(s["miou_3"]), _format(s["miou_5"]),
            _format(s["noc_85"], 2), _format(s["noc_90"], 2), _format(s["box_miou"]),
            _format(s["seconds_per_click"], 4),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    for row in lines:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)), file=stream)
    for model in result.failed:
        print(f"{model.model_id} failed: {model.error}", file=stream)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sam_backends.evaluate",
        description="Interactive-segmentation evaluation (clicks and box) of each model on "
        "images with ground-truth masks.",
    )
    parser.add_argument("--models", nargs="+", required=True, metavar="ID",
                        help="model ids (see: python -m sam_backends list)")
    parser.add_argument("--images", required=True, help="folder of images")
    parser.add_argument("--masks", required=True,
                        help="folder of masks: <image stem>.png, non-zero = object")
    parser.add_argument("--out", required=True, help="folder for results.csv/.json and the plot")
    parser.add_argument("--checkpoint-dir", default=None,
                        help="checkpoints folder (default: env SAM_CHECKPOINT_DIR or checkpoints/)")
    parser.add_argument("--device", default=None, help="auto, cuda, mps or cpu")
    parser.add_argument("--precision", default=None, help="auto, fp32, bf16 or fp16")
    parser.add_argument("--max-clicks", type=int, default=DEFAULT_MAX_CLICKS,
                        help=f"click budget per object (default {DEFAULT_MAX_CLICKS})")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser  # fmt: skip


def _missing_checkpoints(model_ids: Sequence[str], checkpoint_dir: str | None) -> list[str]:
    present = {info.model_id: info for info in list_models(checkpoint_dir)}
    return [
        f"{model_id}: checkpoint {present[model_id].checkpoint_path} is missing. "
        f"Download it with: python -m sam_backends download {model_id}"
        for model_id in model_ids
        if not present[model_id].present
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0 done, 1 some model failed while running, 2 bad arguments or inputs."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_clicks < 1:
        parser.error("--max-clicks must be at least 1")
    try:
        model_ids = list(dict.fromkeys(args.models))
        for model_id in model_ids:
            get_spec(model_id)
        problems = _missing_checkpoints(model_ids, args.checkpoint_dir)
        if problems:
            raise SamBackendError("\n".join(problems))
        samples = find_samples(args.images, args.masks)
        for sample in samples:  # fail now, not after the first model's run, on a bad pair
            sample.load()
        result = evaluate(
            [ModelEntry(model_id) for model_id in model_ids], samples,
            max_clicks=args.max_clicks, device=args.device, precision=args.precision,
            checkpoint_dir=args.checkpoint_dir, progress=not args.no_progress,
        )  # fmt: skip
    except SamBackendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = write_results(result, args.out)
    print_table(result)
    print(f"Wrote {', '.join(str(p) for p in paths.values())}")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
