"""The model catalogue: every model the workbench can run, keyed by explicit model id.

Entries are plain data (``ModelSpec``). Nothing here imports torch, so listing models is cheap
and works even when a backend's package is missing. Tests iterate over ``CATALOGUE`` so every
entry is exercised. This is the one catalogue: the Hugging Face-hosted models (SAM 3, and the
OWLv2 detector in ``DETECTORS``) are entries here too; ``text.hub`` only fetches and checks
their folders. What a family can do is not written here but asked of the family
(``families.get_family``): ``family_capabilities`` fills ``everything`` and ``video`` from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import UnknownModelError
from .families import get_family


@dataclass(frozen=True)
class Capabilities:
    """Which prompt kinds a model accepts, and what else it can do.

    ``everything`` (a grid of point prompts, ``sam_backends.automatic``) and ``video`` (a
    tracker, ``sam_backends.video``) follow from the family's facts: build them with
    ``family_capabilities``.
    """

    points: bool = True
    box: bool = True
    box_and_points: bool = True
    mask_refinement: bool = True
    multimask: bool = True
    video: bool = False
    text: bool = False  # text prompts ("red car"), answered with ``Instances``
    everything: bool = False  # segment everything (``sam_backends.automatic``)

    def as_list(self) -> list[str]:
        names = {
            "points": "points",
            "box": "box",
            "box_and_points": "box+points",
            "mask_refinement": "mask refinement",
            "multimask": "multimask",
            "everything": "everything",
            "video": "video",
            "text": "text",
        }
        return [label for attr, label in names.items() if getattr(self, attr)]


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to find, verify and build one model.

    Attributes:
        model_id: stable id used by the API, CLI and UI (never derived from a file name).
        family: the folder under ``sam_backends/families/`` ("sam1", "sam2", "grabcut",
            "sam3", "owlv2", "edgetam"): its ``load()`` builds the model and its ``FAMILY``
            holds the facts (``families.get_family``); nothing outside that folder compares the
            name.
        arch: family-specific builder arguments. SAM 1: ``_build_sam`` keyword arguments.
            SAM 2: ``{"config": <hydra config name>, "overrides": (<hydra overrides>, ...)}``.
            Tests derive reduced-size specs with ``dataclasses.replace(spec, arch=...)``.
        checkpoint_file: file name inside the checkpoints folder (None: needs no weights).
        url, sha256, size_bytes: the official download and its integrity data.
        num_params: parameter count of the full architecture.
        hf_repo: a model published as a Hugging Face repository ("owner/name"), loaded as a
            folder (``checkpoints/<model id>/``) instead of one checkpoint file.
        license: the licence's name, where it is not the project's default (shown with the
            model). gated: the repository asks each user to accept the licence first.
    """

    model_id: str
    display_name: str
    family: str
    arch: Mapping[str, Any] = field(default_factory=dict)
    num_params: int = 0
    checkpoint_file: str | None = None
    url: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    capabilities: Capabilities = Capabilities()
    hf_repo: str | None = None
    license: str | None = None
    gated: bool = False

    @property
    def needs_checkpoint(self) -> bool:
        """One checkpoint file (SAM 1, SAM 2.1); a Hugging Face model is a folder instead."""
        return self.checkpoint_file is not None

    @property
    def has_weights(self) -> bool:
        """Weights to download or name: a checkpoint file, or a Hugging Face model folder."""
        return self.checkpoint_file is not None or self.hf_repo is not None

    @property
    def runs_on_torch(self) -> bool:
        """False for a family that must not pay for importing torch (the OpenCV baseline)."""
        return get_family(self.family).runs_on_torch


_SAM1_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
_SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"


def family_capabilities(family: str, **prompts: bool) -> Capabilities:
    """``Capabilities`` whose ``everything`` and ``video`` come from the family's facts;
    ``prompts`` sets the prompt kinds (points, box, mask_refinement, text, ...)."""
    facts = get_family(family)
    return Capabilities(**prompts, everything=facts.everything is not None, video=facts.video)


_SAM1_CAPS = family_capabilities("sam1")
_SAM2_CAPS = family_capabilities("sam2")
_GRABCUT_CAPS = family_capabilities("grabcut", mask_refinement=False, multimask=False)
# SAM 3 (sam_backends/families/sam3/): text via Sam3Model, points/box via its tracker head.
_SAM3_CAPS = family_capabilities("sam3", mask_refinement=False, text=True)
# EdgeTAM (sam_backends/families/edgetam/): SAM 2's prompts and video, through transformers.
_EDGETAM_CAPS = family_capabilities("edgetam")
_SAMHQ_CAPS = family_capabilities("samhq")


def _sam1(model_id: str, name: str, dim: int, depth: int, heads: int, global_attn: tuple,
          params: int, file: str, sha: str, size: int) -> ModelSpec:
    arch = {
        "encoder_embed_dim": dim,
        "encoder_depth": depth,
        "encoder_num_heads": heads,
        "encoder_global_attn_indexes": global_attn,
    }
    return ModelSpec(model_id, name, "sam1", arch, params, file, _SAM1_URL + file, sha, size,
                     _SAM1_CAPS)


