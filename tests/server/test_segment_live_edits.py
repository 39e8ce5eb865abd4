"""The live route's edit operations (``paint``, ``polygon``, ``outline``) with the fake model of
``test_segment_live``: answers, what a later click does to the edits, undo, and refusals."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from test_segment_live import FakeContext, H, W, body, open_session

from workbench.lanes import WorkLane
from workbench.segment import edits
from workbench.segment.live import LiveError, LiveSegment


def disc(x, y, r=15):
    yy, xx = np.mgrid[:H, :W]
    return (xx - x) ** 2 + (yy - y) ** 2 < r ** 2  # the fake backend's mask for a point


def shown(session) -> np.ndarray:
    return session.workspace.active.result.mask()


def payload_pixels(answer) -> np.ndarray:
    """The answer's 1-bit PNG placed in a display-size frame (here display = image size)."""
    mask = answer["object"]["mask"]
    png = base64.b64decode(mask["png"].split(",", 1)[1])
    crop = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))[:, :, 3] > 0
    out = np.zeros((H, W), bool)
    out[mask["y"]:mask["y"] + mask["h"], mask["x"]:mask["x"] + mask["w"]] = crop
    return out


def test_paint_and_erase_record_steps_and_answer_the_new_mask():
    ctx = FakeContext()
    session = open_session(ctx)
    live = LiveSegment(ctx)
    live.handle("point", body(session, x=50, y=60, label=1))
    stroke = [[120.5, 30.5], [160.5, 30.5]]
    answer = live.handle("paint", body(session, points=stroke, radius=4, mode="add"))
    added = edits.stroke_mask((H, W), [tuple(p) for p in stroke], 4)
    expected = disc(50, 60) | added
    np.testing.assert_array_equal(shown(session), expected)
    np.testing.assert_array_equal(payload_pixels(answer), expected)
    assert answer["ok"] and answer["rev"] == 2 and answer["points"] == [[50, 60, 1]]
    assert "keeps your edits" in answer["hint"]
    answer = live.handle("paint", body(session, points=[[50.5, 60.5]], radius=5, mode="erase"))
    erased = edits.stroke_mask((H, W), [(50.5, 60.5)], 5)
    np.testing.assert_array_equal(shown(session), expected & ~erased)
    assert len(session.workspace.active.history) == 4  # empty, click, brush, eraser
    assert ctx.backends["fake"].calls == 1  # the click's; an edit decodes nothing


def test_a_click_after_edits_re_predicts_and_keeps_the_edits_on_top():
    ctx = FakeContext()
    session = open_session(ctx)
    live = LiveSegment(ctx)
    live.handle("point", body(session, x=50, y=60, label=1))
    live.handle("paint", body(session, points=[[150.5, 30.5]], radius=6, mode="add"))
    live.handle("paint", body(session, points=[[100.5, 60.5]], radius=6, mode="erase"))
    add = edits.stroke_mask((H, W), [(150.5, 30.5)], 6)
    remove = edits.stroke_mask((H, W), [(100.5, 60.5)], 6)
    live.handle("point", body(session, x=95, y=60, label=1))  # the model moves its disc here
    np.testing.assert_array_equal(shown(session), (disc(95, 60) | add) & ~remove)
    step = session.workspace.active.current
    np.testing.assert_array_equal(step.model_result.mask(), disc(95, 60))
    # undo steps back through the click and the edits alike
    obj = session.workspace.active.undo()
    np.testing.assert_array_equal(obj.result.mask(), (disc(50, 60) | add) & ~remove)
    np.testing.assert_array_equal(obj.undo().undo().result.mask(), disc(50, 60))


def test_outline_then_polygon_round_trip_and_a_moved_vertex():
    ctx = FakeContext()
    session = open_session(ctx)
    live = LiveSegment(ctx)
    live.handle("box", body(session, box=[20, 30, 80, 90]))
    outline = live.handle("outline", body(session))
    assert outline["object"] == 1 and len(outline["rings"]) == 1
    ring = outline["rings"][0]["points"]
    assert sorted(ring) == [[20.5, 30.5], [20.5, 89.5], [79.5, 30.5], [79.5, 89.5]]
    assert len(session.workspace.active.history) == 2  # outline changes nothing
    live.handle("polygon", body(session, rings=[ring]))
    box = np.zeros((H, W), bool)
    box[30:90, 20:80] = True
    np.testing.assert_array_equal(shown(session), box)
    moved = [[120.5, 30.5] if p == [79.5, 30.5] else p for p in ring]
    answer = live.handle("polygon", body(session, rings=[moved]))
    expected = edits.polygon_mask((H, W), [[tuple(p) for p in moved]])
    np.testing.assert_array_equal(shown(session), expected)
    np.testing.assert_array_equal(payload_pixels(answer), expected)
    assert live.handle("outline", body(session))["rings"][0]["points"]


