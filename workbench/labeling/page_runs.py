"""Auto-labelling from the page: at most one run per project, started with the app's own
models (the weights the page offers, ``--checkpoint`` files and test models included), run by
the same driver as ``samwb label`` on one thread, so the person's clicks keep the other core.

``PageRuns`` is a named, bounded registry (one per app, ``ctx.services.label_runs``): a run is
found again by its project, so a reload shows its progress and its Cancel still works.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from workbench.errors import UserError
from workbench.estimates import duration_text
from workbench.labeling.handle import RunHandle, start_run
from workbench.labeling.spec import LabelRun, LabelRunError

MAX_RUNS = 8  # projects with a run kept (finished ones are dropped first)
PAGE_THREADS = 1  # torch threads of a page's run: the other core stays with the clicks


@dataclass(frozen=True)
class RunView:
    """What the page shows of a run."""

    text: str
    running: bool


def progress_text(handle: RunHandle) -> RunView:
    """"12 of 200 images · 35 objects found · 0.40 images/s · about 7 min 10 s left at this
    run's pace"."""
    p = handle.progress()
    running = handle.running
    parts = [f"{p.done:,} of {p.total:,} images", f"{p.found:,} objects found"]
    if p.failed:
        parts.append(f"{p.failed:,} could not be read")
    if p.skipped:
        parts.append(f"{p.skipped:,} done before")
    if running:
        rate = p.images_per_second
        if rate:
            parts.append(f"{rate:.2f} images/s")
        eta = p.eta_seconds
        if eta is not None:
            # the pace of this run's own images so far (``workbench.estimates`` wording)
            parts.append(f"about {duration_text(eta)} left at this run's pace")
        head = "⏳ Auto-labelling: "
    elif handle.error is not None:
        head = "⚠ The run stopped: " + _error_text(handle.error) + " · "
    elif p.cancelled:
        head = "Cancelled (run it again to go on where it stopped): "
    else:
        head = "✓ Done: "
    return RunView(head + " · ".join(parts) + ".", running)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, (UserError, LabelRunError)):
        return str(exc)
    return "an unexpected error (the server's log has the details)"


class PageRuns:
    """Runs started from the page, by project folder. Thread-safe."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._runs: dict[str, RunHandle] = {}

    def of(self, store: Any) -> RunHandle | None:
        with self._lock:
            return self._runs.get(str(store.folder))

    def start(self, store: Any, run: LabelRun) -> RunHandle:
        """Start ``run`` on ``store`` unless one is running there already."""
        from workbench.labeling.executors import LocalExecutor
        from workbench.labeling.models import resolve_models

        if store.read_only:
            raise UserError("This project is read-only: auto-labels could not be saved.",
                            "Read-only project")
        key = str(store.folder)
        with self._lock:
            current = self._runs.get(key)
            if current is not None and current.running:
                raise UserError("A run is already labelling this project: wait for it or "
                                "cancel it.", "Already running")
            if len(self._runs) >= MAX_RUNS:
                finished = [k for k, h in self._runs.items() if not h.running]
                if not finished:
                    raise UserError("Too many auto-labelling runs on this server now; try "
                                    "again later.", "Server busy")
                del self._runs[finished[0]]
            entry = self._ctx.entry(run.model_id)
            config = self._ctx.config
            checkpoints = {run.model_id: str(entry.checkpoint)} if entry.checkpoint else {}
            models = resolve_models(run, checkpoints, spec=entry.spec,
                                    checkpoint_dir=(str(config.checkpoint_dir)
                                                    if config.checkpoint_dir else None),
                                    device=config.device, precision=config.precision,
                                    threads=PAGE_THREADS)
            handle = start_run(store, run, LocalExecutor(workers=1), models)
            self._runs[key] = handle
            return handle

    def cancel(self, store: Any) -> bool:
        handle = self.of(store)
        if handle is None or not handle.running:
            return False
        handle.cancel()
        return True

    def close(self) -> None:
        with self._lock:
            handles = list(self._runs.values())
        for handle in handles:
            handle.cancel()
