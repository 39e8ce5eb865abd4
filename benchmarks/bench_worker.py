"""One model, one variant, in its own process (so its peak memory is its own).

    python benchmarks/bench_worker.py --model sam-vit-b --variant upstream|fp32|auto \
        --checkpoint CKPT --photos a.jpg b.jpg --clicks 5 --exact-dir DIR --out result.json

* ``upstream``: ``segment_anything.SamPredictor`` / ``SAM2ImagePredictor`` in fp32 with the
  library defaults (no thread or allocator policy applied), built from the same checkpoint;
  for SAM-HQ, transformers' processor and model on the same folder (``samhq/upstream.py``).
* ``fp32`` / ``auto``: ``sam_backends.create_backend(..., precision=...)``.

Every variant encodes a warm-up image (not timed), then each photo once (timed); clicks are
timed after one warm-up round. A click's time is everything up to the full-resolution masks;
the overlay time adds what the UI does next (``workbench.render.Preview.render`` of the best mask
and its JPEG data URL). The fixed fidelity prompts are run on every photo and their masks (and
the embeddings) saved to ``--exact-dir`` by the fp32 variant, then compared by the others.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_common import (  # noqa: E402
    click_prompts,
    fidelity_prompts,
    load_photo,
    to_prompts,
    upstream_kwargs,
)

WARMUP_SIZE = (480, 640)


class OursRunner:
    """``sam_backends`` backend: encode returns an embedding, predict a ``Prediction``."""

    def __init__(self, model_id: str, checkpoint: Path, precision: str) -> None:
        from sam_backends import create_backend

        self.backend = create_backend(model_id, checkpoint=checkpoint, device="cpu",
                                      precision=precision)
        self.precision = self.backend.precision

    def encode(self, image: np.ndarray) -> Any:
        return self.backend.encode(image)

    def predict(self, embedding: Any, click: Any, previous: np.ndarray | None) -> tuple:
        """(masks C x H x W bool, scores C, low-res logits C x 256 x 256).

        The masks come as ``PredictionMasks``: the best one is made inside ``predict`` (so it
        is timed), another only when indexed, as in the UI.
        """
        prediction = self.backend.predict(embedding, to_prompts(click, previous))
        return PredictionMasks(prediction), prediction.scores, prediction.low_res_logits

    def features(self, embedding: Any) -> dict[str, np.ndarray]:
        """The embedding in upstream layouts, fp32 (for the cosine similarity)."""
        backend = self.backend
        features = embedding.features
        if hasattr(backend, "fast_decoder"):
            features = backend.fast_decoder.restore(features)
        if "image_embeddings" in features:  # EdgeTAM (transformers): the decoder's 3 levels
            *high_res, last = features["image_embeddings"]
            features = {"image_embed": last, "high_res_feats": tuple(high_res)}
        out = {"image_embed": features["image_embed"].float().numpy()}
        for i, level in enumerate(features.get("high_res_feats", ())):
            out[f"high_res_{i}"] = level.float().numpy()
        return out

    def embedding_bytes(self, embedding: Any) -> int:
        return int(embedding.nbytes)


class PredictionMasks:
    """``masks[i]`` is ``prediction.mask(i)``; ``np.asarray(masks)`` makes every candidate."""

    def __init__(self, prediction: Any) -> None:
        self.prediction = prediction

    def __getitem__(self, index: int) -> np.ndarray:
        return self.prediction.mask(index)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.prediction.masks, dtype=dtype)


class UpstreamRunner:
    """The official predictor, holding one image at a time (as it is designed to)."""

    precision = "fp32"

    def __init__(self, model_id: str, checkpoint: Path) -> None:
        import torch

        from benchmarks.bench_common import build_upstream_model
        from sam_backends import get_spec
        from sam_backends.families import upstream_of

        spec = get_spec(model_id)
        upstream = upstream_of(spec.family)
        if checkpoint.is_dir():  # a transformers model folder (SAM-HQ): its own pipeline
            self.predictor = upstream.folder_predictor(checkpoint)
            return
        model = build_upstream_model(spec)
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        key = upstream.CHECKPOINT_KEY
        model.load_state_dict(state if key is None else state[key], strict=True)
        self.predictor = upstream.image_predictor(model)

    def encode(self, image: np.ndarray) -> Any:
        self.predictor.set_image(image)
        return image  # the predictor keeps the state; the image identifies it

    def predict(self, embedding: Any, click: Any, previous: np.ndarray | None) -> tuple:
        masks, scores, low_res = self.predictor.predict(**upstream_kwargs(click, previous))
        return masks, scores, low_res

    def features(self, embedding: Any) -> dict[str, np.ndarray]:
        return {}

    def embedding_bytes(self, embedding: Any) -> int:
        return 0


def peak_rss_bytes() -> int:
    """This process's peak resident memory (``VmHWM``; ``ru_maxrss`` where /proc is absent).

    ``ru_maxrss`` alone is wrong for a worker: Linux carries the parent's resident size over
    through fork and exec, so a worker started by a large parent reports at least its size.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _timed(function: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of the whole process: every thread's work)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - start, time.process_time() - cpu


def _best(scores: np.ndarray) -> int:
    return int(np.argmax(scores))


def run_clicks(runner: Any, embedding: Any, image: np.ndarray, rounds: int,
               timings: dict[str, list[float]], cpu: dict[str, list[float]],
               overlays: list[float]) -> None:
    """Time every click kind ``rounds`` times (wall and CPU); also click-to-overlay."""
    from workbench.drawing import SPEC
    from workbench.render import Layer, Preview, data_url

    preview = Preview(image)  # built once per uploaded image in the UI, not per click
    clicks = click_prompts(*image.shape[:2])
    for _ in range(rounds):
        previous = None
        for click in clicks:
            start, cpu_start = time.perf_counter(), time.process_time()
            masks, scores, low_res = runner.predict(embedding, click, previous)
            clicked, cpu_end = time.perf_counter(), time.process_time()
            best = _best(scores)
            shown = np.asarray(masks[best], dtype=bool)  # SAM 2's predictor returns 0/1 floats
            data_url(preview.render([Layer(shown, SPEC.colour_for(1), True)]))
            done = time.perf_counter()
            timings.setdefault(click.kind, []).append(clicked - start)
            cpu.setdefault(click.kind, []).append(cpu_end - cpu_start)
            overlays.append(done - start)
            if click.kind == "point":
                previous = low_res[best: best + 1]


def run_fidelity(runner: Any, embedding: Any, image: np.ndarray) -> list[np.ndarray]:
    """Masks (each C x H x W bool) for the fixed fidelity prompts, in order."""
    results = []
    previous = None
    for click in fidelity_prompts(*image.shape[:2]):
        masks, scores, low_res = runner.predict(embedding, click, previous)
        results.append(np.asarray(masks, dtype=bool))
        if click.kind == "point":
            previous = low_res[_best(scores): _best(scores) + 1]
    return results


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def save_exact(folder: Path, index: int, masks: list[np.ndarray],
               features: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    packed = {f"mask_{i}": np.packbits(m) for i, m in enumerate(masks)}
    shapes = {f"shape_{i}": np.asarray(m.shape) for i, m in enumerate(masks)}
    np.savez(folder / f"photo{index}.npz", **packed, **shapes,
             **{f"feat_{k}": v for k, v in features.items()})


def compare_with_exact(folder: Path, index: int, masks: list[np.ndarray],
                       features: dict[str, np.ndarray]) -> dict[str, Any]:
    """IoU of every returned mask and cosine similarity of every feature map vs fp32."""
    saved = np.load(folder / f"photo{index}.npz")
    ious, equal = [], 0
    for i, mask in enumerate(masks):
        shape = tuple(saved[f"shape_{i}"])
        exact = np.unpackbits(saved[f"mask_{i}"])[: int(np.prod(shape))].reshape(shape)
        exact = exact.astype(bool)
        equal += int(exact.shape == mask.shape and np.array_equal(exact, mask))
        ious.extend(_iou(e, m) for e, m in zip(exact, mask))
    cosines = {k: _cosine(v, saved[f"feat_{k}"]) for k, v in features.items()}
    return {"ious": ious, "identical_prompts": equal, "prompts": len(masks), "cosine": cosines}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--variant", choices=("upstream", "fp32", "auto"), required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--photos", type=Path, nargs="+", required=True)
    parser.add_argument("--clicks", type=int, default=5, help="rounds of timed clicks per photo")
    parser.add_argument("--exact-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    import torch

    torch.set_grad_enabled(False)
    started = time.perf_counter()
    if args.variant == "upstream":
        runner: Any = UpstreamRunner(args.model, args.checkpoint)
    else:
        runner = OursRunner(args.model, args.checkpoint, args.variant)
    load_seconds = time.perf_counter() - started
    images = [load_photo(p) for p in args.photos]
    warmup = np.ascontiguousarray(images[0][: WARMUP_SIZE[0], : WARMUP_SIZE[1]])

    embedding = runner.encode(warmup)  # first call: allocations, oneDNN kernels; not timed
    for click in click_prompts(*warmup.shape[:2])[:3]:
        runner.predict(embedding, click, None)

    encode_seconds, encode_cpu, timings, cpu, overlays = [], [], {}, {}, []
    fidelity, nbytes = [], []
    for index, image in enumerate(images):
        embedding, seconds, cpu_seconds = _timed(lambda image=image: runner.encode(image))
        encode_seconds.append(seconds)
        encode_cpu.append(cpu_seconds)
        nbytes.append(runner.embedding_bytes(embedding))
        run_clicks(runner, embedding, image, args.clicks, timings, cpu, overlays)
        masks = run_fidelity(runner, embedding, image)
        features = runner.features(embedding)
        if args.variant == "fp32":
            save_exact(args.exact_dir, index, masks, features)
        elif (args.exact_dir / f"photo{index}.npz").is_file():
            fidelity.append(compare_with_exact(args.exact_dir, index, masks, features))

    result = {
        "model": args.model,
        "variant": args.variant,
        "precision": runner.precision,
        "threads": torch.get_num_threads(),
        "load_seconds": load_seconds,
        "encode_seconds": encode_seconds,
        "encode_cpu_seconds": encode_cpu,
        "click_seconds": timings,
        "click_cpu_seconds": cpu,
        "overlay_seconds": overlays,
        "embedding_bytes": max(nbytes) if nbytes else 0,
        "peak_rss_bytes": peak_rss_bytes(),
        "fidelity": fidelity,
        "photos": [p.name for p in args.photos],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