def test_edit_refusals_say_what_to_do():
    ctx = FakeContext()
    session = open_session(ctx)
    live = LiveSegment(ctx)
    cases = [("paint", {"points": [[1, 2]], "radius": 0}, "radius"),
             ("paint", {"points": [], "radius": 3}, "point"),
             ("paint", {"points": [[1, 2]] * 5000, "radius": 3}, "shorter strokes"),
             ("paint", {"points": [[1, 2]], "radius": 3, "mode": "smudge"}, "erase"),
             ("polygon", {"rings": "nope"}, "rings")]
    for op, values, words in cases:
        with pytest.raises(LiveError) as info:
            live.handle(op, body(session, **values))
        assert info.value.status == 422 and info.value.code == "bad_edit", op
        assert words in str(info.value)
    with pytest.raises(LiveError) as info:
        live.handle("paint", {"token": session.token, "gen": session.generation + 1,
                              "points": [[1, 2]], "radius": 3})
    assert info.value.status == 409
    with pytest.raises(LiveError) as info:
        live.handle("outline", {"token": "guess", "gen": 0})
    assert info.value.status == 403
    assert len(session.workspace.active.history) == 1  # nothing was recorded


def test_edits_wait_in_the_click_lane_and_are_refused_when_it_is_full():
    ctx = FakeContext()
    session = open_session(ctx)
    ctx._lanes["fake"] = WorkLane("fake", 1, 0)  # no room to wait
    lane = ctx.click_lane("fake")
    with lane.admit(client="someone else"):
        with pytest.raises(LiveError) as info:
            LiveSegment(ctx).handle("paint", body(session, points=[[5, 5]], radius=3))
    assert info.value.status == 503


def test_the_route_takes_a_long_stroke_but_not_a_long_click():
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from server.live_route import EDIT_BODY_BYTES, MAX_BODY_BYTES, live_routes

    ctx = FakeContext()
    session = open_session(ctx)
    client = TestClient(Starlette(routes=live_routes(ctx)))
    points = [[10.25 + i * 0.05, 20.75] for i in range(1500)]
    data = body(session, points=points, radius=3, mode="add")
    answer = client.post("/samwb/segment/paint", json=data)
    assert MAX_BODY_BYTES < len(answer.request.content) < EDIT_BODY_BYTES
    assert answer.status_code == 200 and answer.json()["ok"]
    click = client.post("/samwb/segment/point", json={**data, "x": 5, "y": 5})
    assert click.status_code == 413


def test_painting_an_empty_object_needs_no_model_and_says_so():
    ctx = FakeContext()
    session = open_session(ctx)
    answer = LiveSegment(ctx).handle("paint", body(session, points=[[30.5, 40.5]], radius=2))
    assert "painted by hand" in answer["hint"] and answer["points"] == []
    assert shown(session).sum() == 13 and ctx.backends["fake"].calls == 0
    assert session.workspace.active.result.model_id == "hand"


def test_hand_edits_survive_a_restart_of_a_project_and_the_next_click_keeps_them(tmp_path):
    """Edit, save (at once, as every change), stop the app, reopen the image through the
    project service, click: the model's new mask with the same add/remove on top, pixel for
    pixel; the row and a COCO export (read back with pycocotools) hold that mask."""
    import json

    from pycocotools import mask as mask_utils

    from workbench.projects.service import ProjectsService
    from workbench.projects.transfer import export_store
    from workbench.session import Session

    folder = tmp_path / "proj"
    folder.mkdir()
    Image.new("RGB", (W, H), (40, 90, 160)).save(folder / "street.png")
    add = edits.stroke_mask((H, W), [(150.5, 30.5)], 6)
    remove = (edits.stroke_mask((H, W), [(100.5, 60.5)], 6)  # outside the first mask
              | edits.stroke_mask((H, W), [(50.5, 60.5)], 4))

    def open_image(service, ctx, name):
        store = service.shared
        session = Session(name, "fake")
        service.open_image(session, store, store.page(0, 1)[0].image_id, 10_000_000)
        ctx.sessions.track(session)
        return session

    service = ProjectsService(folder, None, tmp_path / "temp")
    ctx = FakeContext()
    session = open_image(service, ctx, "a")
    live = LiveSegment(ctx)
    live.handle("point", body(session, x=50, y=60, label=1))
    live.handle("paint", body(session, points=[[150.5, 30.5]], radius=6, mode="add"))
    live.handle("paint", body(session, points=[[100.5, 60.5]], radius=6, mode="erase"))
    live.handle("paint", body(session, points=[[50.5, 60.5]], radius=4, mode="erase"))
    np.testing.assert_array_equal(shown(session), (disc(50, 60) | add) & ~remove)
    service.close()  # the app stops; a new one starts

    service = ProjectsService(folder, None, tmp_path / "temp")
    try:
        ctx = FakeContext()
        again = open_image(service, ctx, "b")
        obj = again.workspace.with_masks()[0]
        again.workspace = again.workspace.select(obj.object_id)
        live = LiveSegment(ctx)
        live.handle("point", body(again, x=95, y=60, label=1))
        expected = (disc(95, 60) | add) & ~remove
        np.testing.assert_array_equal(shown(again), expected)
        np.testing.assert_array_equal(again.workspace.active.current.model_result.mask(),
                                      disc(95, 60))
        assert again.workspace.active.prompts.points == ((50.0, 60.0), (95.0, 60.0))

        store = service.shared
        (row,) = store.objects(store.page(0, 1)[0].image_id)
        assert row.edited and row.edits is not None
        np.testing.assert_array_equal(row.mask(), expected)
        export_store(store, "coco", tmp_path / "coco")
        document = json.loads((tmp_path / "coco" / "annotations.json").read_text())
        (annotation,) = document["annotations"]
        rle = annotation["segmentation"]
        rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
        np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), expected)
        assert annotation["area"] == int(expected.sum())
    finally:
        service.close()
