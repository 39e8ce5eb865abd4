"""The driver of a run: plan what is left, hand it to an executor, merge each result.

The driver is the one writer: executors (threads, processes, Ray actors) only compute, and each
``ImageResult`` is merged here as it arrives, in one transaction per image:

* the run's objects for the image (``StoredObject``, source "model", run key
  ``<run key><n>``) replace the run's own earlier ones (``replace_run_objects``: a person's
  objects, and objects a person edited, are never touched; a "new" image becomes "auto");
* the marker ``label/<run key><image id>`` (state) is written in the same transaction.

So an image is done exactly when its objects are stored, whatever kills the run (Ctrl-C,
``kill -9``, a dead worker): the next run skips the marked images (``plan``) and labels the rest;
running a finished run again labels nothing and duplicates nothing.

A failing image (unreadable, over the pixel limit) is recorded on the image with its reason
(``record_image_error``) and gets no marker: the next run tries it again (cheaply: it fails on
its header), so a file fixed meanwhile is labelled then.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.projects.model import StoredObject
from workbench.projects.store import MISSING

from .executors import Executor
from .per_image import ImageResult, WorkItem
from .spec import LabelRun, LabelRunError, Models

PAGE = 1000
RUNS_PREFIX = "label-runs/"


@dataclass(frozen=True)
class Plan:
    """What a run will do: the images to label, and how many it skips (done before, missing)."""

    items: tuple[WorkItem, ...]
    matched: int
    done_before: int
    missing: int


@dataclass
class Progress:
    """A run's counters, updated by the driver as results are merged (read by the page)."""

    total: int = 0  # images to label in this run (not counting those skipped)
    done: int = 0  # merged: labelled or failed
    labelled: int = 0
    failed: int = 0
    found: int = 0  # objects stored
    skipped: int = 0  # done by an earlier run, or missing
    started: float = field(default_factory=time.monotonic)
    finished: bool = False
    cancelled: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def images_per_second(self) -> float:
        return self.done / self.seconds if self.done and self.seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the rate so far; None before the first image."""
        rate = self.images_per_second
        return (self.total - self.done) / rate if rate else None

    def snapshot(self) -> Progress:
        return replace(self, failures=list(self.failures))


def matches(path: str, pattern: str) -> bool:
    """``pattern`` against a relative POSIX path: ``*`` also crosses folders; a leading
    ``**/`` also matches at the top ("**/*.jpg" takes "a.jpg" and "x/y/a.jpg")."""
    if not pattern or pattern in ("*", "**", "**/*"):
        return True
    return fnmatch.fnmatchcase(path, pattern) or (
        pattern.startswith("**/") and fnmatch.fnmatchcase(path, pattern[3:]))


def plan(store: Any, run: LabelRun) -> Plan:
    """The images of ``store`` matching ``run.images`` that this run has not finished."""
    done = {int(key.rsplit(":", 1)[1]) for key in store.state_with_prefix(run.marker_prefix)}
    items, matched, done_before, missing = [], 0, 0, 0
    boxes = BoxLabels(Path(run.boxes)) if run.mode == "boxes" else None
    offset = 0
    while True:
        page = store.page(offset, PAGE)
        offset += len(page)
        for entry in page:
            if not matches(entry.path, run.images):
                continue
            matched += 1
            if entry.image_id in done:
                done_before += 1
            elif entry.error == MISSING:
                missing += 1
            else:
                items.append(WorkItem(entry.image_id, str(store.folder / entry.path),
                                      boxes.for_image(entry.path) if boxes else ()))
        if len(page) < PAGE:
            break
    return Plan(tuple(items), matched, done_before, missing)


class BoxLabels:
    """YOLO detection labels as boxes to cut out: ``<folder>/<image path without suffix>.txt``
    (else ``<folder>/<file stem>.txt``), lines ``class cx cy w h`` normalised to [0, 1];
    class names from ``classes.txt`` (a name per line) or ``data.yaml``'s ``names``."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise LabelRunError(f"{folder} is not a folder of box label files.")
        self.folder = folder
        self.names = self._names()

    def _names(self) -> dict[int, str]:
        listed = self.folder / "classes.txt"
        if listed.is_file():
            lines = [n.strip() for n in listed.read_text(encoding="utf-8").splitlines()]
            return dict(enumerate(n for n in lines if n))
        data = self.folder / "data.yaml"
        if data.is_file():
            import yaml

            names = (yaml.safe_load(data.read_text(encoding="utf-8")) or {}).get("names", {})
            return dict(enumerate(names)) if isinstance(names, list) else {
                int(k): str(v) for k, v in names.items()}
        return {}

    def for_image(self, relative: str) -> tuple[tuple[float, float, float, float, str], ...]:
        stem = Path(relative).with_suffix(".txt")
        for path in (self.folder / stem, self.folder / stem.name):
            if path.is_file():
                return tuple(self._read(path))
        return ()

    def _read(self, path: Path):
        for line in path.read_text(encoding="utf-8").splitlines():
            values = line.split()
            if len(values) < 5:
                continue
            try:
                klass, box = int(values[0]), [float(v) for v in values[1:5]]
            except ValueError:
                continue
            yield (*box, self.names.get(klass, str(klass)))


