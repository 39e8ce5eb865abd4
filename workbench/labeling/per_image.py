"""The one per-image function every executor runs: ``label_image(loaded, item, run)``.

Pure apart from reading the image file: no project, no database, no executor. A worker loads
its models once (``load_models``), then turns each ``WorkItem`` (an image path, and boxes in
"boxes" mode) into an ``ImageResult``: the objects found (COCO RLE, class name, score, box) or
the reason the image failed. Results are plain JSON-ready values, so they travel through
process pipes and Ray's object store unchanged and are merged by the driver alone.

``label_stream`` decodes the next images in a background thread while the model works on the
current one (a bounded queue: at most ``prefetch`` decoded images wait).

Failures, and what becomes of them:

* the image cannot be read or is over the pixel limit (``ImageError``), or the engine refuses
  it (any ``SamBackendError``): an ``ImageResult`` with ``error`` set; the run goes on;
* a prompt that finds nothing: an ``ImageResult`` with no objects (a success);
* anything else is a bug or a dying worker: it propagates, and the run can be resumed.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sam_backends.errors import SamBackendError

from .spec import EVERYTHING_CLASS, LabelRun, Models

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class WorkItem:
    """One image to label: its id in the project, its absolute path, and for "boxes" mode the
    boxes to cut out as (cx, cy, w, h) normalised to [0, 1] (YOLO's convention) with a class
    name each."""

    image_id: int
    path: str
    boxes: tuple[tuple[float, float, float, float, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"image_id": int(self.image_id), "path": self.path,
                "boxes": json.dumps([list(b) for b in self.boxes])}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> WorkItem:
        boxes = json.loads(str(row.get("boxes") or "[]"))
        return cls(int(row["image_id"]), str(row["path"]),
                   tuple((float(a), float(b), float(c), float(d), str(n))
                         for a, b, c, d, n in boxes))


@dataclass(frozen=True)
class FoundObject:
    """One object a model found: its class (by name), mask (COCO RLE at the image's size),
    score in [0, 1], and tight box XYXY in pixels (exclusive max)."""

    class_name: str
    rle: dict = field(repr=False)
    score: float
    box: Box


@dataclass(frozen=True)
class ImageResult:
    """What labelling one image gave: objects (possibly none), or ``error`` (the reason)."""

    image_id: int
    path: str
    objects: tuple[FoundObject, ...] = ()
    error: str = ""
    width: int = 0
    height: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ImageResult:
        data = json.loads(text)
        objects = tuple(FoundObject(o["class_name"], o["rle"], float(o["score"]),
                                    tuple(o["box"])) for o in data.pop("objects"))
        return cls(objects=objects, **data)


@dataclass
class LoadedModels:
    """A worker's models, loaded once: the SAM backend and, for text through a detector, the
    detector-then-SAM pipeline."""

    backend: Any
    pipeline: Any = None


def load_models(models: Models, run: LabelRun) -> LoadedModels:
    """Load what ``run`` needs, as ``models`` says (weights, device, precision, threads)."""
    from sam_backends import create_backend

    backend = create_backend(models.spec, checkpoint=models.checkpoint, device=models.device,
                             precision=models.precision, checkpoint_dir=models.checkpoint_dir)
    if models.threads:  # after load(), which applies the process's default policy
        from sam_backends.speed.accel import configure_threads

        configure_threads(int(models.threads))
    pipeline = None
    if run.mode == "text" and not backend.spec.capabilities.text:
        from sam_backends.text import DetectThenSegment, load_owlv2

        precision = models.precision if models.precision in ("fp32", "bf16") else "fp32"
        detector = load_owlv2(models.detector, models.device, precision,
                              checkpoint_dir=models.checkpoint_dir)
        pipeline = DetectThenSegment(detector, backend)
    return LoadedModels(backend, pipeline)


def decode(item: WorkItem, run: LabelRun) -> np.ndarray | ImageResult:
    """The image's RGB pixels, or the failed result saying why they cannot be had."""
    from sam_backends.images import load_image

    try:
        return load_image(item.path, run.max_pixels)
    except SamBackendError as exc:
        return ImageResult(item.image_id, item.path, error=str(exc) or type(exc).__name__)


def label_image(loaded: LoadedModels, item: WorkItem, run: LabelRun,
                image: np.ndarray | ImageResult | None = None) -> ImageResult:
    """Label one image as ``run`` asks; ``image``: its pixels when decoded ahead.

    Returns an ``ImageResult``: objects highest score first (none is a success), or ``error``
    for an image the engine cannot read or refuses (see the module doc)."""
    start = time.perf_counter()
    pixels = decode(item, run) if image is None else image
    if isinstance(pixels, ImageResult):
        return pixels
    height, width = pixels.shape[:2]
    try:
        objects = _find(loaded, item, run, pixels)
    except SamBackendError as exc:
        return ImageResult(item.image_id, item.path, error=str(exc) or type(exc).__name__,
                           width=width, height=height)
    return ImageResult(item.image_id, item.path, objects, width=width, height=height,
                       seconds=time.perf_counter() - start)


def _find(loaded: LoadedModels, item: WorkItem, run: LabelRun,
          image: np.ndarray) -> tuple[FoundObject, ...]:
    from sam_backends.masks import encode_rle, mask_box

    backend = loaded.backend
    embedding = backend.encode(image)
    if run.mode == "boxes":
        return tuple(_cut_out_boxes(backend, embedding, item, image.shape[:2]))
    if run.mode == "everything":
        from sam_backends.automatic import EverythingParams, segment_everything

        params = EverythingParams(points_per_side=int(run.points_per_side),
                                  pred_iou_thresh=float(run.threshold))
        found = segment_everything(backend, embedding, params)
        names = [EVERYTHING_CLASS] * len(found)
    elif loaded.pipeline is not None:
        found = loaded.pipeline.segment_text(image, run.phrases, run.threshold,
                                             embedding=embedding)
        names = list(found.labels)
    else:
        from sam_backends.text import segment_text

        found = segment_text(backend, embedding, run.phrases, run.threshold)
        names = list(found.labels)
    objects = []
    for mask, score, name in zip(found.masks, found.scores, names):
        box = mask_box(mask)
        if box is None:
            continue
        objects.append(FoundObject(name, encode_rle(mask), round(float(score), 6),
                                   tuple(float(v) for v in box)))
    return tuple(objects)


def _cut_out_boxes(backend: Any, embedding: Any, item: WorkItem,
                   size: tuple[int, int]) -> Iterator[FoundObject]:
    from sam_backends import Prompts
    from sam_backends.masks import encode_rle, mask_box

    height, width = size
    for cx, cy, w, h, name in item.boxes:
        x0, x1 = max(0.0, (cx - w / 2) * width), min(float(width), (cx + w / 2) * width)
        y0, y1 = max(0.0, (cy - h / 2) * height), min(float(height), (cy + h / 2) * height)
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        prediction = backend.predict(embedding, Prompts(box=(x0, y0, x1, y1)))
        mask = prediction.mask(prediction.best_index)
        box = mask_box(mask)
        if box is None:
            continue
        score = float(prediction.scores[prediction.best_index])
        yield FoundObject(name, encode_rle(mask), round(min(max(score, 0.0), 1.0), 6),
                          tuple(float(v) for v in box))


_DONE = object()


def label_stream(loaded: LoadedModels, items: Iterable[WorkItem], run: LabelRun,
                 prefetch: int = 2) -> Iterator[ImageResult]:
    """``label_image`` over ``items``, in order, with the next ``prefetch`` images decoded in a
    background thread meanwhile (their pixels wait in a bounded queue)."""
    ready: queue.Queue = queue.Queue(maxsize=max(1, int(prefetch)))
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not put((item, decode(item, run))):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put((None, exc))
            return
        put((_DONE, None))

    reader = threading.Thread(target=read, name="label-decode", daemon=True)
    reader.start()
    try:
        while True:
            item, pixels = ready.get()
            if item is _DONE:
                return
            if item is None:
                raise pixels
            yield label_image(loaded, item, run, pixels)
    finally:
        stop.set()
        reader.join(timeout=5)
