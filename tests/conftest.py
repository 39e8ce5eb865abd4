"""Shared pytest fixtures: small random-weight SAM checkpoints written once per test session.

Fixtures (session-scoped, built on first use, a few seconds in all):

    sam1_small -> RandomCheckpoint(spec, path)   # SAM 1, reduced ViT encoder
    sam2_small -> RandomCheckpoint(spec, path)   # SAM 2.1, reduced Hiera trunk

Use them with the project's own loader, e.g.

    def test_something(sam2_small):
        backend = create_backend(sam2_small.spec, checkpoint=sam2_small.path, device="cpu",
                                 precision="fp32")

``spec`` is a ``ModelSpec`` (ids ``test-sam1-small`` / ``test-sam2-small``); ``path`` is the
checkpoint in the official format inside a session temp dir. Helpers to build other sizes live
in ``sam_backends/testing/random_models.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

import pytest

# The project root, so plain ``pytest`` (not only ``python -m pytest``) finds ``sam_backends``;
# pytest itself puts this folder on the path, which makes ``random_models`` importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sam_backends.registry import ModelSpec  # noqa: E402
from sam_backends.testing.random_models import (  # noqa: E402
    small_sam1_spec,
    small_sam2_spec,
    write_random_checkpoint,
)


@pytest.fixture(autouse=True)
def _thread_count_of_the_policy():
    """Each test starts with the process's thread policy (``accel.thread_count``) on this
    thread and as the default of new threads. Some tests load a labelling worker in this
    process, which sets its own count for the whole process (``Models.threads``, as a Ray
    worker process does), some from module fixtures; the app loads and encodes on threads of
    its own (``workbench.threads``), so later tests would otherwise compare encodes made on
    different thread counts."""
    import torch

    from sam_backends.errors import SamBackendError
    from sam_backends.speed.accel import available_cores, thread_count

    try:
        wanted = thread_count()
    except SamBackendError:  # a bad SAM_THREADS in the environment: its own tests say so
        wanted = available_cores()
    torch.set_num_threads(wanted)
    yield


class RandomCheckpoint(NamedTuple):
    spec: ModelSpec
    path: Path


@pytest.fixture(scope="session")
def random_checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session temp folder holding the random-weight checkpoints."""
    return tmp_path_factory.mktemp("random-checkpoints")


@pytest.fixture(scope="session")
def sam1_small(random_checkpoint_dir: Path) -> RandomCheckpoint:
    """A small random-weight SAM 1 checkpoint (bare state dict) and its spec."""
    spec = small_sam1_spec()
    return RandomCheckpoint(
        spec, write_random_checkpoint(spec, random_checkpoint_dir / spec.checkpoint_file)
    )


@pytest.fixture(scope="session")
def sam2_small(random_checkpoint_dir: Path) -> RandomCheckpoint:
    """A small random-weight SAM 2.1 checkpoint (``{"model": state_dict}``) and its spec."""
    spec = small_sam2_spec()
    return RandomCheckpoint(
        spec, write_random_checkpoint(spec, random_checkpoint_dir / spec.checkpoint_file)
    )


@pytest.fixture(scope="session")
def edgetam_small(random_checkpoint_dir: Path) -> Path:
    """A small random-weight EdgeTAM model folder (``save_pretrained``, Hub layout), for
    ``create_backend("edgetam", checkpoint=folder)`` and ``create_tracker``."""
    from sam_backends.testing.edgetam_models import small_edgetam_config, write_random_edgetam

    return write_random_edgetam(random_checkpoint_dir / "edgetam", small_edgetam_config())
