"""Random-weight SAM 1 / SAM 2.1 checkpoints for tests (no download, no real weights).

Models are built with the real upstream builders (``segment_anything.build_sam._build_sam``,
``sam2.build_sam.build_sam2``) and saved in the official formats (SAM 1: a bare state dict;
SAM 2.1: ``{"model": state_dict}``), so they travel through exactly the loading code users get.

    spec = small_sam2_spec()                           # reduced Hiera trunk, ~0.5 s per encode
    path = write_random_checkpoint(spec, tmp / "s2.pt")
    backend = create_backend(spec, checkpoint=path, device="cpu", precision="fp32")

The small specs keep the real input size (1024), prompt encoder and mask decoder; only the image
encoder's trunk is shrunk. Their ``model_id`` starts with ``test-`` and they have no URL.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np

from sam_backends.families import upstream_of
from sam_backends.registry import ModelSpec, get_spec

SMALL_SAM1_ARCH = {
    "encoder_embed_dim": 64,
    "encoder_depth": 2,
    "encoder_num_heads": 2,
    "encoder_global_attn_indexes": (1,),
}

# Hiera trunk with 16 channels and 1+1+2+1 blocks; the FPN neck must list the stage widths
# (deepest first). Global attention on block 3 (not the first block of a stage, where Hiera
# pools queries and needs a window).
SMALL_SAM2_OVERRIDES = (
    "++model.image_encoder.trunk.embed_dim=16",
    "++model.image_encoder.trunk.stages=[1,1,2,1]",
    "++model.image_encoder.trunk.global_att_blocks=[3]",
    "++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]",
)


def _test_spec(base_id: str, model_id: str, arch: dict[str, Any], suffix: str) -> ModelSpec:
    return dataclasses.replace(
        get_spec(base_id),
        model_id=model_id,
        display_name=f"{model_id} (random weights, test only)",
        arch=arch,
        num_params=0,
        checkpoint_file=f"{model_id}{suffix}",
        url=None,
        sha256=None,
        size_bytes=None,
    )


def small_sam1_spec(model_id: str = "test-sam1-small", **arch_changes: Any) -> ModelSpec:
    """A SAM 1 ViT with a 64-wide, 2-block encoder; ``arch_changes`` override builder args."""
    return _test_spec("sam-vit-b", model_id, {**SMALL_SAM1_ARCH, **arch_changes}, ".pth")


def small_sam2_spec(
    model_id: str = "test-sam2-small", extra_overrides: tuple[str, ...] = ()
) -> ModelSpec:
    """SAM 2.1 tiny's config with a 16-wide, 5-block Hiera trunk (plus ``extra_overrides``)."""
    base = get_spec("sam2.1-tiny")
    arch = {
        "config": base.arch["config"],
        "overrides": SMALL_SAM2_OVERRIDES + tuple(extra_overrides),
    }
    return _test_spec("sam2.1-tiny", model_id, arch, ".pt")


# Default initialisation leaves mask logits within about +-0.5; trained SAMs give tens. Scaling
# the last layer of the mask decoder's hypernetwork MLPs scales the logits linearly, so the
# masks keep their shape while SAM 2's clamp to [-32, 32] and thresholds are really exercised.
LOGIT_SCALE = 100.0
_HYPERNETWORK_OUTPUT = re.compile(r"mask_decoder\.output_hypernetworks_mlps\.\d+\.layers\.2\.")


def build_random_model(spec: ModelSpec, seed: int = 0) -> Any:
    """The upstream model for ``spec`` with deterministic random weights (eval mode, CPU).

    Default initialisation under ``torch.manual_seed(seed)`` (the caller's global RNG is left
    alone), then mask logits scaled by ``LOGIT_SCALE``. Tests check that these weights give
    masks with both True and False pixels.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = upstream_of(spec.family).build_architecture(spec)
        except ValueError:
            raise ValueError(f"{spec.model_id} ({spec.family}) has no random-weight builder") \
                from None
    with torch.no_grad():
        scaled = [p for name, p in model.named_parameters() if _HYPERNETWORK_OUTPUT.search(name)]
        if not scaled:
            raise RuntimeError("mask decoder hypernetwork parameters not found (upstream changed?)")
        for parameter in scaled:
            parameter.mul_(LOGIT_SCALE)
    return model.eval()


def write_random_checkpoint(spec: ModelSpec, path: str | Path, seed: int = 0) -> Path:
    """Save a random-weight checkpoint for ``spec`` at ``path`` in the official format."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state_dict = build_random_model(spec, seed).state_dict()
    key = upstream_of(spec.family).CHECKPOINT_KEY
    payload = state_dict if key is None else {key: state_dict}
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    partial.replace(path)
    return path


def synthetic_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """RGB uint8 HxWx3: smooth colour gradients, a few flat shapes and mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack(
        [
            255 * xx / max(width - 1, 1),
            255 * yy / max(height - 1, 1),
            127 + 100 * np.sin((xx + yy) / 23.0),
        ],
        axis=-1,
    )
    for _ in range(4):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        radius = rng.uniform(0.1, 0.3) * min(height, width)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
        image[inside] = rng.uniform(0, 255, size=3)
    image += rng.normal(0, 6, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def with_official_hash(spec: ModelSpec, path: str | Path) -> ModelSpec:
    """``spec`` with the size and SHA-256 of ``path`` as its catalogue data, so the file counts
    as the "official" one and goes through the hash check that real catalogue files get."""
    import hashlib

    data = Path(path).read_bytes()
    return dataclasses.replace(spec, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def poison_checkpoint(
    spec: ModelSpec, path: str | Path, name_pattern: str, value: float = float("nan")
) -> list[str]:
    """Set every tensor whose key matches ``name_pattern`` (a regex) to ``value`` in the saved
    checkpoint at ``path``, in place; returns the keys changed (damaged weights, for tests)."""
    import torch

    path = Path(path)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    key = upstream_of(spec.family).CHECKPOINT_KEY
    state_dict = payload if key is None else payload[key]
    changed = [key for key in state_dict if re.search(name_pattern, key)]
    if not changed:
        raise KeyError(f"no checkpoint key matches {name_pattern!r}")
    for key in changed:
        state_dict[key] = torch.full_like(state_dict[key], value)
    torch.save(payload, path)
    return changed
