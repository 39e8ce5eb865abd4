"""Auto-labelling a whole project: text prompts, everything, or given boxes, on this machine or
a Ray cluster with the same code, resumable and idempotent; results are proposals to review.

* ``spec``: ``LabelRun`` (what to find; its run key) and ``Models`` (which weights to load);
* ``per_image``: ``label_image``, the one per-image function every executor runs;
* ``executors``: the executor interface and ``LocalExecutor``; ``ray_executor``:
  ``RayExecutor`` (Ray Data, an optional extra);
* ``driver``: plan, run, merge (the one writer; markers make it resumable);
* ``handle``: ``start_run`` for the page (progress, cancel); ``cli``: ``samwb label``.
"""

from .driver import Plan, Progress, label_project, plan
from .executors import Executor, LocalExecutor
from .handle import RunHandle, start_run
from .models import parse_checkpoints, resolve_models
from .per_image import FoundObject, ImageResult, WorkItem, label_image
from .spec import LabelRun, LabelRunError, Models

__all__ = [
    "Executor",
    "FoundObject",
    "ImageResult",
    "LabelRun",
    "LabelRunError",
    "LocalExecutor",
    "Models",
    "Plan",
    "Progress",
    "RunHandle",
    "WorkItem",
    "label_image",
    "label_project",
    "parse_checkpoints",
    "plan",
    "resolve_models",
    "start_run",
]


def __getattr__(name: str):
    if name == "RayExecutor":  # Ray itself is imported only when a run uses it
        from .ray_executor import RayExecutor

        return RayExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
