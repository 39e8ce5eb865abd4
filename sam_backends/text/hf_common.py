"""What the transformers-based text models share: importing transformers, precision, weights.

Heavy imports happen inside the functions, so importing ``sam_backends.text`` stays cheap.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any, Iterable

from ..device import EXACT_PRECISION
from ..errors import BackendUnavailableError, CheckpointCorruptError, SamBackendError

SUPPORTED_PRECISIONS = (EXACT_PRECISION, "bf16")


def import_transformers(model_name: str) -> Any:
    """The ``transformers`` module, or an error that says how to install it."""
    try:
        import transformers
    except ImportError as exc:
        raise BackendUnavailableError(
            f"{model_name} needs the Python package 'transformers' (>= 5), which could not be "
            f"imported ({exc}). Install it with: pip install -r requirements.txt"
        ) from exc
    transformers.logging.set_verbosity_error()  # load reports are checked here, not printed
    return transformers


def check_precision(precision: str, model_name: str) -> None:
    if precision not in SUPPORTED_PRECISIONS:
        raise SamBackendError(
            f"Precision {precision!r} is not available for {model_name}; use one of: "
            f"{', '.join(SUPPORTED_PRECISIONS)}."
        )


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast for "bf16"; nothing (exact fp32) otherwise."""
    if precision != "bf16":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a transformers model folder (one file, or a sharded index)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / name for name in shards]
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    raise CheckpointCorruptError(
        f"{folder} holds no model.safetensors (or model.safetensors.index.json); download the "
        "model folder again."
    )


def read_tensors(folder: Path, select: Any) -> dict[str, Any]:
    """Tensors of ``folder``'s weights whose key ``select(key)`` maps to a new name (None: skip).

    Reads only the selected tensors (safetensors is memory-mapped), on the CPU.
    """
    from safetensors import safe_open

    out: dict[str, Any] = {}
    for path in weight_files(folder):
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            for key in handle.keys():
                name = select(key)
                if name is not None:
                    out[name] = handle.get_tensor(key)
    return out


def load_exact(module: Any, state: dict[str, Any], folder: Path, what: str,
               allowed_missing: Iterable[str] = ()) -> None:
    """Load ``state`` into ``module`` (built on the meta device) by assignment, refusing any
    missing or unexpected key except missing ones starting with ``allowed_missing``."""
    prefixes = tuple(allowed_missing)
    result = module.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in result.missing_keys if not k.startswith(prefixes)] if prefixes else list(
        result.missing_keys)
    unexpected = list(result.unexpected_keys)
    if missing or unexpected:
        raise CheckpointCorruptError(
            f"The weights in {folder} do not fit the {what}: {len(missing)} missing "
            f"({', '.join(missing[:3])}), {len(unexpected)} unexpected "
            f"({', '.join(unexpected[:3])}). Download the model folder again."
        )
    left = [n for n, t in list(module.named_parameters()) + list(module.named_buffers())
            if t.is_meta]
    if left:
        raise CheckpointCorruptError(
            f"The {what} has tensors the weights in {folder} do not provide: {', '.join(left[:3])}."
        )


def compile_patterns(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    return [re.compile(p) for p in patterns]


def read_model_folder(model_class: Any, processor_class: Any, folder: Path, model_name: str,
                      what: str) -> tuple[Any, Any]:
    """(model in eval mode, processor) of a transformers folder, fp32 on the CPU, strictly:
    a tensor missing from the weights or of another shape is an error (transformers would
    leave it randomly initialised and only log it).

    Raises:
        CheckpointCorruptError: unreadable folder, or weights that do not fit ``what``.
    """
    import torch

    folder = Path(folder)
    try:
        model, info = model_class.from_pretrained(str(folder), dtype=torch.float32,
                                                  output_loading_info=True)
        processor = processor_class.from_pretrained(str(folder))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointCorruptError(
            f"{folder} is not a readable {model_name} model folder ({exc}). Download it again."
        ) from exc
    missing = list(info.get("missing_keys", ()))
    mismatched = [str(k) for k in info.get("mismatched_keys", ())]
    if missing or mismatched:
        raise CheckpointCorruptError(
            f"The weights in {folder} do not fit the {what}: {len(missing)} missing "
            f"({', '.join(missing[:3])}), {len(mismatched)} of another shape "
            f"({', '.join(mismatched[:3])}). Download the model folder again."
        )
    return model.eval(), processor
