"""The same run through Ray Data on a local 2-CPU cluster, and a run killed with ``kill -9``.

The cluster is started once for the module (``ray.init(num_cpus=2)``, about 3 s on a quiet
machine) and shut down after; the actors load the reduced random-weight SAM 2.1 once each.
The killing tests are marked slow (``-m slow`` runs them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.workbench.labeling_fixtures import (
    boxes_run,
    make_boxes,
    make_project_images,
    models_for,
    objects_by_path,
)
from workbench.labeling import LocalExecutor, label_project
from workbench.projects.store import ProjectStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield ray
    ray.shutdown()


def _projects(tmp_path: Path, count: int = 5):
    names = make_project_images(tmp_path / "local", count)
    make_project_images(tmp_path / "ray", count)
    return tmp_path / "local", tmp_path / "ray", make_boxes(tmp_path / "boxes", names)


def test_ray_gives_the_local_runs_objects_image_by_image(ray_cluster, sam2_small, tmp_path):
    from workbench.labeling.ray_executor import RayExecutor

    local, on_ray, boxes = _projects(tmp_path)
    run = boxes_run(sam2_small.spec, boxes)
    models = models_for(run, sam2_small)
    with ProjectStore.open(local, create=True) as store:
        label_project(store, run, models, LocalExecutor(1, threads=1))
        expected = objects_by_path(store)
    with ProjectStore.open(on_ray, create=True) as store:
        done = label_project(store, run, models, RayExecutor(threads=1, batch_size=2))
        assert (done.total, done.labelled, done.failed) == (5, 5, 0)
        assert objects_by_path(store) == expected


@pytest.mark.slow  # a second actor start and a restart: ~25 s
def test_an_actor_killed_mid_batch_is_replaced_and_the_run_finishes(
        ray_cluster, sam2_small, tmp_path):
    from workbench.labeling.ray_executor import RayExecutor

    _, folder, boxes = _projects(tmp_path)
    token = tmp_path / "kill-once"
    token.write_text("")
    run = boxes_run(sam2_small.spec, boxes)
    with ProjectStore.open(folder, create=True) as store:
        executor = RayExecutor(threads=1, batch_size=3, crash_token=str(token))
        done = label_project(store, run, models_for(run, sam2_small), executor)
        assert not token.exists()  # an actor did die
        assert (done.labelled, done.failed) == (5, 0)
        again = label_project(store, run, models_for(run, sam2_small), executor)
        assert again.total == 0
        assert all(len(objects) == 2 for objects in objects_by_path(store).values())


SCRIPT = """
import sys
from sam_backends import registry
from sam_backends.testing.random_models import small_sam2_spec
registry.CATALOGUE = (*registry.CATALOGUE, small_sam2_spec())
from workbench.projects.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


@pytest.mark.slow  # two CLI processes, each importing torch and loading the model: ~20 s
def test_a_run_killed_with_sigkill_continues_with_the_same_command(sam2_small, tmp_path):
    folder = tmp_path / "p"
    names = make_project_images(folder, 6)
    boxes = make_boxes(tmp_path / "boxes", names)
    with ProjectStore.open(folder, create=True):
        pass
    run = boxes_run(sam2_small.spec, boxes)
    command = [sys.executable, "-c", SCRIPT, "label", str(folder), "--boxes", str(boxes),
               "--model", sam2_small.spec.model_id, "--checkpoint",
               f"{sam2_small.spec.model_id}={sam2_small.path}", "--device", "cpu",
               "--precision", "fp32", "--threads", "1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and child.poll() is None:
            with ProjectStore.open(folder, read_only=True) as viewer:
                if len(viewer.state_with_prefix(run.marker_prefix)) >= 2:
                    break
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    with ProjectStore.open(folder, read_only=True) as viewer:
        first = len(viewer.state_with_prefix(run.marker_prefix))
    assert 2 <= first < 6, child.stdout.read().decode()
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"Labelled {6 - first} images" in again.stdout
    with ProjectStore.open(folder) as store:
        found = objects_by_path(store)
        assert all(len(objects) == 2 for objects in found.values())  # each once, none twice
        assert len(store.state_with_prefix(run.marker_prefix)) == 6
