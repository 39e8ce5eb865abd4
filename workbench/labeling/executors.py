"""Where a run's images are labelled: the pluggable executor interface and the local one.

An executor takes the images still to do and yields one ``ImageResult`` per image, in whatever
order they finish; it never touches the project (the driver, the one writer, merges each result
as it comes). Every executor runs the same ``per_image.label_stream``, so the code a cluster
runs is the code tested here.

    LocalExecutor(workers=1)   # this process: a decode thread ahead of the model
    LocalExecutor(workers=2)   # worker processes (spawned), each loading the model once
    RayExecutor(address=None)  # Ray Data actors (``ray_executor``), same results

Cancelling (``cancel`` set): no new image is started; what is running finishes or is dropped,
and the driver stops reading. Images not merged are simply done by the next run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Protocol

from .per_image import ImageResult, LoadedModels, WorkItem, label_stream, load_models
from .spec import LabelRun, LabelRunError, Models


class Executor(Protocol):
    """Labels ``items`` with ``run``'s models; yields each image's result as it is ready."""

    name: str

    def run(self, items: Sequence[WorkItem], run: LabelRun, models: Models,
            cancel: threading.Event) -> Iterator[ImageResult]: ...


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class LocalExecutor:
    """This machine: ``workers`` model replicas, each on ``threads`` PyTorch threads.

    Args:
        workers: 1 runs in this process (a background thread decodes the next images; the
            models stay loaded for the executor's next run); more start that many worker
            processes (``spawn``), each loading the models once per run.
        threads: PyTorch threads per worker; None: the models' own ``threads`` (else this
            process's default) for one worker, else the cores divided among the workers. One
            worker runs in the iterating thread and limits that thread only.
        chunk: images per task sent to a worker process (decoded ahead within the chunk);
            at most two chunks per worker wait, so memory stays bounded.
        prefetch: decoded images waiting for the model, per worker.
    """

    def __init__(self, workers: int = 1, *, threads: int | None = None, chunk: int = 2,
                 prefetch: int = 2) -> None:
        if int(workers) < 1:
            raise LabelRunError(f"--workers is at least 1, got {workers}.")
        self.workers = int(workers)
        self.threads = threads
        self.chunk = max(1, int(chunk))
        self.prefetch = max(1, int(prefetch))
        self.name = f"local, {self.workers} worker{'s' if self.workers > 1 else ''}"
        # workers=1: the models of the last run, kept for the next (the page runs again)
        self._loaded: tuple | None = None
        self._lock = threading.Lock()

    def run(self, items: Sequence[WorkItem], run: LabelRun, models: Models,
            cancel: threading.Event) -> Iterator[ImageResult]:
        if not items:
            return iter(())
        if self.workers == 1:
            if self.threads is not None:
                models = models.with_threads(self.threads)
            return self._in_process(items, run, models, cancel)
        threads = self.threads or max(1, available_cores() // self.workers)
        return self._processes(items, run, models.with_threads(threads), cancel)

    def _in_process(self, items, run, models, cancel) -> Iterator[ImageResult]:
        """The run in the thread that iterates it, on ``models.threads`` threads for that thread
        alone (``accel.this_thread_on``): this process may be the app, whose other threads
        keep theirs (the page's runs ask for one, so the other core stays with the clicks)."""
        from sam_backends.speed.accel import this_thread_on

        key = (models, run.mode == "text")
        with self._lock:
            if self._loaded is None or self._loaded[0] != key:
                self._loaded = (key, load_models(models.with_threads(None), run))
            loaded = self._loaded[1]
        with this_thread_on(models.threads):
            yield from label_stream(loaded, _until(items, cancel), run, self.prefetch)

    def _processes(self, items, run, models, cancel) -> Iterator[ImageResult]:
        import multiprocessing
        from concurrent.futures.process import BrokenProcessPool

        chunks = [items[i:i + self.chunk] for i in range(0, len(items), self.chunk)]
        pool = ProcessPoolExecutor(self.workers, multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(models, run))
        pending: set[Future] = set()
        try:
            next_chunk = 0
            while next_chunk < len(chunks) or pending:
                while (next_chunk < len(chunks) and len(pending) < 2 * self.workers
                       and not cancel.is_set()):
                    pending.add(pool.submit(_label_chunk, chunks[next_chunk], run,
                                            self.prefetch))
                    next_chunk += 1
                if not pending:
                    return
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    try:
                        texts = future.result()
                    except BrokenProcessPool:
                        raise LabelRunError(
                            "A worker process died (out of memory, or killed). What was "
                            "finished is saved: run the same command again to go on.") from None
                    for text in texts:
                        yield ImageResult.from_json(text)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _until(items: Sequence[WorkItem], cancel: threading.Event) -> Iterator[WorkItem]:
    for item in items:
        if cancel.is_set():
            return
        yield item


# A worker process's models, loaded once by the pool's initializer: state of that process
# alone (one run's pool), never shared between users.
_WORKER: dict[str, LoadedModels] = {}


def _init_worker(models: Models, run: LabelRun) -> None:
    _WORKER["models"] = load_models(models, run)


def _label_chunk(items: Sequence[WorkItem], run: LabelRun, prefetch: int) -> list[str]:
    loaded = _WORKER["models"]
    return [result.to_json() for result in label_stream(loaded, items, run, prefetch)]