def _sam2(model_id: str, name: str, config: str, params: int, file: str, sha: str,
          size: int) -> ModelSpec:
    arch = {"config": f"configs/sam2.1/{config}", "overrides": ()}
    return ModelSpec(model_id, name, "sam2", arch, params, file, _SAM2_URL + file, sha, size,
                     _SAM2_CAPS)


CATALOGUE: tuple[ModelSpec, ...] = (
    _sam1("sam-vit-b", "SAM ViT-B", 768, 12, 12, (2, 5, 8, 11), 93_735_472,
          "sam_vit_b_01ec64.pth",
          "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", 375_042_383),
    _sam1("sam-vit-l", "SAM ViT-L", 1024, 24, 16, (5, 11, 17, 23), 312_342_832,
          "sam_vit_l_0b3195.pth",
          "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", 1_249_524_607),
    _sam1("sam-vit-h", "SAM ViT-H", 1280, 32, 16, (7, 15, 23, 31), 641_090_608,
          "sam_vit_h_4b8939.pth",
          "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", 2_564_550_879),
    # SAM-HQ (sam_backends/families/samhq/): Hugging Face folders read by transformers.
    # Parameters: SamHQModel of each repository's config (tests/engine/test_param_counts.py).
    ModelSpec("samhq-vit-b", "SAM-HQ ViT-B", "samhq", {}, 94_806_832,
              capabilities=_SAMHQ_CAPS, hf_repo="syscv-community/sam-hq-vit-base",
              license="Apache-2.0"),
    ModelSpec("samhq-vit-l", "SAM-HQ ViT-L", "samhq", {}, 313_676_336,
              capabilities=_SAMHQ_CAPS, hf_repo="syscv-community/sam-hq-vit-large",
              license="Apache-2.0"),
    ModelSpec("samhq-vit-h", "SAM-HQ ViT-H", "samhq", {}, 642_686_256,
              capabilities=_SAMHQ_CAPS, hf_repo="syscv-community/sam-hq-vit-huge",
              license="Apache-2.0"),
    _sam2("sam2.1-tiny", "SAM 2.1 Tiny", "sam2.1_hiera_t.yaml", 38_962_498,
          "sam2.1_hiera_tiny.pt",
          "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69", 156_008_466),
    _sam2("sam2.1-small", "SAM 2.1 Small", "sam2.1_hiera_s.yaml", 46_060_354,
          "sam2.1_hiera_small.pt",
          "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38", 184_416_285),
    _sam2("sam2.1-base-plus", "SAM 2.1 Base+", "sam2.1_hiera_b+.yaml", 80_850_178,
          "sam2.1_hiera_base_plus.pt",
          "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5", 323_606_802),
    _sam2("sam2.1-large", "SAM 2.1 Large", "sam2.1_hiera_l.yaml", 224_446_642,
          "sam2.1_hiera_large.pt",
          "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318", 898_083_611),
    ModelSpec("edgetam", "EdgeTAM (light video on CPUs; Apache-2.0)", "edgetam", {}, 13_912_306,
              capabilities=_EDGETAM_CAPS, hf_repo="yonigozlan/EdgeTAM-hf", license="Apache-2.0"),
    ModelSpec("grabcut", "GrabCut baseline (no weights)", "grabcut", {}, 0,
              capabilities=_GRABCUT_CAPS),
    ModelSpec("sam3", "SAM 3 (text prompts; SAM License, gated on Hugging Face)", "sam3", {},
              852_400_071, capabilities=_SAM3_CAPS, hf_repo="facebook/sam3",
              license="SAM License", gated=True),
)

# Models that find boxes for text rather than segment (``sam_backends.text``): a detector feeds
# a SAM model ("owlv2+<sam model id>"), so it is not offered as a segmenter.
OWLV2_ID = "owlv2-base-patch16-ensemble"
DETECTORS: tuple[ModelSpec, ...] = (
    ModelSpec(OWLV2_ID, "OWLv2 base/16 (open-vocabulary detector)", "owlv2", {}, 0,
              capabilities=Capabilities(points=False, box=False, box_and_points=False,
                                        mask_refinement=False, multimask=False, text=True),
              hf_repo="google/owlv2-base-patch16-ensemble", license="Apache-2.0"),
)

DEFAULT_MODEL_ID = "sam2.1-tiny"


def catalogue() -> tuple[ModelSpec, ...]:
    """The segmenters on offer (``CATALOGUE``), read at call time (tests may add an entry)."""
    return CATALOGUE


def model_ids() -> list[str]:
    return [spec.model_id for spec in catalogue()]


def get_spec(model_id: str) -> ModelSpec:
    """Look a model up by id; an unknown id lists the valid ones."""
    for spec in catalogue():
        if spec.model_id == model_id:
            return spec
    raise UnknownModelError(
        f"Unknown model {model_id!r}. Valid model ids: {', '.join(model_ids())}."
    )


def get_detector(model_id: str) -> ModelSpec:
    """A detector of ``DETECTORS`` by id; an unknown id lists the valid ones."""
    for spec in DETECTORS:
        if spec.model_id == model_id:
            return spec
    raise UnknownModelError(
        f"Unknown detector {model_id!r}. Valid detector ids: "
        f"{', '.join(d.model_id for d in DETECTORS)}."
    )
