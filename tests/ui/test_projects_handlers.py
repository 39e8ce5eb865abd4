"""The Projects view's class editor (``ui.projects.handlers``): add, rename, recolour, remove,
each refusal a toast with its reason, the list shown again after each change."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from PIL import Image

from ui.projects.handlers import LISTING_SIZE, ProjectsHandlers
from workbench.config import AppConfig
from workbench.context import AppContext
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
    assert len(listed) == LISTING_SIZE and "car" in listed[5]  # the classes' HTML
    car = store.class_by_name("car")
    assert names(store)[-1] == ("car", "#112233")
    h.save_class(session, "lorry", "#445566", str(car.class_id), 0, "all", "all")
    assert names(store)[-1] == ("lorry", "#445566")
    h.remove_class(session, "", None, str(car.class_id), 0, "all", "all")
    assert [n for n, _ in names(store)] == ["object"]


def test_a_refused_class_change_is_a_toast_and_changes_nothing(page):
    h, session, store = page
    before = names(store)
    for call, args in ((h.add_class, ("object", None, None)),  # the name exists
                       (h.save_class, ("x", None, None)),  # no class picked
                       (h.remove_class, ("", None, "")),  # no class picked
                       (h.remove_class, ("", None, str(store.classes()[0].class_id)))):  # last
        with pytest.warns(UserWarning):
            result = call(session, *args, 0, "all", "all")
        assert len(result) == LISTING_SIZE and names(store) == before
