"""Reading checkpoint files safely and loading them strictly into a model.

Safe: ``weights_only=True`` (no pickled code runs) and ``map_location="cpu"`` (a checkpoint saved
on a GPU loads anywhere). Strict: every key must match, so a wrong-model file can never leave a
half-initialised model behind; the error names the file and a few differing keys, not a dump.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..errors import CheckpointCorruptError, CheckpointMissingError

_FIX = "Delete it and download it again with: python -m sam_backends download {model_id}"


def read_state_dict(path: Path, model_id: str, nested_key: str | None = None) -> dict[str, Any]:
    """Load a state dict from ``path``.

    Args:
        nested_key: SAM 2 checkpoints store ``{"model": state_dict}``; SAM 1 stores it bare.

    Raises:
        CheckpointMissingError: no such file.
        CheckpointCorruptError: truncated, not a torch checkpoint, or not the expected layout.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointMissingError(
            f"Checkpoint file {path} does not exist. "
            f"Download it with: python -m sam_backends download {model_id}"
        )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files (RuntimeError, EOF, pickle)
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CheckpointCorruptError(
            f"Checkpoint file {path} could not be read ({reason}); it is truncated, corrupt or "
            f"not a PyTorch checkpoint. " + _FIX.format(model_id=model_id)
        ) from exc
    if nested_key is not None:
        if not isinstance(loaded, Mapping) or nested_key not in loaded:
            raise CheckpointCorruptError(
                f"Checkpoint file {path} is not a {model_id} checkpoint: it has no "
                f"{nested_key!r} entry. " + _FIX.format(model_id=model_id)
            )
        loaded = loaded[nested_key]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise CheckpointCorruptError(
            f"Checkpoint file {path} does not hold a state dict of tensors. "
            + _FIX.format(model_id=model_id)
        )
    return dict(loaded)


def load_strict(model: Any, state_dict: Mapping[str, Any], path: Path, model_id: str) -> None:
    """Load ``state_dict`` into ``model``, refusing any missing, unexpected or misshapen key."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    misshapen = sorted(
        k for k in set(own) & set(state_dict) if tuple(own[k].shape) != tuple(state_dict[k].shape)
    )
    if missing or unexpected or misshapen:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected),
                            ("wrong shape", misshapen)):
            if keys:
                more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
                shown = ", ".join(keys[:3]) + more
                parts.append(f"{len(keys)} {label} ({shown})")
        raise CheckpointCorruptError(
            f"Checkpoint file {path} does not match the {model_id} architecture: "
            f"{'; '.join(parts)}. It is probably another model's checkpoint or a damaged file. "
            + _FIX.format(model_id=model_id)
        )
    model.load_state_dict(state_dict, strict=True)
