"""Auto-labelling a project on this machine: per-image results, resume, idempotence, bad input,
the CLI and ``samwb export`` after it (reduced random-weight SAM 2.1; boxes from label files)."""

from __future__ import annotations

import sys
import threading

import pytest

from tests.workbench.format_fixtures import read_yolo, read_yolo_names
from tests.workbench.labeling_fixtures import (
    boxes_run,
    huge_png,
    make_boxes,
    make_project_images,
    models_for,
    objects_by_path,
)
from workbench.labeling import LabelRun, LocalExecutor, WorkItem, label_project, plan, start_run
from workbench.labeling.per_image import label_image, load_models
from workbench.projects.model import StoredObject
from workbench.projects.store import ProjectStore


@pytest.fixture(scope="module")
def executor():
    """One in-process executor for the module: the model is loaded once."""
    return LocalExecutor(1, threads=1)


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "project"
    names = make_project_images(folder, 4)
    boxes = make_boxes(tmp_path / "boxes", names)
    return folder, boxes


def test_label_image_gives_objects_or_the_reason(sam2_small, tmp_path):
    names = make_project_images(tmp_path, 1)
    run = boxes_run(sam2_small.spec, make_boxes(tmp_path / "b", names), max_pixels=10_000)
    loaded = load_models(models_for(run, sam2_small), run)
    boxes = ((0.5, 0.5, 0.4, 0.4, "car"), (0.3, 0.3, 0.2, 0.3, "person"))
    good = label_image(loaded, WorkItem(1, str(tmp_path / names[0]), boxes), run)
    assert good.ok and [o.class_name for o in good.objects] == ["car", "person"]
    assert (good.width, good.height) == (64, 48)
    assert all(o.rle["size"] == [48, 64] and 0.0 <= o.score <= 1.0 for o in good.objects)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    bad = label_image(loaded, WorkItem(2, str(tmp_path / "bad.jpg"), boxes), run)
    assert not bad.ok and "not an image format" in bad.error
    huge = label_image(loaded, WorkItem(3, str(huge_png(tmp_path / "huge.png")), boxes), run)
    assert not huge.ok and "pixels" in huge.error
    assert label_image(loaded, WorkItem(4, str(tmp_path / names[0])), run).objects == ()


def test_a_run_labels_each_image_once_and_never_touches_a_persons_objects(
        sam2_small, project, executor):
    folder, boxes = project
    run = boxes_run(sam2_small.spec, boxes)
    models = models_for(run, sam2_small)
    with ProjectStore.open(folder, create=True) as store:
        mine = store.image_id_of("im0.png")
        person = store.add_class("tree")
        rle = {"size": [48, 64], "counts": "0`0"}
        store.sync_objects(mine, [StoredObject(mine, 1, person.class_id, rle)], [])
        first = label_project(store, run, models, executor)
        assert (first.total, first.labelled, first.found, first.failed) == (4, 4, 8, 0)
        after = objects_by_path(store)
        assert all(len(objects) == 2 for objects in after.values())
        assert {c.name for c in store.classes()} >= {"car", "person", "tree"}
        assert [o.class_id for o in store.objects(mine) if o.source == "person"] == [
            person.class_id]
        assert all(e.status == "auto" for e in store.page(0, 10))
        again = label_project(store, run, models, executor)
        assert (again.total, again.skipped, again.found) == (0, 4, 0)
        assert objects_by_path(store) == after  # nothing duplicated, nothing rewritten


def test_a_cancelled_or_crashed_run_goes_on_where_it_stopped(sam2_small, project, executor):
    folder, boxes = project
    run = boxes_run(sam2_small.spec, boxes)
    models = models_for(run, sam2_small)
    with ProjectStore.open(folder, create=True) as store:
        cancel = threading.Event()
        stopped = label_project(store, run, models, executor, cancel=cancel,
                                on_result=lambda p: cancel.set())
        assert stopped.cancelled and stopped.done == 1

        def crash(progress):
            raise RuntimeError("the machine went down")

        with pytest.raises(RuntimeError):
            label_project(store, run, models, executor, on_result=crash)
        assert len(store.state_with_prefix(run.marker_prefix)) == 2
        rest = label_project(store, run, models, executor)
        assert (rest.total, rest.skipped, rest.labelled) == (2, 2, 2)
        found = objects_by_path(store)
        assert all(len(objects) == 2 for objects in found.values())
        keys = [key for objects in found.values() for *_, key in objects]
        assert sorted(set(keys)) == sorted({f"{run.run_key}{i}" for i in (0, 1)})


