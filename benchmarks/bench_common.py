"""What the speed benchmark's parent and worker processes share: photos, prompts, checkpoints.

Prompts are fixed functions of the image size (never tuned to a model's output), so every
variant of every model sees exactly the same clicks:

* timed clicks (``click_prompts``): a point (multimask on, as for a first click), a box, a box
  plus a foreground and a background point, and a refinement (the point click's best low-res
  logits fed back with a second point); the last three with multimask off.
* fidelity prompts (``fidelity_prompts``): two boxes, the box with points, a 3x3 grid of
  single points (three candidates each; the centre last) and the refinement above.

A refinement always feeds back the best low-res logits of the most recent point click.
"""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MEDIA = REPO_ROOT.parent / "shared" / "media"
DEFAULT_CACHE = Path.home() / ".cache" / "sam-workbench" / "bench-checkpoints"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results" / "latest.json"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
QUICK_PHOTOS = 2


@dataclasses.dataclass(frozen=True)
class Click:
    """One prompt in plain data: ``refine`` means "add the previous point click's logits"."""

    kind: str
    points: tuple = ()
    labels: tuple = ()
    box: tuple | None = None
    multimask: bool = False
    refine: bool = False


def cpu_name() -> str:
    """The CPU's model name and whether it does bf16 natively (every figure names its CPU)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    for line in text.splitlines():
        if line.startswith("model name"):
            native = "avx512_bf16" in text or "amx_bf16" in text
            return f"{line.split(':', 1)[1].strip()} ({'bf16' if native else 'no native bf16'})"
    return "unknown CPU"


def photo_paths(media: Path, quick: bool) -> list[Path]:
    """The photos in ``media`` (sorted by name); the first two in quick mode."""
    photos = sorted(p for p in Path(media).iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    return photos[:QUICK_PHOTOS] if quick else photos


def load_photo(path: Path) -> np.ndarray:
    """RGB uint8 H x W x 3, EXIF orientation applied (as the workbench loads images)."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def click_prompts(height: int, width: int) -> list[Click]:
    """The four timed click kinds for an H x W image."""
    cx, cy = width * 0.5, height * 0.5
    box = (width * 0.25, height * 0.25, width * 0.75, height * 0.75)
    return [
        Click("point", ((cx, cy),), (1,), multimask=True),
        Click("box", box=box),
        Click("box+points", ((cx, cy), (width * 0.3, height * 0.3)), (1, 0), box=box),
        Click("refine", ((width * 0.6, height * 0.55),), (1,), refine=True),
    ]


def fidelity_prompts(height: int, width: int) -> list[Click]:
    """The fixed prompt set for fast-vs-exact fidelity on an H x W image."""
    cells = sorted(((i, j) for j in range(3) for i in range(3)), key=lambda c: c == (1, 1))
    grid = [
        Click("point", ((width * (i + 1) / 4, height * (j + 1) / 4),), (1,), multimask=True)
        for i, j in cells
    ]
    boxes = [
        Click("box", box=(width * 0.25, height * 0.25, width * 0.75, height * 0.75)),
        Click("box", box=(width * 0.1, height * 0.3, width * 0.5, height * 0.9)),
    ]
    timed = click_prompts(height, width)
    return boxes + [timed[2]] + grid + [timed[3]]


def to_prompts(click: Click, previous_logits: np.ndarray | None) -> Any:
    """``sam_backends.Prompts`` for ``click`` (``previous_logits``: 1 x 256 x 256 or None)."""
    from sam_backends import Prompts

    return Prompts(
        points=click.points, labels=click.labels, box=click.box, multimask=click.multimask,
        mask_input=previous_logits if click.refine else None,
    )