class Merger:
    """Writes results into the project (the driver's one writer); makes classes as needed."""

    def __init__(self, store: Any, run: LabelRun) -> None:
        self.store = store
        self.run = run
        self.class_ids: dict[str, int] = {}
        for name in run.class_names():
            self.class_id(name)

    def class_id(self, name: str) -> int:
        if name not in self.class_ids:
            found = self.store.class_by_name(name) or self.store.add_class(name)
            self.class_ids[name] = found.class_id
        return self.class_ids[name]

    def merge(self, result: ImageResult) -> int:
        """Store one image's result; returns the objects stored (0 for a failure)."""
        run, store = self.run, self.store
        if result.error:
            store.record_image_error(result.image_id, result.error)
            return 0
        objects = [StoredObject(
            image_id=result.image_id, local_id=0, class_id=self.class_id(found.class_name),
            rle=found.rle, instance_name=found.class_name, source="model",
            model_id=run.model_id, prompts={"box": list(found.box)}, score=found.score,
            run_key=f"{run.run_key}{i}") for i, found in enumerate(result.objects)]
        marker = {"found": len(objects), "at": round(time.time(), 3)}
        store.replace_run_objects(result.image_id, run.run_key, objects,
                                  state={run.marker_key(result.image_id): marker})
        entry = store.entry(result.image_id)
        if result.width and ((entry.width, entry.height) != (result.width, result.height)
                             or entry.error):
            store.set_image_size(result.image_id, result.width, result.height)
        return len(objects)


def label_project(store: Any, run: LabelRun, models: Models, executor: Executor, *,
                  cancel: threading.Event | None = None, progress: Progress | None = None,
                  on_result: Callable[[Progress], None] | None = None) -> Progress:
    """Run ``run`` over ``store``'s images with ``executor``; returns the final counters.

    ``progress`` is updated in place as each result is merged (``on_result`` is called after
    each), so another thread can show it; ``cancel`` stops the run between images."""
    cancel = cancel or threading.Event()
    progress = progress or Progress()
    todo = plan(store, run)
    progress.total = len(todo.items)
    progress.skipped = todo.done_before + todo.missing
    merger = Merger(store, run)
    store.set_state(f"{RUNS_PREFIX}{run.run_key}", {**run.to_dict(), "executor": executor.name,
                                                   "started": round(time.time(), 3)})
    results = executor.run(todo.items, run, models, cancel)
    try:
        for result in results:
            progress.found += merger.merge(result)
            progress.done += 1
            if result.error:
                progress.failed += 1
                progress.failures.append((_relative(store, result.path), result.error))
            else:
                progress.labelled += 1
            if on_result is not None:
                on_result(progress)
            if cancel.is_set():
                break
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()
    progress.cancelled = cancel.is_set() and progress.done < progress.total
    progress.finished = True
    return progress


def _relative(store: Any, path: str) -> str:
    try:
        return Path(path).relative_to(store.folder).as_posix()
    except ValueError:
        return path
