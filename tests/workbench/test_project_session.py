"""A session working in a project: every change saved at once, reopened as it was
(``workbench.projects.service`` and ``link``, on the real store)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from workbench.errors import UserError
from workbench.objects import MaskResult, PromptSet, Step
from workbench.projects.service import ProjectsService, safe_file_name
from workbench.projects.store import ProjectStore
from workbench.segment.values import objects_value, status_text
from workbench.session import Session

W, H = 64, 48


def write_images(folder, n=3):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (W, H), (20 * i, 90, 160)).save(folder / f"img {i}.png")
    return folder


def disc(cx=20, cy=20, r=8):
    yy, xx = np.mgrid[:H, :W]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def click(session, mask, label=1):
    """What a decode does to the workspace: record a step with a mask on the active object."""
    prompts = session.workspace.active.prompts.with_point(20, 20, label)
    step = Step(prompts, MaskResult.from_mask(mask, 0.9, None, "test-model"))
    session.workspace = session.workspace.update(session.workspace.active.record(step))


@pytest.fixture
def service(tmp_path):
    service = ProjectsService(write_images(tmp_path / "proj"), None, tmp_path / "temp")
    yield service
    service.close()


def first_id(store):
    return store.page(0, 1)[0].image_id


def test_every_change_is_saved_when_it_is_made_and_comes_back_in_a_new_session(service):
    store = service.shared
    image_id = first_id(store)
    session = Session("a", "test-model")
    service.open_image(session, store, image_id, 10_000_000)
    assert session.image.shape == (H, W, 3) and store.entry(image_id).width == W
    assert store.objects(image_id) == []
    click(session, disc())
    rows = store.objects(image_id)
    assert len(rows) == 1 and np.array_equal(rows[0].mask(), disc())
    assert store.entry(image_id).status == "review"  # a person started on it
    session.workspace = session.workspace.new_object()
    click(session, disc(45, 25, 6))
    obj = session.workspace.active
    session.workspace = session.workspace.update(obj.renamed("right one"))
    assert sorted(r.instance_name for r in store.objects(image_id)) == ["", "right one"]
    session.workspace = session.workspace.delete(session.workspace.objects[0].object_id)
    rows = store.objects(image_id)
    assert [r.instance_name for r in rows] == ["right one"]

    again = Session("b", "test-model")  # a reload: a new page session
    assert service.last_image(store) == image_id
    service.open_image(again, store, image_id, 10_000_000)
    shown = again.workspace.with_masks()
    assert len(shown) == 1 and np.array_equal(shown[0].result.mask(), disc(45, 25, 6))
    assert shown[0].name == "right one" and again.workspace.active.is_empty
    assert "right one" in objects_value(again)["items"][0]["name"]
    assert "Saved to the project" in status_text(again, "Test")


def test_an_undo_is_a_change_too(service):
    store = service.shared
    image_id = first_id(store)
    session = Session("a", "test-model")
    service.open_image(session, store, image_id, 10_000_000)
    click(session, disc())
    click(session, disc(20, 20, 12))
    assert store.objects(image_id)[0].mask().sum() == disc(20, 20, 12).sum()
    session.workspace = session.workspace.update_active(lambda o: o.undo())
    assert store.objects(image_id)[0].mask().sum() == disc().sum()


def test_a_failed_write_is_not_silently_lost(service):
    store = service.shared
    image_id = first_id(store)
    session = Session("a", "test-model")
    service.open_image(session, store, image_id, 10_000_000)
    click(session, disc())
    store.close()  # the database goes away under the page
    click(session, disc(40, 20))
    assert session.link.problem and "Not saved" in status_text(session, "Test")
    assert session.workspace.active.result is not None  # the work stays in the page


def test_images_move_on_and_a_new_image_leaves_the_project(service):
    store = service.shared
    ids = [e.image_id for e in store.page(0, 3)]
    session = Session("a", "test-model")
    service.open_image(session, store, ids[0], 10_000_000)
    click(session, disc())
    service.open_image(session, store, ids[1], 10_000_000)
    assert session.workspace.with_masks() == [] and session.link.image_id == ids[1]
    session.set_image(np.zeros((H, W, 3), np.uint8), "other", "other.png")
    assert session.link is None
    click(session, disc())
    assert store.objects(ids[1]) == []  # an uploaded image's objects are not the project's


def test_an_unreadable_project_image_is_marked_and_explained(service, tmp_path):
    store = service.shared
    (service.shared.folder / "broken.jpg").write_text("not an image")
    store.scan()
    broken = next(e for e in store.page(0, 10) if e.path == "broken.jpg")
    with pytest.raises(UserError, match="broken.jpg could not be opened"):
        service.open_image(Session("a", "m"), store, broken.image_id, 10_000_000)
    assert store.entry(broken.image_id).error


def test_a_project_made_from_uploads_is_private_and_removed_when_the_app_stops(tmp_path):
    uploads = write_images(tmp_path / "uploads", 2)
    (uploads / "notes.txt").write_text("not an image")
    service = ProjectsService(None, None, tmp_path / "temp")
    _, store = service.create_visitor_project(sorted(uploads.iterdir()))
    try:
        assert store.count() == 2 and store.folder.is_relative_to(tmp_path / "temp")
        session = Session("a", "m")
        service.open_image(session, store, first_id(store), 10_000_000)
        click(session, disc())
        target = service.zip_project(store, tmp_path / "out")
        import zipfile

        with zipfile.ZipFile(target) as archive:
            names = set(archive.namelist())
        assert {"img 0.png", "img 1.png", "samwb-project.json",
                "samwb-project.sqlite"} <= names
        folder = store.folder
        session.release()  # the page's end: the project stays for its key (a reload)
        assert folder.exists()
    finally:
        service.close()
    assert not folder.exists()
    with pytest.raises(UserError, match="Upload some images"):
        service.create_from_uploads([uploads / "notes.txt"])


def test_a_zip_of_the_project_opens_as_the_same_project(service, tmp_path):
    store = service.shared
    session = Session("a", "test-model")
    service.open_image(session, store, first_id(store), 10_000_000)
    click(session, disc())
    target = service.zip_project(store, tmp_path / "out")
    import zipfile

    copy = tmp_path / "copy"
    with zipfile.ZipFile(target) as archive:
        archive.extractall(copy)
    with ProjectStore.open(copy) as reopened:
        rows = reopened.objects(first_id(reopened))
        assert len(rows) == 1 and np.array_equal(rows[0].mask(), disc())


def test_a_zip_of_the_project_keeps_hand_edits_as_a_layer_and_marked(service, tmp_path):
    from workbench.segment import edits

    store = service.shared
    session = Session("a", "test-model")
    service.open_image(session, store, first_id(store), 10_000_000)
    click(session, disc())
    erase = edits.Stroke(((20.5, 20.5), (40.5, 20.5)), 3.0, "erase")
    step = edits.painted(session.workspace.active.current, erase, (H, W))
    session.workspace = session.workspace.update(session.workspace.active.record(step))
    target = service.zip_project(store, tmp_path / "out")
    import zipfile

    copy = tmp_path / "copy"
    with zipfile.ZipFile(target) as archive:
        archive.extractall(copy)
    other = ProjectsService(copy, None, tmp_path / "temp2")
    try:
        again = Session("b", "test-model")
        other.open_image(again, other.shared, first_id(other.shared), 10_000_000)
        (row,) = other.shared.objects(first_id(other.shared))
        assert row.edited and row.edits is not None
        (obj,) = again.workspace.with_masks()
        np.testing.assert_array_equal(obj.result.mask(), step.result.mask())
        np.testing.assert_array_equal(obj.current.model_result.mask(), disc())
        np.testing.assert_array_equal(obj.current.edits.masks()[1],
                                      edits.stroke_mask((H, W), erase.points, 3.0))
    finally:
        other.close()


def test_folders_are_offered_by_name_only(tmp_path):
    root = tmp_path / "root"
    write_images(root / "cats")
    (root / ".hidden").mkdir()
    service = ProjectsService(None, root, tmp_path / "temp")
    try:
        assert service.folders() == ["cats"]
        assert service.open_folder("cats").count() == 3
        for bad in ("../root/cats", "/etc", ".hidden", "dogs"):
            with pytest.raises(UserError):
                service.open_folder(bad)
    finally:
        service.close()


def test_upload_names_are_made_safe():
    assert safe_file_name("../../etc/pass wd.JPG") == "pass wd.jpg"
    assert safe_file_name("a<b>|c.png") == "a_b_c.png"
    assert safe_file_name("...") == "image"


def test_prompts_survive_the_store(service):
    store = service.shared
    session = Session("a", "test-model")
    service.open_image(session, store, first_id(store), 10_000_000)
    click(session, disc())
    row = store.objects(first_id(store))[0]
    assert row.prompts == PromptSet(((20.0, 20.0),), (1,)).to_json()


def test_a_visitor_project_is_found_by_its_secret_key_only(tmp_path, monkeypatch):
    import workbench.projects.service as service_module

    uploads = write_images(tmp_path / "uploads", 2)
    service = ProjectsService(None, None, tmp_path / "temp")
    try:
        key, store = service.create_visitor_project(sorted(uploads.iterdir()))
        assert len(key) >= 24 and service.visitor_project(key) is store
        for wrong in (None, "", key[:-1] + ("A" if key[-1] != "A" else "B"), 42, [key]):
            assert service.visitor_project(wrong) is None
        assert store.folder.exists()

        monkeypatch.setattr(service_module, "MAX_VISITOR_PROJECTS", 2)
        monkeypatch.setattr(service_module, "VISITOR_PROTECT_S", 3600.0)
        second_key, second = service.create_visitor_project(sorted(uploads.iterdir()))
        with pytest.raises(UserError, match="Too many projects"):  # both in use: refused
            service.create_visitor_project(sorted(uploads.iterdir()))
        monkeypatch.setattr(service_module, "VISITOR_PROTECT_S", 0.0)
        service.visitor_project(key)  # used just now: the other is the least recently used
        third_key, third = service.create_visitor_project(sorted(uploads.iterdir()))
        assert service.visitor_project(second_key) is None and not second.folder.exists()
        assert service.visitor_project(key) is store

        monkeypatch.setattr(service_module, "VISITOR_IDLE_S", 0.0)
        assert service.visitor_project(third_key) is None  # idle too long: removed
        assert not third.folder.exists() and not store.folder.exists()
    finally:
        service.close()
