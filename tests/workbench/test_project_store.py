"""The project store's API: creating, scanning, navigating, classes, objects, state,
thumbnails, exports and imports, migrations and threads (hostile input: test_project_hostile)."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from project_files import make_images

from sam_backends.masks import encode_rle
from workbench.projects import schema
from workbench.projects.model import (
    LabelledImage,
    LabelledObject,
    ProjectError,
    StoredEdits,
    StoredObject,
)
from workbench.projects.scan import sort_key
from workbench.projects.store import MISSING, ProjectStore


def mask(h: int = 30, w: int = 40, x0: int = 2, y0: int = 3, x1: int = 20, y1: int = 12):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def obj(image_id: int, local_id: int, class_id: int = 1, **kw) -> StoredObject:
    m = kw.pop("m", None)
    return StoredObject(image_id, local_id, class_id, encode_rle(mask() if m is None else m),
                        **kw)


@pytest.fixture
def project(tmp_path: Path):
    make_images(tmp_path, ["img1.png", "img2.png", "img10.png", "b/x.JPG", "b/y.jpeg"])
    with ProjectStore.open(tmp_path, create=True, name="Street") as store:
        yield store


def ids(store: ProjectStore) -> dict[str, int]:
    return {e.path: e.image_id for e in store.page(0, 1000)}


def test_create_writes_the_files_and_settings(tmp_path: Path):
    make_images(tmp_path, ["a.png"])
    with ProjectStore.open(tmp_path, create=True) as store:
        assert store.name == tmp_path.name and not store.read_only
        assert [(c.class_id, c.name) for c in store.classes()] == [(1, "object")]
        assert store.count() == 1
        data = json.loads((tmp_path / "samwb-project.json").read_text())
        assert data["format"] == "samwb-project" and data["version"] == 1
        assert data["next_class_id"] == 2 and data["settings"] == {}
        conn = sqlite3.connect(tmp_path / "samwb-project.sqlite")
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.schema_version()
        conn.close()
        assert (tmp_path / ".samwb-cache" / "lock").exists()


def test_a_lost_database_is_made_again_and_the_classes_stay(tmp_path: Path):
    make_images(tmp_path, ["a.png", "b.png"])
    with ProjectStore.open(tmp_path, create=True) as store:
        store.add_class("car")
    (tmp_path / "samwb-project.sqlite").unlink()
    with ProjectStore.open(tmp_path) as store:
        assert store.count() == 2 and store.class_by_name("car") is not None


def test_opening_a_folder_without_a_project_says_how_to_create_one(tmp_path: Path):
    with pytest.raises(ProjectError, match="create=True"):
        ProjectStore.open(tmp_path)
    with pytest.raises(ProjectError, match="not a folder"):
        ProjectStore.open(tmp_path / "nope")


def test_scan_finds_images_in_natural_order_and_skips_hidden_and_other_files(tmp_path: Path):
    make_images(tmp_path, ["img10.png", "img2.PNG", "img1.png", "sub/a.TIFF", "c.webp",
                           ".hidden/h.png", ".samwb-cache/thumbs/t.jpg", "notes.txt", "d.bmp",
                           "e.tif", "f.gif"])
    with ProjectStore.open(tmp_path, create=True) as store:
        assert [e.path for e in store.page(0, 100)] == [
            "c.webp", "d.bmp", "e.tif", "img1.png", "img2.PNG", "img10.png", "sub/a.TIFF"]
        make_images(tmp_path, ["img3.png"])
        report = store.scan()
        assert (report.added, report.missing, report.refused) == (1, 0, [])
        assert store.scan().added == 0


def test_sort_key_is_natural_and_unique():
    paths = ["a/b.png", "a b.png", "A10.png", "a9.png", "a09.png", "a.png"]
    keys = sorted(paths, key=sort_key)
    assert keys.index("a9.png") < keys.index("A10.png")
    assert len({sort_key(p) for p in paths}) == len(paths)


def test_missing_files_keep_their_objects_and_come_back(project: ProjectStore):
    image_id = ids(project)["img1.png"]
    project.sync_objects(image_id, [obj(image_id, 1)], [])
    (project.folder / "img1.png").rename(project.folder / "img1.moved")
    report = project.scan()
    assert report.missing == 1 and project.entry(image_id).error == MISSING
    assert all(li.path != "img1.png" for li in project.iter_labelled())
    (project.folder / "img1.moved").rename(project.folder / "img1.png")
    assert project.scan().missing == 0
    entry = project.entry(image_id)
    assert entry.error == "" and entry.object_count == 1


def test_navigation_with_filters(project: ProjectStore):
    order = [e.path for e in project.page(0, 100)]
    assert order == ["b/x.JPG", "b/y.jpeg", "img1.png", "img2.png", "img10.png"]
    by_path = ids(project)
    first, second = by_path["b/x.JPG"], by_path["b/y.jpeg"]
    assert project.neighbour(first, 1).path == "b/y.jpeg"
    assert project.neighbour(first, 2).path == "img1.png"
    assert project.neighbour(first, -1) is None
    assert project.neighbour(by_path["img10.png"], 1) is None
    assert project.neighbour(by_path["img10.png"], -2).path == "img1.png"
    assert project.index_of(by_path["img2.png"]) == 3
    assert [e.path for e in project.page(1, 2)] == ["b/y.jpeg", "img1.png"]

    project.set_status(second, "done")
    project.set_status(by_path["img2.png"], "done")
    assert project.count() == 5 and project.count("done") == 2 and project.count("new") == 3
    assert project.status_counts()["done"] == 2
    assert [e.path for e in project.page(0, 10, status="done")] == ["b/y.jpeg", "img2.png"]
    # an image outside the filter still has neighbours in it
    assert project.neighbour(first, 1, status="done").path == "b/y.jpeg"
    assert project.neighbour(by_path["img1.png"], -1, status="done").path == "b/y.jpeg"
    assert project.index_of(by_path["img10.png"], status="done") == 2

    project.sync_objects(by_path["img10.png"], [obj(by_path["img10.png"], 1)], [])
    car = project.add_class("car")
    project.sync_objects(first, [obj(first, 1, car.class_id), obj(first, 2, car.class_id)], [])
    assert project.count(class_id=car.class_id) == 1
    assert project.count(class_id=1) == 1
    assert project.page(0, 10, class_id=car.class_id)[0].object_count == 2
    assert project.neighbour(first, 1, class_id=1).path == "img10.png"
    assert project.count(status="new", class_id=1) == 1
    with pytest.raises(ProjectError, match="Unknown status"):
        project.count("finished")
    with pytest.raises(ProjectError, match="no image 999"):
        project.entry(999)


def test_next_unfinished_skips_finished_and_unreadable_and_wraps(project: ProjectStore):
    by_path = ids(project)
    for path in ("b/x.JPG", "img2.png", "img10.png"):
        project.set_status(by_path[path], "done")
    project.set_status(by_path["img1.png"], "review")
    assert project.next_unfinished(None).path == "b/y.jpeg"
    assert project.next_unfinished(by_path["b/y.jpeg"]).path == "img1.png"
    assert project.next_unfinished(by_path["img10.png"]).path == "b/y.jpeg"  # wraps
    project.record_image_error(by_path["b/y.jpeg"], "not an image")
    assert project.next_unfinished(by_path["img1.png"]).path == "img1.png"
    project.set_status(by_path["img1.png"], "skipped")
    assert project.next_unfinished(None) is None


def test_classes_are_unique_persisted_and_ids_never_reused(tmp_path: Path):
    make_images(tmp_path, ["a.png"])
    with ProjectStore.open(tmp_path, create=True) as store:
        car = store.add_class("  car ")
        assert car.name == "car" and car.color.startswith("#")
        with pytest.raises(ProjectError, match="already"):
            store.add_class("CAR")
        assert store.class_by_name("Car") == car
        bus = store.add_class("bus", "#123456")
        store.update_class(bus.class_id, name="Bus", color="#abcdef")
        with pytest.raises(ProjectError, match="already"):
            store.update_class(bus.class_id, name="car")
        image_id = store.page(0, 1)[0].image_id
        store.sync_objects(image_id, [obj(image_id, 1, car.class_id)], [])
        with pytest.raises(ProjectError, match="choose a class"):
            store.remove_class(car.class_id, None)
        store.remove_class(car.class_id, reassign_to=bus.class_id)
        assert store.objects(image_id)[0].class_id == bus.class_id
        again = store.add_class("car")
        assert again.class_id not in (car.class_id, bus.class_id)
        store.remove_class(again.class_id, None)
        with pytest.raises(ProjectError, match="no class"):
            store.sync_objects(image_id, [obj(image_id, 2, 99)], [])
    with ProjectStore.open(tmp_path) as store:
        assert [(c.name, c.color) for c in store.classes()] == [
            ("object", store.classes()[0].color), ("Bus", "#abcdef")]


def test_hand_edited_project_file_is_checked_and_orphan_classes_come_back(tmp_path: Path):
    make_images(tmp_path, ["a.png"])
    with ProjectStore.open(tmp_path, create=True) as store:
        car = store.add_class("car")
        image_id = store.page(0, 1)[0].image_id
        store.sync_objects(image_id, [obj(image_id, 1, car.class_id)], [])
    path = tmp_path / "samwb-project.json"
    data = json.loads(path.read_text())
    data["classes"] = data["classes"][:1]
    path.write_text(json.dumps(data))
    with ProjectStore.open(tmp_path) as store:
        assert store.class_by_name(f"class {car.class_id}").class_id == car.class_id
    path.write_text("{not json")
    with pytest.raises(ProjectError, match="could not be read"):
        ProjectStore.open(tmp_path)


def test_sync_objects_upserts_deletes_and_keeps_created_at(project: ProjectStore):
    image_id = ids(project)["img1.png"]
    assert project.next_local_id(image_id) == 1
    first = obj(image_id, 1, prompts={"points": [[3, 4]], "labels": [1]}, score=0.9,
                model_id="sam2.1-tiny", instance_name="left dog")
    project.sync_objects(image_id, [first, obj(image_id, 2)], [])
    stored = {o.local_id: o for o in project.objects(image_id)}
    assert stored[1].prompts == {"points": [[3, 4]], "labels": [1]}
    assert stored[1].instance_name == "left dog" and stored[1].score == pytest.approx(0.9)
    assert np.array_equal(stored[1].mask(), mask())
    created = stored[1].created_at
    moved = mask(x0=10, x1=30)
    project.sync_objects(image_id, [obj(image_id, 1, m=moved, edited=True)], [2])
    (only,) = project.objects(image_id)
    assert only.created_at == created and only.updated_at >= created and only.edited
    assert np.array_equal(only.mask(), moved)
    assert project.entry(image_id).object_count == 1 and project.next_local_id(image_id) == 2


def test_sync_objects_is_one_transaction(project: ProjectStore):
    image_id = ids(project)["img1.png"]
    bad = StoredObject(image_id, 2, 1, {"size": [30, 40], "counts": "not rle!"})
    with pytest.raises(ProjectError, match="compressed RLE"):
        project.sync_objects(image_id, [obj(image_id, 1), bad], [])
    wrong_image = obj(image_id + 1, 3)
    with pytest.raises(ProjectError, match="belongs to image"):
        project.sync_objects(image_id, [obj(image_id, 1), wrong_image], [])
    assert project.objects(image_id) == []
    with pytest.raises(ProjectError, match="no image"):
        project.sync_objects(12345, [obj(12345, 1)], [])


def test_replace_run_objects_replaces_only_its_own(project: ProjectStore):
    image_id = ids(project)["img1.png"]
    project.sync_objects(image_id, [obj(image_id, 1)], [])  # a person's
    run = [obj(image_id, 0 + 1, source="model", run_key=f"text:car:{i}") for i in range(2)]
    first = project.replace_run_objects(image_id, "text:car:", run)
    assert [o.local_id for o in first] == [2, 3]
    assert project.entry(image_id).status == "auto"
    project.sync_objects(image_id, [obj(image_id, 3, source="model", run_key="text:car:1",
                                        edited=True)], [])
    other = project.replace_run_objects(image_id, "text:dog:", [
        obj(image_id, 1, source="model", run_key="text:dog:0")])
    assert other[0].local_id == 4
    again = project.replace_run_objects(image_id, "text:car:", run[:1])
    assert [o.local_id for o in again] == [5]
    kept = {(o.local_id, o.source, o.run_key) for o in project.objects(image_id)}
    assert kept == {(1, "person", ""), (3, "model", "text:car:1"), (4, "model", "text:dog:0"),
                    (5, "model", "text:car:0")}
    with pytest.raises(ProjectError, match="does not start"):
        project.replace_run_objects(image_id, "text:car:", [obj(image_id, 1, run_key="x")])
    project.set_status(image_id, "done")
    project.replace_run_objects(image_id, "text:car:", run)
    assert project.entry(image_id).status == "done"


def test_state_and_settings_survive_a_restart(tmp_path: Path):
    make_images(tmp_path, ["a.png"])
    with ProjectStore.open(tmp_path, create=True) as store:
        assert store.get_state("last_image", 7) == 7
        store.set_state("last_image", 1)
        store.set_state("view", {"filter": "new", "zoom": 1.5})
        assert store.update_settings({"model": "sam2.1-tiny"}) == {"model": "sam2.1-tiny"}
        with pytest.raises(ProjectError, match="JSON"):
            store.set_state("bad", object())
    with ProjectStore.open(tmp_path) as store:
        assert store.get_state("last_image") == 1
        assert store.get_state("view") == {"filter": "new", "zoom": 1.5}
        assert store.settings() == {"model": "sam2.1-tiny"}


def test_thumbnails_are_made_once_and_record_the_size(tmp_path: Path):
    Image.new("RGBA", (400, 200), (0, 0, 255, 128)).save(tmp_path / "wide.png")
    with ProjectStore.open(tmp_path, create=True) as store:
        image_id = store.page(0, 1)[0].image_id
        data = store.thumbnail(image_id, 100)
        with Image.open(io.BytesIO(data)) as thumb:
            assert thumb.format == "JPEG" and thumb.size == (100, 50)
        entry = store.entry(image_id)
        assert (entry.width, entry.height) == (400, 200)
        cached = list((tmp_path / ".samwb-cache" / "thumbs" / "100").glob("*.jpg"))
        assert len(cached) == 1 and cached[0].read_bytes() == data
        assert store.thumbnail(image_id, 100) == data


def test_iter_labelled_streams_readable_images_with_objects(tmp_path: Path, monkeypatch):
    from workbench.projects import exchange

    monkeypatch.setattr(exchange, "EXPORT_PAGE", 2)  # several pages
    make_images(tmp_path, [f"i{n}.png" for n in range(5)])
    (tmp_path / "text.jpg").write_text("not an image")
    with ProjectStore.open(tmp_path, create=True) as store:
        by_path = ids(store)
        store.sync_objects(by_path["i3.png"], [obj(by_path["i3.png"], 1),
                                               obj(by_path["i3.png"], 2)], [])
        store.set_status(by_path["i3.png"], "done")
        labelled = list(store.iter_labelled())
        assert [li.path for li in labelled] == [f"i{n}.png" for n in range(5)]
        assert all((li.width, li.height) == (40, 30) for li in labelled)
        assert len(labelled[3].objects) == 2 and labelled[3].source == tmp_path / "i3.png"
        assert np.array_equal(labelled[3].objects[0].mask(), mask())
        assert store.entry(by_path["text.jpg"]).error  # found out while exporting
        assert [li.path for li in store.iter_labelled(status="done")] == ["i3.png"]


def test_import_objects_matches_paths_and_creates_classes(project: ProjectStore):
    by_path = ids(project)
    rle = encode_rle(mask())
    images = [
        LabelledImage("img1.png", 40, 30, (LabelledObject(0, rle), LabelledObject(1, rle))),
        LabelledImage("./b\\x.JPG", 40, 30, (LabelledObject(1, rle, instance_name="rex"),)),
        LabelledImage("elsewhere/z.png", 40, 30, (LabelledObject(0, rle),)),
        LabelledImage("img2.png", 80, 60, (LabelledObject(0, encode_rle(mask(60, 80))),)),
        LabelledImage("img10.png", 40, 30, (LabelledObject(7, rle),)),
    ]
    report = project.import_objects(images, ["Object", "dog"])
    assert report.classes_added == ["dog"]
    assert (report.images, report.objects) == (3, 3)
    assert len(report.problems) == 2 + 1
    assert any("elsewhere/z.png" in p for p in report.problems)
    dog = project.class_by_name("dog")
    objs = project.objects(by_path["b/x.JPG"])
    assert [(o.class_id, o.instance_name, o.source) for o in objs] == [
        (dog.class_id, "rex", "model")]
    assert project.entry(by_path["img1.png"]).status == "review"
    assert project.entry(by_path["img1.png"]).width == 40  # size learnt from the file
    # a mapping of category ids, and the person source
    report = project.import_objects([LabelledImage("img1.png", 40, 30, (LabelledObject(3, rle),))],
                                    {3: "DOG"}, source="person")
    assert report.objects == 1 and report.classes_added == []
    assert project.objects(by_path["img1.png"])[-1].local_id == 3


def test_threads_share_one_store(project: ProjectStore):
    image_ids = list(ids(project).values())
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            image_id = image_ids[n % len(image_ids)]
            for i in range(20):
                local = n * 100 + i + 1
                project.sync_objects(image_id, [obj(image_id, local)], [])
                project.page(0, 10)
                project.neighbour(image_id, 1)
                project.count(class_id=1)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(e.object_count for e in project.page(0, 100)) == 120


def test_image_path_is_inside_the_folder(project: ProjectStore):
    image_id = ids(project)["b/x.JPG"]
    path = project.image_path(image_id)
    assert path.is_absolute() and path == (project.folder / "b" / "x.JPG").resolve()


def _add_note(conn):
    conn.execute("ALTER TABLE images ADD COLUMN note TEXT NOT NULL DEFAULT ''")


def _broken_note(conn):
    conn.execute("ALTER TABLE images ADD COLUMN note TEXT")
    raise RuntimeError("migration failed half-way")


def test_migrations_run_in_one_transaction(tmp_path: Path, monkeypatch):
    make_images(tmp_path, ["a.png"])
    with ProjectStore.open(tmp_path, create=True) as store:
        image_id = store.page(0, 1)[0].image_id
        store.sync_objects(image_id, [obj(image_id, 1)], [])
    db = tmp_path / "samwb-project.sqlite"
    current = schema.schema_version()

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, _broken_note])
    with pytest.raises(RuntimeError, match="half-way"):
        ProjectStore.open(tmp_path)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == current
    columns = [r[1] for r in conn.execute("PRAGMA table_info(images)")]
    assert "note" not in columns
    conn.close()

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS[:current], _add_note])
    with ProjectStore.open(tmp_path) as store:
        assert store.objects(image_id)[0].local_id == 1
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == current + 1
    assert "note" in [r[1] for r in conn.execute("PRAGMA table_info(images)")]
    conn.close()


def test_v0_to_v1_creates_the_documented_schema(tmp_path: Path):
    conn = sqlite3.connect(tmp_path / "x.sqlite", isolation_level=None)
    assert schema.migrate(conn, schema.MIGRATIONS[:1]) == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"images", "objects", "state"} <= tables
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"images_by_status", "objects_by_class"} <= indexes
    plan = " ".join(str(r) for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM objects WHERE image_id = 1"))
    assert "USING COVERING INDEX" in plan
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO objects (image_id, local_id, class_id, rle_h, rle_w, "
                     "rle_counts, source, created_at, updated_at) "
                     "VALUES (1, 1, 1, 1, 1, '', 'robot', 0, 0)")


def test_v1_to_v2_keeps_old_objects_and_adds_the_edit_layer(tmp_path: Path, monkeypatch):
    """A project saved before edit layers existed opens, keeps its (baked) masks and flags,
    and takes layered edits from then on."""
    make_images(tmp_path, ["a.png"])
    with monkeypatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        ProjectStore.open(tmp_path, create=True).close()
    conn = sqlite3.connect(tmp_path / "samwb-project.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    image_id = conn.execute("SELECT id FROM images").fetchone()[0]
    rle = encode_rle(mask())
    conn.execute("INSERT INTO objects (image_id, local_id, class_id, rle_h, rle_w, rle_counts, "
                 "source, prompts, edited, created_at, updated_at) "
                 "VALUES (?, 1, 1, 30, 40, ?, 'person', '{\"points\": [[5, 6]], "
                 "\"labels\": [1]}', 1, 1.0, 1.0)", (image_id, rle["counts"]))
    conn.commit()
    conn.close()

    with ProjectStore.open(tmp_path) as store:
        (old,) = store.objects(image_id)
        assert old.edited and old.edits is None and old.prompts["points"] == [[5, 6]]
        np.testing.assert_array_equal(old.mask(), mask())
        # saved again without a layer (the page never had one): still marked edited
        store.sync_objects(image_id, [obj(image_id, 1)], [])
        assert store.objects(image_id)[0].edited
        layer = StoredEdits(encode_rle(mask(x0=0, x1=5)), encode_rle(mask(x0=30, x1=35)),
                            encode_rle(mask()))
        store.sync_objects(image_id, [obj(image_id, 2, edits=layer)], [])
        new = store.objects(image_id)[1]
        assert new.edited and new.edits == layer
    conn = sqlite3.connect(tmp_path / "samwb-project.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.schema_version() == 2
    conn.close()


def test_an_edit_layer_is_checked_before_it_is_written(project: ProjectStore):
    image_id = ids(project)["img1.png"]
    wrong = StoredEdits(encode_rle(mask(31, 40)), encode_rle(mask(31, 40)))
    with pytest.raises(ProjectError, match="edit masks are 31 x 40, its mask 30 x 40"):
        project.sync_objects(image_id, [obj(image_id, 1, edits=wrong)], [])
    bad = StoredEdits(encode_rle(mask()), {"size": [30, 40], "counts": "not rle!"})
    with pytest.raises(ProjectError, match="compressed RLE"):
        project.sync_objects(image_id, [obj(image_id, 1, edits=bad)], [])
    assert project.objects(image_id) == []


def test_hidden_and_locked_survive_a_save_and_a_reload(tmp_path: Path):
    """The object list's flags are stored with the object (schema v2), so reopening the
    project shows the list as the annotator left it."""
    from workbench.objects import MaskResult, SegObject, Step
    from workbench.projects.workspace_io import object_from_stored, stored_from_object

    make_images(tmp_path, ["a.png"])
    step = Step(result=MaskResult.from_mask(mask(), 0.9, None, "m"))
    shown = SegObject(1, (step,))
    hidden = SegObject(2, (step,), hidden=True, locked=True)
    with ProjectStore.open(tmp_path, create=True) as store:
        image_id = store.page(0, 1)[0].image_id
        store.sync_objects(image_id, [stored_from_object(o, image_id, 1)
                                      for o in (shown, hidden)], [])
    with ProjectStore.open(tmp_path) as store:
        back = [object_from_stored(r) for r in store.objects(image_id)]
    assert [(o.object_id, o.hidden, o.locked) for o in back] == [(1, False, False),
                                                                 (2, True, True)]


def test_a_v1_database_gains_the_flags_and_keeps_its_objects(tmp_path: Path, monkeypatch):
    """A project saved before the flags existed opens with every object shown and unlocked."""
    from workbench.projects import records

    v1_columns = ("image_id, local_id, class_id, instance_name, rle_h, rle_w, rle_counts, "
                  "source, model_id, prompts, score, run_key, edited, created_at, updated_at")
    params = records.object_params
    make_images(tmp_path, ["a.png"])
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
    monkeypatch.setattr(records, "_UPSERT",
                        f"INSERT INTO objects ({v1_columns}) VALUES ({', '.join('?' * 15)})")
    monkeypatch.setattr(records, "object_params", lambda *a: params(*a)[:15])
    with ProjectStore.open(tmp_path, create=True) as store:
        image_id = store.page(0, 1)[0].image_id
        store.sync_objects(image_id, [obj(image_id, 1)], [])
    monkeypatch.undo()
    conn = sqlite3.connect(tmp_path / "samwb-project.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()
    with ProjectStore.open(tmp_path) as store:
        rows = store.objects(image_id)
    assert [(r.local_id, r.hidden, r.locked) for r in rows] == [(1, False, False)]
    conn = sqlite3.connect(tmp_path / "samwb-project.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()
