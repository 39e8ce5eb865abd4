"""The Projects view's class editor (``ui.projects.handlers``): add, rename, recolour, remove,
each refusal a toast with its reason, the list shown again after each change, and the editor's
name and colour following the class picked (never a colour picker with no colour)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from PIL import Image

from ui.projects.handlers import CLASS_FORM_SIZE, LISTING_SIZE, ProjectsHandlers
from workbench.config import AppConfig
from workbench.context import AppContext
from workbench.projects.model import default_color
from workbench.projects.store import ProjectStore
from workbench.session import Session


@pytest.fixture
def page(tmp_path):
    Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
    ctx = AppContext(AppConfig(models=("grabcut",), default_model="grabcut", examples_dir=None,
                               temp_dir=tmp_path / "temp"))
    store = ProjectStore.open(tmp_path, create=True)
    session = Session("s", "grabcut")
    session.project = store
    handlers = ProjectsHandlers(ctx, SimpleNamespace(project=None, handlers=None))
    yield handlers, session, store
    store.close()
    ctx.close()


def names(store):
    return [(c.name, c.color) for c in store.classes()]


def test_classes_are_added_changed_and_removed_and_the_list_follows(page):
    h, session, store = page
    listed = h.add_class(session, "car", "#112233", None, 0, "all", "all")
    assert len(listed) == LISTING_SIZE + CLASS_FORM_SIZE and "car" in listed[5]  # classes' HTML
    car = store.class_by_name("car")
    assert names(store)[-1] == ("car", "#112233")
    assert listed[7]["value"] is None and listed[-2:] == ("", default_color(2))  # blank again
    saved = h.save_class(session, "lorry", "#445566", str(car.class_id), 0, "all", "all")
    assert names(store)[-1] == ("lorry", "#445566")
    assert saved[7]["value"] == str(car.class_id) and saved[-2:] == ("lorry", "#445566")
    assert ("lorry", str(car.class_id)) in saved[7]["choices"]
    removed = h.remove_class(session, "", None, str(car.class_id), 0, "all", "all")
    assert [n for n, _ in names(store)] == ["object"]
    assert removed[7]["value"] is None and removed[-2:] == ("", default_color(2))


def test_the_editor_shows_the_picked_class_or_the_colour_a_new_one_gets(page):
    h, session, store = page
    first = store.classes()[0]
    assert h.class_form(session, str(first.class_id)) == ("object", first.color)
    assert h.class_form(session, None) == ("", default_color(1))  # the next class's colour
    added = store.add_class("car")
    assert added.color == default_color(1)  # what the editor showed is what Add gives
    assert h.class_form(session, "") == ("", default_color(2))
    assert h.class_form(session, "999") == ("", default_color(2))  # a class gone meanwhile
    store.update_class(added.class_id, color="#abcdef")
    assert h.class_form(session, str(added.class_id)) == ("car", "#abcdef")


def test_a_refused_class_change_is_a_toast_and_changes_nothing(page):
    h, session, store = page
    before = names(store)
    for call, args in ((h.add_class, ("object", None, None)),  # the name exists
                       (h.save_class, ("x", None, None)),  # no class picked
                       (h.remove_class, ("", None, "")),  # no class picked
                       (h.remove_class, ("", None, str(store.classes()[0].class_id)))):  # last
        with pytest.warns(UserWarning):
            result = call(session, *args, 0, "all", "all")
        assert len(result) == LISTING_SIZE + CLASS_FORM_SIZE and names(store) == before
