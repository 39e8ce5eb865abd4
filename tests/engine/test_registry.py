"""The catalogue: every entry is complete and consistent; ``list_models`` reports presence."""

from __future__ import annotations

import re

import pytest

import sam_backends
from sam_backends import CATALOGUE, get_spec, list_models, model_ids
from sam_backends.errors import UnknownModelError
from sam_backends.registry import DEFAULT_MODEL_ID

EXPECTED_IDS = ["sam-vit-b", "sam-vit-l", "sam-vit-h",
                "samhq-vit-b", "samhq-vit-l", "samhq-vit-h",
                "sam2.1-tiny", "sam2.1-small", "sam2.1-base-plus", "sam2.1-large", "edgetam",
                "grabcut", "sam3"]
WEIGHTED = [spec for spec in CATALOGUE if spec.needs_checkpoint]


def test_ids_are_the_public_ones_and_unique():
    assert model_ids() == EXPECTED_IDS
    assert len(set(model_ids())) == len(CATALOGUE)
    assert DEFAULT_MODEL_ID in model_ids()


@pytest.mark.parametrize("spec", WEIGHTED, ids=lambda s: s.model_id)
def test_weighted_entries_are_complete(spec):
    assert spec.family in ("sam1", "sam2")
    assert spec.url.startswith("https://")
    assert spec.url.endswith("/" + spec.checkpoint_file)
    assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
    assert spec.size_bytes > 100_000_000
    # fp32 weights: 4 bytes a parameter, plus container overhead (SAM 2 files also hold
    # memory-attention weights counted in num_params, so never much smaller)
    assert 0.95 * 4 * spec.num_params < spec.size_bytes < 1.2 * 4 * spec.num_params
    assert spec.display_name and spec.arch
    assert spec.capabilities.points and spec.capabilities.box
    assert spec.capabilities.mask_refinement and spec.capabilities.multimask
    assert spec.capabilities.video == (spec.family == "sam2")


def test_unique_files_urls_and_hashes():
    for attribute in ("checkpoint_file", "url", "sha256"):
        values = [getattr(spec, attribute) for spec in WEIGHTED]
        assert len(set(values)) == len(values), attribute


def test_grabcut_entry():
    spec = get_spec("grabcut")
    assert spec.family == "grabcut" and not spec.needs_checkpoint
    assert spec.url is None and spec.sha256 is None and spec.num_params == 0
    caps = spec.capabilities
    assert caps.points and caps.box and caps.box_and_points
    assert not caps.mask_refinement and not caps.multimask and not caps.video


def test_unknown_model_lists_the_valid_ids():
    with pytest.raises(UnknownModelError) as info:
        get_spec("sam-vit-x")
    message = str(info.value)
    assert message.startswith("Unknown model 'sam-vit-x'")
    assert all(model_id in message for model_id in EXPECTED_IDS)
    assert isinstance(info.value, KeyError)


def test_list_models_reports_presence(tmp_path):
    (tmp_path / get_spec("sam-vit-b").checkpoint_file).write_bytes(b"weights")
    (tmp_path / get_spec("sam2.1-large").checkpoint_file).write_bytes(b"weights")
    rows = {row.model_id: row for row in list_models(tmp_path)}
    assert list(rows) == EXPECTED_IDS
    present = {model_id for model_id, row in rows.items() if row.present}
    assert present == {"sam-vit-b", "sam2.1-large", "grabcut"}
    assert rows["sam-vit-b"].checkpoint_path == str(tmp_path / "sam_vit_b_01ec64.pth")
    assert rows["grabcut"].checkpoint_path is None
    for spec in CATALOGUE:
        row = rows[spec.model_id]
        assert (row.display_name, row.family, row.num_params, row.url, row.sha256,
                row.size_bytes, row.capabilities) == (
                    spec.display_name, spec.family, spec.num_params, spec.url, spec.sha256,
                    spec.size_bytes, spec.capabilities)


def test_list_models_default_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SAM_CHECKPOINT_DIR", str(tmp_path))
    assert not any(r.present for r in sam_backends.list_models() if r.checkpoint_file)
    (tmp_path / get_spec("sam2.1-tiny").checkpoint_file).write_bytes(b"weights")
    present = [r.model_id for r in sam_backends.list_models() if r.present and r.checkpoint_file]
    assert present == ["sam2.1-tiny"]


def test_capability_labels():
    assert get_spec("grabcut").capabilities.as_list() == ["points", "box", "box+points"]
    assert get_spec("sam2.1-tiny").capabilities.as_list()[-1] == "video"


def test_listing_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, sam_backends; sam_backends.list_models(); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=sam_backends.weights.checkpoints.PROJECT_ROOT, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


def test_what_a_family_can_do_comes_from_its_facts():
    from sam_backends.families import get_family

    for spec in sam_backends.CATALOGUE:
        facts = get_family(spec.family)
        assert spec.capabilities.everything == (facts.everything is not None), spec.model_id
        assert spec.capabilities.video == facts.video, spec.model_id
        assert spec.runs_on_torch == facts.runs_on_torch
        assert facts.note
    assert get_spec("sam-vit-b").capabilities.everything
    assert not get_spec("grabcut").capabilities.everything


def test_an_unknown_family_is_refused_by_name():
    from sam_backends.families import get_family

    for name in ("nope", "../sam1", "Sam1"):
        with pytest.raises(sam_backends.UnknownModelError):
            get_family(name)


def test_hub_models_come_from_the_one_catalogue():
    from sam_backends.registry import DETECTORS, OWLV2_ID
    from sam_backends.text import hub

    assert hub.SAM3 == hub.for_spec(get_spec("sam3"))
    assert hub.OWLV2.local_name == OWLV2_ID == DETECTORS[0].model_id
    assert hub.OWLV2.repo_id == DETECTORS[0].hf_repo
    assert OWLV2_ID not in sam_backends.model_ids()  # a detector is not offered as a segmenter


def test_samhq_entries_are_hugging_face_folders():
    from sam_backends.text import hub

    for size, name in (("b", "base"), ("l", "large"), ("h", "huge")):
        spec = get_spec(f"samhq-vit-{size}")
        assert spec.family == "samhq" and not spec.needs_checkpoint and spec.has_weights
        assert spec.hf_repo == f"syscv-community/sam-hq-vit-{name}"
        assert spec.license == "Apache-2.0" and not spec.gated
        assert spec.num_params > get_spec(f"sam-vit-{size}").num_params  # SAM + the HQ parts
        caps = spec.capabilities
        assert caps.points and caps.box and caps.box_and_points and caps.everything
        assert caps.mask_refinement and caps.multimask and not caps.video and not caps.text
        assert hub.for_spec(spec).url == f"https://huggingface.co/{spec.hf_repo}"
