"""A run in the background, for the page: ``start_run(store, run, executor) -> RunHandle``.

    handle = start_run(store, LabelRun("sam2.1-tiny", phrases=("car",)), LocalExecutor())
    handle.progress()   # Progress: done / total, images per second, eta_seconds, found, failed
    handle.cancel()     # stops between images; what was merged stays (the run is resumable)
    handle.wait()       # the final Progress (raises what ended the run, if it failed)

One thread per run; the store is thread-safe, and the run is its only writer of model objects.
"""

from __future__ import annotations

import threading
from typing import Any

from .driver import Progress, label_project
from .executors import Executor
from .models import resolve_models
from .spec import LabelRun, Models


class RunHandle:
    """A running (or finished) labelling run."""

    def __init__(self, run: LabelRun) -> None:
        self.run = run
        self._progress = Progress()
        self._cancel = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def progress(self) -> Progress:
        """A copy of the counters now (safe to read from any thread)."""
        return self._progress.snapshot()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        return self._error

    def wait(self, timeout: float | None = None) -> Progress:
        """Wait for the end; the final counters, or the exception that stopped the run."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self._error is not None:
            raise self._error
        return self.progress()

    def _start(self, target) -> RunHandle:
        def body() -> None:
            try:
                target(self._cancel, self._progress)
            except BaseException as exc:  # kept for wait(); the page shows it
                self._error = exc
            finally:
                self._progress.finished = True

        self._thread = threading.Thread(target=body, name="label-run", daemon=True)
        self._thread.start()
        return self


def start_run(store: Any, run: LabelRun, executor: Executor,
              models: Models | None = None) -> RunHandle:
    """Start ``run`` over ``store`` in a background thread; ``models``: how workers load the
    weights (default: ``resolve_models(run)``, the app's checkpoints folder)."""
    models = models or resolve_models(run)
    handle = RunHandle(run)
    return handle._start(lambda cancel, progress: label_project(
        store, run, models, executor, cancel=cancel, progress=progress))
