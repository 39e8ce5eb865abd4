"""Which weights a run loads: the real loading path, resolved once on the driver.

Order, as everywhere in the app (``sam_backends.weights.checkpoints``): an explicit
``--checkpoint ID=PATH``, else env ``SAM_CHECKPOINT_<ID>``, else the catalogue's file in the
checkpoints folder (``--checkpoint-dir``, env ``SAM_CHECKPOINT_DIR``, the default folder), whose
SHA-256 is checked. Nothing is downloaded here: a missing file is an error naming the command
that fetches it. Paths are made absolute, so workers elsewhere (processes, Ray actors on a shared
file system) load exactly these files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sam_backends.registry import OWLV2_ID, ModelSpec, get_spec

from .spec import DETECTOR, LabelRun, LabelRunError, Models


def parse_checkpoints(values: list[str] | None) -> dict[str, str]:
    """``["sam2.1-tiny=/w/t.pt", "owlv2=/w/owl"]`` -> {model id: path}."""
    found: dict[str, str] = {}
    for value in values or ():
        model_id, eq, path = value.partition("=")
        if not eq or not model_id.strip() or not path.strip():
            raise LabelRunError(f"--checkpoint takes ID=PATH (e.g. sam2.1-tiny=/weights/t.pt), "
                                f"got {value!r}.")
        found[model_id.strip()] = path.strip()
    return found


def resolve_models(run: LabelRun, checkpoints: Mapping[str, str] | None = None, *,
                   spec: ModelSpec | None = None, checkpoint_dir: str | None = None,
                   device: str | None = None, precision: str | None = None,
                   threads: int | None = None) -> Models:
    """The ``Models`` value for ``run``; ``spec``: a catalogue entry given directly (tests'
    reduced models), else ``run.model_id``'s.

    Raises:
        UnknownModelError: an unknown model id (the message lists the valid ones).
        CheckpointMissingError: the weights are not on disk (the message says how to get them).
    """
    from sam_backends.weights import checkpoints as files

    checkpoints = dict(checkpoints or {})
    spec = spec or get_spec(run.model_id)
    folder = str(files.checkpoint_dir(checkpoint_dir).resolve())
    explicit = checkpoints.get(spec.model_id)
    if explicit is None and files.custom_checkpoint(spec) is not None:
        explicit = str(files.custom_checkpoint(spec))
    if spec.hf_repo is not None:
        from sam_backends.text import hub

        path = hub.resolve_folder(hub.for_spec(spec), explicit, folder)
    elif spec.needs_checkpoint:
        path = files.resolve_checkpoint(spec, explicit, folder)
    else:
        path = None
    detector = None
    if run.mode == "text" and not spec.capabilities.text:
        detector = _detector_folder(checkpoints, folder)
    return Models(spec, None if path is None else str(Path(path).resolve()), folder,
                  detector, device, precision, threads)


def _detector_folder(checkpoints: Mapping[str, str], folder: str) -> str:
    from sam_backends.text import hub
    from sam_backends.weights.checkpoint_verification import checkpoint_env_var

    given = (checkpoints.get(OWLV2_ID) or checkpoints.get(DETECTOR)
             or os.environ.get(checkpoint_env_var(OWLV2_ID), "").strip() or None)
    return str(hub.resolve_folder(hub.OWLV2, given, folder).resolve())
