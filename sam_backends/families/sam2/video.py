"""The SAM 2.1 video model that ``sam_backends.video`` trackers run (``load_video``).

The tracker's model class, ``sam_backends.video.model.TrackerModel``, is named to hydra by
string (``MODEL_TARGET``): it lives with the video use case, which imports this family only
through ``families.family_module("sam2").load_video``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...device import EXACT_PRECISION
from ...registry import ModelSpec

MODEL_TARGET = "sam_backends.video.model.TrackerModel"
FILL_HOLES_ENV = "SAM_VIDEO_FILL_HOLES"


def fill_holes_requested() -> bool:
    """``SAM_VIDEO_FILL_HOLES=1``: fill small holes in video masks with OpenCV where sam2's CUDA
    extension (which upstream fills them with) is missing, in the exact and the fast path
    alike; off by default, so the exact path stays upstream's CPU run pixel for pixel."""
    import os

    return os.environ.get(FILL_HOLES_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def load_video(spec: ModelSpec, path: Path, device: str, precision: str) -> Any:
    """The upstream video predictor for ``spec`` (its hydra config, with the overrides
    ``build_sam2_video_predictor`` adds and ``sam_backends.video.model.TrackerModel`` as the
    class), loaded strictly; "bf16" casts the image encoder as the fast image backend does and
    runs the memory attention with bf16 products (``fast_memory``).
    Small holes are filled in neither path unless ``SAM_VIDEO_FILL_HOLES=1``
    (``sam_backends.video.model``, change 3).

    Raises:
        BackendUnavailableError, CheckpointMissingError, CheckpointCorruptError: as ``load``.
    """
    from ...speed.accel import configure_threads
    from ...speed.torch_common import import_upstream, load_checkpoint_into

    configure_threads()
    import_upstream("sam2", "sam2", spec.model_id)  # initialises hydra's config search path
    build_sam = import_upstream("sam2.build_sam", "sam2", spec.model_id)
    import torch

    model = build_sam.build_sam2_video_predictor(
        spec.arch["config"],
        ckpt_path=None,
        device="cpu",
        hydra_overrides_extra=[*spec.arch.get("overrides", ()), f"++model._target_={MODEL_TARGET}"],
    )
    load_checkpoint_into(model, spec, path, nested_key="model")
    model.eval()
    dtype = None
    if precision != EXACT_PRECISION:
        from .fast_encoder import accelerate_sam2_encoder
        from .fast_memory import accelerate_memory_attention

        dtype = torch.bfloat16
        accelerate_sam2_encoder(model, dtype)
        accelerate_memory_attention(model.memory_attention)
    model.configure(dtype, fill_holes=fill_holes_requested())
    return model.to(device)
