"""The catalogue's parameter counts are what the upstream builders actually build."""

from __future__ import annotations

import pytest

from sam_backends.registry import CATALOGUE

TORCH_SPECS = [spec for spec in CATALOGUE if spec.runs_on_torch]
# built for real on the CPU: seconds each (sam3: on the meta device, but transformers is slow
# to import)
SLOW_TO_BUILD = ("sam2.1-base-plus", "sam2.1-large", "sam3", "edgetam", "samhq-vit-l",
                 "samhq-vit-h")


def _count(spec) -> int:
    import torch

    if spec.family == "sam3":  # transformers' Sam3 classes, as sam_backends.text builds them
        from sam_backends.families.sam3.backend import parameter_count

        return parameter_count()
    if spec.family == "edgetam":  # transformers' EdgeTamVideoModel (the image model inside)
        from sam_backends.families.edgetam.backend import parameter_count as edgetam_count

        return edgetam_count()
    if spec.family == "samhq":  # transformers' SamHQModel of the Hub repository's config
        from sam_backends.families.samhq.backend import parameter_count as samhq_count
        from sam_backends.testing.samhq_models import full_samhq_config

        return samhq_count(full_samhq_config(spec.model_id))
    if spec.family == "sam1":
        from segment_anything.build_sam import _build_sam

        with torch.device("meta"):  # shapes only: no memory, no init cost
            model = _build_sam(**spec.arch, checkpoint=None)
    else:
        from sam2.build_sam import build_sam2

        # Hiera calls .item() while building, which meta tensors refuse: build on the CPU.
        model = build_sam2(spec.arch["config"], ckpt_path=None, device="cpu",
                           hydra_overrides_extra=list(spec.arch["overrides"]))
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(s, marks=pytest.mark.slow) if s.model_id in SLOW_TO_BUILD else s
        for s in TORCH_SPECS
    ],
    ids=lambda s: s.model_id,
)
def test_catalogue_parameter_count_matches_builder(spec):
    assert _count(spec) == spec.num_params
