"""The object list's value at many objects: groups with counts, search text, flags, colours;
and the canvas leaving hidden objects out (``workbench.segment.values``)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from workbench.drawing import SPEC, hex_colour
from workbench.objects import MaskResult, SegObject, Step, Workspace
from workbench.projects.service import ProjectsService
from workbench.segment.values import canvas_value, objects_value
from workbench.session import Session


def masked(object_id: int, **kw) -> SegObject:
    mask = np.zeros((60, 100), bool)
    mask[object_id % 50: object_id % 50 + 5, 10:20] = True
    return SegObject(object_id, (Step(result=MaskResult.from_mask(mask, 0.9, None, "m")),),
                     **kw)


def session_with(objects: tuple[SegObject, ...]) -> Session:
    session = Session("s", "grabcut")
    session.set_image(np.full((60, 100, 3), 90, np.uint8), "digest", "a.png")
    session.workspace = Workspace(objects, objects[0].object_id,
                                  max(o.object_id for o in objects) + 1)
    return session


def test_without_a_project_objects_group_by_name_with_counts_and_unnamed_together():
    names = ["car", "Car ", "person", "", "car", ""]  # names as "Keep all" gives them
    objects = tuple(masked(i + 1, name=n) for i, n in enumerate(names))
    session = session_with(objects)
    session.workspace = session.workspace.flag([2], hidden=True).flag([3], locked=True)
    value = objects_value(session)
    groups = [(g["key"], g["label"], g["count"], g["hidden"]) for g in value["groups"]]
    assert groups == [("name:car", "car", 3, 1), ("name:person", "person", 1, 0),
                      ("name:", "Unnamed", 2, 0)]
    rows = {r["id"]: r for r in value["items"]}
    assert rows[2]["hidden"] and not rows[2]["locked"] and rows[3]["locked"]
    assert rows[2]["group"] == "name:car" and rows[4]["group"] == "name:"
    assert rows[3]["search"] == "person person" and rows[4]["search"] == "object 4 "
    assert [r["color"] for r in value["items"]] == [SPEC.hex_for(i) for i in range(1, 7)]
    assert value["classes"] == []


def test_two_hundred_objects_make_one_row_each_and_distinct_colours():
    session = session_with(tuple(masked(i, name="car") for i in range(1, 201)))
    value = objects_value(session)
    assert len(value["items"]) == 200 and value["groups"][0]["count"] == 200
    assert len({r["color"] for r in value["items"]}) == 200


def test_the_canvas_leaves_hidden_objects_and_a_hidden_active_ones_prompts_out():
    session = session_with(tuple(masked(i) for i in (1, 2, 3)))
    session.workspace = session.workspace.flag([1, 3], hidden=True)
    canvas = canvas_value(session)
    assert [o["id"] for o in canvas["objects"]] == [2]
    assert canvas["points"] == [] and "is hidden: show it" in canvas["hint"]
    session.workspace = session.workspace.flag([1], hidden=False, locked=True)
    assert "is locked: unlock it" in canvas_value(session)["hint"]


@pytest.fixture
def project_session(tmp_path):
    folder = tmp_path / "proj"
    folder.mkdir()
    Image.new("RGB", (100, 60), (20, 90, 160)).save(folder / "a.png")
    service = ProjectsService(folder, None, tmp_path / "temp")
    store = service.shared
    store.add_class("car")
    store.add_class("person <b>")
    session = Session("a", "grabcut")
    service.open_image(session, store, store.page(0, 1)[0].image_id, 10_000_000)
    yield session, store
    service.close()


def test_in_a_project_objects_group_by_class_in_the_projects_order(project_session):
    session, store = project_session
    classes = {c.name: c for c in store.classes()}
    car, person = classes["car"].class_id, classes["person <b>"].class_id
    objects = (masked(1, class_id=person), masked(2, class_id=car, name="left"),
               masked(3, class_id=car))
    session.workspace = Workspace(objects, 1, 4, car)
    value = objects_value(session)
    keys = [g["key"] for g in value["groups"]]
    assert keys == [f"class:{car}", f"class:{person}"]  # "object" (no objects) is not listed
    assert value["groups"][1]["label"] == "person &lt;b&gt;"
    assert value["groups"][0]["color"] == classes["car"].color
    rows = {r["id"]: r for r in value["items"]}
    assert rows[2]["name"] == "car · left" and rows[3]["name"] == "car 3"
    assert "car" in rows[2]["search"] and "left" in rows[2]["search"]
    family = hex_colour(classes["car"].color)
    assert rows[2]["color"] == SPEC.hex_for(2, family)  # the class's hue family
    canvas = canvas_value(session)
    assert {o["id"]: o["color"] for o in canvas["objects"]}[3] == SPEC.hex_for(3, family)
    assert canvas["hint"].startswith("person &lt;b&gt; 1:")  # named as the list names it
    assert {c["name"] for c in value["classes"]} == {"object", "car", "person &lt;b&gt;"}
