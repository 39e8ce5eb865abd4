"""A whole project out and back in: ``samwb export`` / ``samwb import`` and the page's
exports, read back by each format's own reader (``workbench.projects.transfer``, ``cli``)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from format_fixtures import disc, multi_part, read_coco, read_yolo, read_yolo_names, with_holes
from PIL import Image

from sam_backends.masks import encode_rle
from workbench.projects.archive import extract_labels_zip
from workbench.projects.model import ProjectError, StoredObject
from workbench.projects.store import ProjectStore
from workbench.projects.transfer import export_store, export_zip, import_into

ROOT = Path(__file__).resolve().parents[2]
W, H = 96, 64


@pytest.fixture
def project(tmp_path):
    """Three images; the first with a disc (car), a holed disc and a two-part object (person);
    the second with nothing; the third a file that is not an image."""
    folder = tmp_path / "my project"
    (folder / "sub dir").mkdir(parents=True)
    for name in ("a.png", "sub dir/b é.png"):
        Image.new("RGB", (W, H), (90, 120, 150)).save(folder / name)
    (folder / "broken.jpg").write_text("not an image")
    with ProjectStore.open(folder, create=True, name="Transfer") as store:
        car = store.classes()[0]
        store.update_class(car.class_id, name="car")
        person = store.add_class("person")
        first = store.page(0, 10)[0]
        assert first.path == "a.png"
        masks = [(disc(H, W, 20, 20, 9), car.class_id), (with_holes(H, W, 60, 30, 16),
                                                        person.class_id),
                 (multi_part(H, W, 7, 30), person.class_id)]
        store.sync_objects(first.image_id, [
            StoredObject(first.image_id, i + 1, cid, encode_rle(m)) for i, (m, cid)
            in enumerate(masks)], [])
    return folder, [m for m, _ in masks], {"car": car.class_id, "person": person.class_id}


def iou(a, b):
    return np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum())


def test_cli_export_coco_and_yolo_read_back_by_their_readers(project, tmp_path):
    folder, masks, _ = project
    for fmt in ("coco", "yolo"):
        done = subprocess.run([sys.executable, str(ROOT / "app.py"), "export", str(folder),
                               "--format", fmt, "--out", str(tmp_path / fmt)],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "Exported 3 objects on 2 images" in done.stdout
    coco = read_coco(tmp_path / "coco")
    got = sorted(coco["a.png"], key=lambda t: t[0])
    assert [np.array_equal(m, g[2]) for m, g in zip(masks, got)] == [True] * 3
    data = json.loads(next((tmp_path / "coco").glob("*.json")).read_text())
    assert {c["name"] for c in data["categories"]} == {"car", "person"}
    assert all(a["iscrowd"] == 0 for a in data["annotations"])
    names = read_yolo_names(tmp_path / "yolo")
    assert sorted(names.values()) == ["car", "person"]
    lines = read_yolo(next((tmp_path / "yolo").rglob("a.txt")), W, H)
    assert len(lines) == 3  # the two-part object is one object
    for mask, (_, got_mask) in zip(masks, lines):
        assert iou(mask, got_mask) >= 0.9


def test_the_cli_refuses_a_project_another_app_has_open(project, tmp_path):
    folder, _, _ = project
    with ProjectStore.open(folder):
        done = subprocess.run([sys.executable, str(ROOT / "app.py"), "export", str(folder),
                               "--format", "coco", "--out", str(tmp_path / "out")],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 2
        assert "open in another samwb app" in done.stderr
        started = subprocess.run([sys.executable, str(ROOT / "app.py"), "--project",
                                  str(folder), "--port", "0"], capture_output=True, text=True,
                                 timeout=300)
        assert started.returncode != 0 and "open in another samwb app" in started.stderr


def test_every_format_zips_for_a_download(project, tmp_path):
    folder, _, _ = project
    with ProjectStore.open(folder) as store:
        for fmt in ("coco", "yolo", "labelme", "voc", "cutouts"):
            target = export_zip(store, fmt, tmp_path / "work")
            with zipfile.ZipFile(target) as archive:
                assert archive.namelist(), fmt
        with pytest.raises(ProjectError, match="Unknown format"):
            export_store(store, "pascal", tmp_path / "x")


def test_an_export_imports_back_into_a_fresh_project_as_objects_to_review(project, tmp_path):
    folder, masks, classes = project
    with ProjectStore.open(folder) as store:
        target = export_zip(store, "coco", tmp_path / "work")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("a.png", "sub dir/b é.png"):
        (fresh / name).parent.mkdir(parents=True, exist_ok=True)
        (fresh / name).write_bytes((folder / name).read_bytes())
    with ProjectStore.open(fresh, create=True) as store:
        result, report = import_into(store, "coco", target, tmp_path / "unpack")
        assert report.objects == 3 and not result.problems
        first = store.page(0, 1)[0]
        assert store.entry(first.image_id).status == "review"
        rows = sorted(store.objects(first.image_id), key=lambda r: r.local_id)
        assert [np.array_equal(r.mask(), m) for r, m in zip(rows, masks)] == [True] * 3
        by_name = {c.class_id: c.name for c in store.classes()}
        assert [by_name[r.class_id] for r in rows] == ["car", "person", "person"]
        assert all(r.source == "model" for r in rows)


def test_a_hostile_labels_zip_stays_in_its_folder(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../escape.txt", "x")
        zipped.writestr("/abs.txt", "x")
        zipped.writestr("labels/ok.txt", "0 0.1 0.1 0.2 0.1 0.2 0.2")
    out = extract_labels_zip(archive, tmp_path / "out")
    assert [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()] == [
        "labels/ok.txt"]
    assert not (tmp_path / "escape.txt").exists()
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("big.txt", b"0" * (3 << 20))
    with pytest.raises(ProjectError, match="more than"):
        extract_labels_zip(bomb, tmp_path / "bomb", max_bytes=1 << 20)
    (tmp_path / "not.zip").write_text("hello")
    with pytest.raises(ProjectError, match="not a readable ZIP"):
        extract_labels_zip(tmp_path / "not.zip", tmp_path / "nz")


def test_a_coco_round_trip_keeps_the_edited_mask_and_flag(project, tmp_path):
    """An object edited by hand (stored with its layer) exports its shown mask, marked
    ``edited``; imported into another project it keeps both (the layer itself stays home)."""
    from workbench.projects.model import StoredEdits

    folder, masks, classes = project
    model = disc(H, W, 20, 20, 9)
    add, remove = disc(H, W, 40, 50, 4), disc(H, W, 20, 20, 3)
    shown = (model | add) & ~remove
    with ProjectStore.open(folder) as store:
        first = store.page(0, 1)[0].image_id
        layer = StoredEdits(encode_rle(add), encode_rle(remove), encode_rle(model))
        store.sync_objects(first, [StoredObject(first, 1, classes["car"], encode_rle(shown),
                                                edits=layer)], [])
        export_store(store, "coco", tmp_path / "coco")
    data = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    assert [a["attributes"]["edited"] for a in data["annotations"]] == [True, False, False]
    assert np.array_equal(sorted(read_coco(tmp_path / "coco")["a.png"],
                                 key=lambda t: t[0])[0][2], shown)

    other = tmp_path / "other"
    other.mkdir()
    Image.new("RGB", (W, H)).save(other / "a.png")
    with ProjectStore.open(other, create=True) as store:
        import_into(store, "coco", tmp_path / "coco" / "annotations.json")
        rows = store.objects(store.page(0, 1)[0].image_id)
        assert [r.edited for r in rows] == [True, False, False]
        assert np.array_equal(rows[0].mask(), shown) and rows[0].edits is None