def upstream_kwargs(click: Click, previous_logits: np.ndarray | None) -> dict:
    """Keyword arguments for an upstream predictor's ``predict`` for ``click``."""
    return {
        "point_coords": np.asarray(click.points, dtype=np.float32) if click.points else None,
        "point_labels": np.asarray(click.labels, dtype=np.int64) if click.points else None,
        "box": None if click.box is None else np.asarray(click.box, dtype=np.float32),
        "mask_input": previous_logits if click.refine else None,
        "multimask_output": click.multimask,
    }


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    return float(np.percentile(values, q)) if values else None


def median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def checkpoint_file(cache: Path, model_id: str) -> Path:
    return Path(cache) / f"random-{model_id}.pt"


def ensure_random_edgetam(cache: Path, seed: int = 0) -> Path:
    """A full-size random-weight EdgeTAM folder (transformers' layout), written once to
    ``cache``; EdgeTAM has no upstream checkpoint file, its reference is transformers itself."""
    from sam_backends.testing.edgetam_models import write_random_edgetam

    folder = Path(cache) / "random-edgetam"
    if not (folder / "config.json").is_file():
        write_random_edgetam(folder, seed=seed)
    return folder


def json_from_process(argv: list[str], env: dict[str, str] | None = None) -> Any:
    """``python argv...`` in a fresh interpreter (a benchmark's own child, so what it measures
    starts cold and no run inherits another's threads or heap), and the JSON value on the last
    line it prints. A failed child stops the benchmark with the end of its error output."""
    import json
    import subprocess
    import sys

    child = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {child.returncode}):\n"
                         f"{child.stderr[-2000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def app_context(model_id: str, cache: Path, prefix: str = "bench-") -> Any:
    """The app's ``AppContext`` as ``python app.py`` builds it, serving ``model_id`` with a
    random-weight, full-size checkpoint (``ensure_random_checkpoint``) and GrabCut, with its
    checkpoints and temporary files in a fresh folder: for benchmarks that measure the app's
    own entrances (``encode``, ``predict``) in a process of their own. Close it after use."""
    import tempfile

    from sam_backends import get_spec
    from workbench.config import AppConfig, ExtraModel
    from workbench.context import AppContext

    spec = get_spec(model_id)
    work = Path(tempfile.mkdtemp(prefix=prefix))
    checkpoint = ensure_random_checkpoint(model_id, cache)
    return AppContext(AppConfig(
        models=("grabcut",), default_model=spec.model_id, device="cpu",
        extra_models=(ExtraModel(spec, checkpoint),), precision="auto",
        checkpoint_dir=work / "checkpoints", cache_bytes="1GiB", temp_dir=work / "temp",
        max_image_pixels=8_000_000))


def ensure_random_checkpoint(model_id: str, cache: Path, seed: int = 0) -> Path:
    """A full-size random-weight checkpoint for ``model_id`` in the official format (a model
    folder for a family whose upstream writes one: ``write_random_folder``).

    Built with the upstream builders (compute time does not depend on weight values) and
    written once to ``cache`` (outside the repository); later runs reuse it.
    """
    import torch

    from sam_backends import get_spec

    spec = get_spec(model_id)
    from sam_backends.families import upstream_of

    upstream = upstream_of(spec.family)
    if hasattr(upstream, "write_random_folder"):  # a transformers model folder (SAM-HQ)
        folder = Path(cache) / f"random-{model_id}"
        if not (folder / "config.json").is_file():
            partial = folder.with_name(folder.name + ".partial")
            upstream.write_random_folder(spec, partial, seed)
            partial.replace(folder)
        return folder
    path = checkpoint_file(cache, model_id)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_upstream_model(spec)
    state = model.state_dict()
    key = upstream.CHECKPOINT_KEY
    payload = state if key is None else {key: state}
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    partial.replace(path)
    return path


def build_upstream_model(spec: Any) -> Any:
    """The upstream architecture for ``spec`` with default (random) initialisation, eval mode."""
    from sam_backends.families import upstream_of

    return upstream_of(spec.family).build_architecture(spec).eval()
