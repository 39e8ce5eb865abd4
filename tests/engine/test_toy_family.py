"""A new model family is one folder plus one catalogue entry (issue 18's "Done when").

``toy_families/toy/`` is a complete family (facts, ``load()``, a numpy backend); this test puts
that folder on ``sam_backends.families.__path__`` (where ``get_family`` looks for family
folders) and adds one ``ModelSpec`` to ``registry.CATALOGUE`` for its duration. Nothing else is
edited, and the toy model works in Segment (the app context's encode + the page's decode
policy), Compare (beside GrabCut) and Everything (the engine's grid, and the app's engine).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from sam_backends import ModelSpec, create_backend, families, get_spec, list_models, registry
from sam_backends.automatic import EverythingParams, segment_everything
from workbench import inference
from workbench.compare.state import CompareSession, run_prompts
from workbench.config import AppConfig
from workbench.context import AppContext
from workbench.objects import PromptSet
from workbench.proposals import engines

TOY_FAMILIES = Path(__file__).resolve().parent / "toy_families"
TOY_ID = "toy-colour"
RED = (slice(20, 50), slice(25, 60))  # rows, columns of the red rectangle
BLUE = (slice(50, 66), slice(70, 90))


def scene() -> np.ndarray:
    image = np.full((72, 96, 3), 90, np.uint8)
    image[RED] = (230, 60, 40)
    image[BLUE] = (40, 90, 230)
    return image


@pytest.fixture
def toy(monkeypatch):
    """The toy family on the families' search path, and its one catalogue entry."""
    monkeypatch.setattr(families, "__path__", [*families.__path__, str(TOY_FAMILIES)])
    spec = ModelSpec(TOY_ID, "Toy colour model", "toy",
                     capabilities=registry.family_capabilities("toy", mask_refinement=False))
    monkeypatch.setattr(registry, "CATALOGUE", (*registry.CATALOGUE, spec))
    yield spec
    for name in [m for m in sys.modules if m.startswith("sam_backends.families.toy")]:
        del sys.modules[name]


@pytest.fixture
def ctx(toy, tmp_path):
    return AppContext(AppConfig(models=(TOY_ID, "grabcut"), device="cpu", precision="fp32",
                                checkpoint_dir=tmp_path, examples_dir=None))


def test_the_catalogue_offers_it_with_its_familys_facts(toy):
    assert get_spec(TOY_ID) is toy
    row = {r.model_id: r for r in list_models()}[TOY_ID]
    assert row.present and row.family == "toy"
    assert toy.capabilities.everything and not toy.capabilities.video
    assert not toy.runs_on_torch  # the family's fact: cpu, exact precision
    backend = create_backend(TOY_ID)
    assert (backend.device, backend.precision) == ("cpu", "fp32")


def test_segment_points_and_a_box(ctx):
    assert ctx.family(TOY_ID).note.startswith("a toy")
    embedding = ctx.encode(TOY_ID, scene(), "scene").embedding
    backend = ctx.backend(TOY_ID)
    point = inference.decode(backend, embedding, PromptSet().with_point(40, 30, 1))
    mask = point.result.mask()
    assert mask[RED].all() and not mask[BLUE].any() and not mask[5, 5]
    assert len(point.candidates) == 3  # one point: multimask, as the page asks
    boxed = inference.decode(backend, embedding, PromptSet().with_box((60, 45, 95, 70)))
    mask = boxed.result.mask()
    assert mask[BLUE].all() and not mask[RED].any()


def test_compare_beside_grabcut(ctx):
    session = CompareSession("toy", (TOY_ID, "grabcut"))
    session.set_image(scene(), "scene", "scene.png")
    run_prompts(ctx, session, PromptSet().with_box((20, 15, 65, 55)))
    for model_id in (TOY_ID, "grabcut"):
        assert session.outcomes[model_id].error is None
        assert session.workspaces[model_id].active.result.mask()[30, 40]
    assert session.workspaces[TOY_ID].active.result.mask()[RED].all()


def test_everything_in_the_engine_and_the_app(ctx):
    backend = ctx.backend(TOY_ID)
    embedding = ctx.encode(TOY_ID, scene(), "scene").embedding
    found = segment_everything(backend, embedding, EverythingParams(points_per_side=8))
    assert found.model_id == TOY_ID and len(found) >= 3  # background, red, blue
    assert any(mask[RED].all() and not mask[BLUE].any() for mask in found.masks)
    assert any(mask[BLUE].all() and not mask[RED].any() for mask in found.masks)
    in_app = engines.everything(ctx, TOY_ID, scene(), 8, 0.5)
    assert len(in_app) == len(found)
