"""Running the model work under ``spaces.GPU`` on a Hugging Face ZeroGPU Space, and nowhere else.

ZeroGPU hardware lends a Space a GPU only for the length of a call to a function decorated with
``spaces.GPU``. Between calls the process has no CUDA: the ``spaces`` package patches torch so
that models moved to "cuda" at load time stay in host memory, and each decorated call runs in a
forked worker that gets its arguments, and sends back its result, by pickling. Hence:

* only model compute is decorated (``gpu_task``), never the code that takes locks or fills the
  embedding cache: caches, sessions and work lanes live in the main process, on the CPU, and
  survive between calls;
* a GPU call returns its tensors in host memory (``to_device(value, "cpu")``): CUDA tensors
  cannot be unpickled in a process without CUDA; the next call moves them back to the device;
* nothing is ``torch.compile``d (the engine compiles nothing, and a compiled graph would be
  rebuilt in every fresh worker, inside the GPU time the Space is charged for).

Everywhere else (no ``spaces`` package, or env ``SPACES_ZERO_GPU`` not true: locally, in Docker,
on CPU or dedicated-GPU Spaces) ``gpu_task`` returns the function itself. ``spaces.GPU`` is a
no-op there too (spaces 0.51.3 reads the same variable in ``spaces/config.py``), but not calling
it keeps ``spaces`` optional and unimported.

Torch is never imported here: tensors are recognised by their ``to``/``device`` attributes.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Mapping, TypeVar

ZERO_GPU_ENV = "SPACES_ZERO_GPU"
_TRUE = ("1", "t", "true")  # what spaces 0.51.3 accepts (spaces.config.boolean)

F = TypeVar("F", bound=Callable[..., Any])


def on_zerogpu(environ: Mapping[str, str] | None = None) -> bool:
    """True on ZeroGPU hardware, which sets env ``SPACES_ZERO_GPU`` to a true value."""
    value = (os.environ if environ is None else environ).get(ZERO_GPU_ENV)
    return value is not None and value.strip().lower() in _TRUE


def zerogpu_active() -> bool:
    """True when model calls must borrow the GPU: on ZeroGPU with ``spaces`` importable.

    On ZeroGPU without ``spaces`` (a requirements file without it) the app still runs, on the
    CPU, which is better than failing at start-up.
    """
    if not on_zerogpu():
        return False
    try:
        import spaces  # noqa: F401
    except ImportError:
        return False
    return True


def gpu_task(fn: F, duration_s: float | None = None) -> F:
    """``spaces.GPU(fn)`` on ZeroGPU (``duration_s``: the longest one call may hold the GPU; a
    short one queues sooner), else ``fn`` unchanged. Call it before ``launch()``: ZeroGPU
    registers its GPU functions at start-up.

    On ZeroGPU the arguments and the result are pickled between processes: pass ids and arrays,
    not loaded models or objects holding locks.
    """
    if not zerogpu_active():
        return fn
    import spaces

    if duration_s is None:
        return spaces.GPU(fn)
    return spaces.GPU(fn, duration=duration_s)


def to_device(value: Any, device: str) -> Any:
    """``value`` with every tensor in it (also inside dicts, lists and tuples) moved to
    ``device``; anything else (NumPy arrays, numbers) as it is."""
    if hasattr(value, "to") and hasattr(value, "device"):
        return value.to(device)
    if isinstance(value, Mapping):
        return {key: to_device(item, device) for key, item in value.items()}
    if isinstance(value, list):
        return [to_device(item, device) for item in value]
    if isinstance(value, tuple):
        return tuple(to_device(item, device) for item in value)
    return value


def embedding_to(embedding: Any, device: str) -> Any:
    """A copy of an ``Embedding`` whose features are on ``device``."""
    return dataclasses.replace(embedding, features=to_device(embedding.features, device))