def test_bad_images_are_recorded_and_skipped_and_an_empty_folder_is_no_error(
        sam2_small, tmp_path, executor):
    folder = tmp_path / "p"
    make_project_images(folder, 1)
    (folder / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    huge_png(folder / "huge.png")
    run = boxes_run(sam2_small.spec, make_boxes(tmp_path / "b", ["im0.png"]))
    models = models_for(run, sam2_small)
    with ProjectStore.open(folder, create=True) as store:
        done = label_project(store, run, models, executor)
        assert (done.labelled, done.failed) == (1, 2)
        errors = {e.path: e.error for e in store.page(0, 10)}
        assert errors["im0.png"] == "" and errors["bad.jpg"] and "pixels" in errors["huge.png"]
        assert plan(store, run).items and len(plan(store, run).items) == 2  # tried again
    empty = tmp_path / "empty"
    empty.mkdir()
    with ProjectStore.open(empty, create=True) as store:
        nothing = label_project(store, run, models, executor)
        assert (nothing.total, nothing.done, nothing.failed) == (0, 0, 0)


def test_a_text_prompt_that_finds_nothing_is_an_empty_success(sam2_small, tmp_path):
    from sam_backends.testing.text_models import small_owlv2_config, write_random_owlv2

    owl = write_random_owlv2(tmp_path / "owl", small_owlv2_config())
    folder = tmp_path / "p"
    make_project_images(folder, 1)
    run = LabelRun(sam2_small.spec.model_id, "text", phrases=("car",), threshold=1.0)
    models = models_for(run, sam2_small, {"owlv2": str(owl)})
    with ProjectStore.open(folder, create=True) as store:
        done = label_project(store, run, models, LocalExecutor(1, threads=1))
        assert (done.labelled, done.found, done.failed) == (1, 0, 0)
        assert store.state_with_prefix(run.marker_prefix)  # done: not tried again
        assert store.class_by_name("car") is not None


def test_start_run_reports_progress_in_the_background(sam2_small, project, executor):
    folder, boxes = project
    run = boxes_run(sam2_small.spec, boxes, images="im[12].png")
    with ProjectStore.open(folder, create=True) as store:
        handle = start_run(store, run, executor, models_for(run, sam2_small))
        final = handle.wait(timeout=300)
        assert (final.total, final.done, final.found) == (2, 2, 4)
        assert final.finished and final.images_per_second > 0 and final.eta_seconds == 0


@pytest.fixture
def catalogued(sam2_small, monkeypatch):
    """The reduced model in the catalogue, as ``--model test-sam2-small`` finds it."""
    from sam_backends import registry

    monkeypatch.setattr(registry, "CATALOGUE", (*registry.CATALOGUE, sam2_small.spec))
    return sam2_small


def test_samwb_label_then_export_yolo(catalogued, project, tmp_path, capsys):
    from workbench.projects.cli import main

    folder, boxes = project
    with ProjectStore.open(folder, create=True):
        pass
    args = ["label", str(folder), "--boxes", str(boxes), "--model", catalogued.spec.model_id,
            "--checkpoint", f"{catalogued.spec.model_id}={catalogued.path}", "--device", "cpu",
            "--precision", "fp32", "--threads", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Labelled 4 images, found 8 objects; failed 0" in out
    assert main(args) == 0
    assert "Labelled 0 images" in capsys.readouterr().out
    assert main(["export", str(folder), "--format", "yolo", "--out", str(tmp_path / "y")]) == 0
    names = read_yolo_names(tmp_path / "y")
    labels = sorted((tmp_path / "y").rglob("*.txt"))
    assert len(labels) == 4 and set(names.values()) >= {"car", "person"}
    for label in labels:
        read = read_yolo(label, 64, 48)
        assert sorted(names[c] for c, _ in read) == ["car", "person"]
        assert all(mask.any() for _, mask in read)


def test_ray_without_ray_says_how_to_install_it(catalogued, project, monkeypatch, capsys):
    from workbench.projects.cli import main

    folder, boxes = project
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code = main(["label", str(folder), "--everything", "--model", catalogued.spec.model_id,
                 "--ray"])
    assert code == 2
    assert 'pip install ".[ray]"' in capsys.readouterr().err
