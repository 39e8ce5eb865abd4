"""The same run on a Ray cluster, through Ray Data (``pip install ".[ray]"``).

    ray.data.from_items([{image_id, path, boxes}, ...])
        .map_batches(LabelActor, compute=ActorPoolStrategy(size=N), batch_size=B,
                     num_cpus=T, num_gpus=G)
        -> streamed back to the driver (``iter_rows``), which merges each image into the project

Each ``LabelActor`` loads the models once and runs ``per_image.label_stream`` on its batches
(the next images decoded while the model works), returning each image's ``ImageResult`` as JSON;
only the driver writes the project's database. Images are read by path: on a cluster of several
machines the project folder must be on a file system every node sees at the same path.

Ray Data restarts a dead actor and retries its batch (``max_restarts``/``max_task_retries``), so
a killed worker costs a model load; if the whole run dies, what was merged stays and the same
command continues from there.

Where the cluster is: ``address`` (``--ray ADDRESS``), else env ``RAY_ADDRESS``, else a
local one started for the run (all this machine's cores) and stopped after it. The workers need
this project's code: on this machine (or a shared file system) its folder is put on their
``PYTHONPATH``; elsewhere install the package on the nodes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .per_image import ImageResult, WorkItem, label_stream, load_models
from .spec import LabelRun, LabelRunError, Models

RAY_MISSING = ("Ray is not installed, so --ray cannot run. Install the optional extra: "
               "pip install \".[ray]\" (or pip install ray[data]==2.60.0), then try again.")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def import_ray() -> Any:
    """``ray`` with Ray Data, or LabelRunError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise LabelRunError(RAY_MISSING) from None
    return ray


class LabelActor:
    """One Ray Data worker: the models loaded once, then batches of images labelled.

    ``crash_token`` (tests only): the path of a file; the first actor that removes it kills
    itself with ``ray.kill`` in the middle of its batch, as a dying machine would.
    """

    def __init__(self, models: Models, run: LabelRun, prefetch: int = 2,
                 crash_token: str | None = None) -> None:
        self.loaded = load_models(models, run)
        self.run = run
        self.prefetch = prefetch
        self.crash_token = crash_token

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        items = [WorkItem.from_dict(row) for row in rows]
        results = []
        for result in label_stream(self.loaded, items, self.run, self.prefetch):
            results.append(result)
            self._maybe_crash()
        return {"image_id": [r.image_id for r in results],
                "result": [r.to_json() for r in results]}

    def _maybe_crash(self) -> None:
        if not self.crash_token:
            return
        try:
            Path(self.crash_token).unlink()
        except FileNotFoundError:
            return
        import ray

        ray.kill(ray.get_runtime_context().current_actor, no_restart=False)


class RayExecutor:
    """Runs on a Ray cluster (see the module doc).

    Args:
        address: the cluster ("ray://host:10001", "host:6379", "auto"); None: env
            ``RAY_ADDRESS``, else a local cluster for this run.
        workers: actors (model replicas); None: one per GPU, else the cluster's CPUs divided
            by ``threads``.
        threads: CPUs (and PyTorch threads) per actor, default 1.
        batch_size: images per batch handed to an actor (decoded ahead within it).
        num_gpus: GPUs per actor; None: 1 when the cluster has GPUs, else 0.
        runtime_env: Ray's runtime environment for the workers (default: this project's folder
            on their PYTHONPATH).
        num_cpus: the CPUs of a local cluster started for the run (default: all cores).
    """

    def __init__(self, address: str | None = None, *, workers: int | None = None,
                 threads: int = 1, batch_size: int = 2, num_gpus: float | None = None,
                 runtime_env: dict | None = None, num_cpus: int | None = None,
                 crash_token: str | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.workers = workers
        self.threads = max(1, int(threads))
        self.batch_size = max(1, int(batch_size))
        self.num_gpus = num_gpus
        self.runtime_env = runtime_env
        self.crash_token = crash_token
        self.name = "ray"

    def run(self, items: Sequence[WorkItem], run: LabelRun, models: Models,
            cancel: threading.Event) -> Iterator[ImageResult]:
        ray = import_ray()
        if not items:
            return iter(())
        return self._run(ray, items, run, models, cancel)

    def _run(self, ray, items, run, models, cancel) -> Iterator[ImageResult]:
        started_here = not ray.is_initialized()
        if started_here:
            env = self.runtime_env or {"env_vars": {"PYTHONPATH": str(PROJECT_ROOT)}}
            # "local": a new cluster, never one someone else started with ``ray start`` here
            address = self.address or os.environ.get("RAY_ADDRESS", "").strip() or "local"
            ray.init(address=address, runtime_env=env, include_dashboard=False,
                     log_to_driver=False, configure_logging=False,
                     **({"num_cpus": self.num_cpus} if address == "local" and self.num_cpus
                        else {}))
        try:
            yield from self._stream(ray, items, run, models, cancel)
        finally:
            if started_here:
                ray.shutdown()

    def _stream(self, ray, items, run, models, cancel) -> Iterator[ImageResult]:
        from ray.data import DataContext

        context = DataContext.get_current()
        context.enable_progress_bars = False
        context.execution_options.preserve_order = False
        resources = ray.cluster_resources()
        gpus = self.num_gpus
        if gpus is None:
            gpus = 1 if resources.get("GPU", 0) >= 1 else 0
        workers = self.workers
        if workers is None:
            workers = (int(resources["GPU"] // gpus) if gpus else
                       int(resources.get("CPU", 1) // self.threads))
        workers = max(1, min(int(workers), len(items)))
        dataset = ray.data.from_items([item.to_dict() for item in items],
                                      override_num_blocks=min(len(items), 4 * workers))
        per_actor = {"num_cpus": self.threads, **({"num_gpus": gpus} if gpus else {})}
        labelled = dataset.map_batches(
            LabelActor, batch_size=self.batch_size,
            compute=ray.data.ActorPoolStrategy(size=workers), **per_actor,
            fn_constructor_kwargs={"models": models.with_threads(self.threads), "run": run,
                                   "crash_token": self.crash_token})
        for row in labelled.iter_rows():
            if cancel.is_set():
                return
            yield ImageResult.from_json(row["result"])
