"""Turning a model id into a loaded backend, and listing what is available."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .base import Backend
from .device import EXACT_PRECISION, resolve_device, resolve_precision
from .families import family_module, get_family
from .registry import Capabilities, ModelSpec, catalogue, get_spec
from .weights import checkpoints


@dataclass(frozen=True)
class ModelInfo:
    """One row of ``list_models()``: catalogue data plus whether the weights are on disk.

    ``custom``: env ``SAM_CHECKPOINT_<MODEL ID>`` names the user's own file, which is then the
    ``checkpoint_path`` (and ``present`` says whether it exists).
    """

    model_id: str
    display_name: str
    family: str
    num_params: int
    checkpoint_file: str | None
    url: str | None
    sha256: str | None
    size_bytes: int | None
    capabilities: Capabilities
    present: bool
    checkpoint_path: str | None
    custom: bool = False


def list_models(checkpoint_dir: str | Path | None = None) -> list[ModelInfo]:
    """The catalogue, with presence of each checkpoint in ``checkpoint_dir`` (default folder),
    or of the custom file named by env ``SAM_CHECKPOINT_<MODEL ID>``. Nothing is hashed."""
    rows = []
    for spec in catalogue():
        custom = checkpoints.custom_checkpoint(spec) if spec.needs_checkpoint else None
        path = custom or checkpoints.checkpoint_path(spec, checkpoint_dir)
        if spec.hf_repo is not None:  # a Hugging Face model folder (see text.hub)
            from .text import hub

            custom = checkpoints.custom_checkpoint(spec)
            folder = custom or hub.local_folder(hub.for_spec(spec), checkpoint_dir)
            path = folder / hub.CONFIG_FILE
        rows.append(
            ModelInfo(
                model_id=spec.model_id,
                display_name=spec.display_name,
                family=spec.family,
                num_params=spec.num_params,
                checkpoint_file=spec.checkpoint_file,
                url=spec.url,
                sha256=spec.sha256,
                size_bytes=spec.size_bytes,
                capabilities=spec.capabilities,
                present=path is None or path.is_file(),
                checkpoint_path=None if path is None else str(path),
                custom=custom is not None,
            )
        )
    return rows


def create_backend(
    model_id: str | ModelSpec,
    checkpoint: str | Path | None = None,
    device: str | None = None,
    precision: str | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    download: bool = False,
) -> Backend:
    """Build a backend.

    Args:
        model_id: a catalogue id, or a ``ModelSpec`` (tests pass reduced-size specs).
        checkpoint: explicit checkpoint path in the official format (custom or fine-tuned
            weights: not hash-checked); default: env ``SAM_CHECKPOINT_<MODEL ID>`` (e.g.
            ``SAM_CHECKPOINT_SAM_VIT_B``, also not hash-checked), else the file named by the
            catalogue inside ``checkpoint_dir``, verified against the catalogue's SHA-256 (once;
            the result is remembered by size and modification time).
        device: "cuda", "mps" or "cpu"; default: env ``SAM_DEVICE``, else the best available.
        precision: "fp32" (exact) or "auto"/None (fastest faithful mode for the hardware).
        download: fetch a missing default checkpoint from its official URL.

    Raises:
        UnknownModelError, BackendUnavailableError,
        CheckpointMissingError: no such file (a custom path, or the official one not downloaded).
        CheckpointHashMismatchError: the official name holds a damaged or foreign file.
        CheckpointCorruptError: the file cannot be read or does not fit the architecture.
    """
    spec = model_id if isinstance(model_id, ModelSpec) else get_spec(model_id)
    if spec.runs_on_torch:
        resolved_device = resolve_device(device)
        resolved_precision = resolve_precision(precision, resolved_device,
                                               get_family(spec.family).precisions)
    else:
        resolved_device, resolved_precision = "cpu", EXACT_PRECISION
    path: Path | None = None
    if spec.hf_repo is not None:  # a Hugging Face model folder (config.json, weights, processor)
        from .text import hub

        folder = checkpoint if checkpoint is not None else checkpoints.custom_checkpoint(spec)
        path = hub.resolve_folder(hub.for_spec(spec), folder, checkpoint_dir, download=download)
    elif spec.needs_checkpoint:
        path = checkpoints.resolve_checkpoint(spec, checkpoint, checkpoint_dir, download=download)
    # The family's ``load()`` imports the heavy packages (torch, upstream, OpenCV) itself.
    return family_module(spec.family).load(spec, path, resolved_device, resolved_precision)
