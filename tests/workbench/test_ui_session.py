"""Per-user sessions (release, registry bound) and what the view shows for a session."""

from __future__ import annotations

import numpy as np
import pytest

from ui.sessions import unload_handler
from workbench.objects import MaskResult, PromptSet, Step
from workbench.segment.values import (
    build_view,
    candidates_value,
    canvas_value,
    objects_value,
    status_text,
)
from workbench.session import Session, SessionRegistry, SessionsFullError


def with_mask(session: Session, score: float = 0.8) -> Session:
    mask = np.zeros(session.image.shape[:2], bool)
    mask[10:30, 20:60] = True
    result = MaskResult.from_mask(mask, score, None, session.model_id)
    step = Step(PromptSet().with_point(40, 20, 1).with_box((20, 10, 60, 30)), result)
    session.workspace = session.workspace.update_active(lambda o: o.record(step))
    return session


def new_session(name: str = "cat <b>.png") -> Session:
    session = Session("s1", "grabcut")
    image = np.full((60, 100, 3), 90, np.uint8)
    session.set_image(image, "digest", name)
    return session


def test_set_image_resets_work_and_release_drops_everything():
    session = with_mask(new_session())
    assert session.workspace.with_masks()
    export = session.export_dir()
    (export / "f.png").write_bytes(b"x")
    generation = session.generation
    session.set_image(np.zeros((5, 5, 3), np.uint8), "d2", "other.png")
    assert session.generation == generation + 1 and not session.workspace.with_masks()
    assert not session.image.flags.writeable
    session.release()
    assert session.image is None and session.released and not export.exists()


class Clock:
    """A hand-moved clock for the registry's notion of "active lately"."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_registry_releases_on_request_and_beyond_capacity():
    clock = Clock()
    registry = SessionRegistry(capacity=2, clock=clock)
    sessions = [new_session() for _ in range(3)]
    for i, s in enumerate(sessions):
        s.session_id = f"id{i}"
        registry.track(s)
        clock.now += 600  # each is idle long enough to be evictable when the next comes
    assert len(registry) == 2 and "id0" not in registry and sessions[0].released
    assert registry.release("id1") and sessions[1].released and "id1" not in registry
    assert not registry.release("id1")
    assert not sessions[2].released


def test_unload_handler_frees_the_closing_tabs_session_of_its_view():
    import types

    from gradio.helpers import special_args

    registry = SessionRegistry()
    for session_id in ("tab", "tab-video"):
        session = new_session()
        session.session_id = session_id
        registry.track(session)
    handler = unload_handler(registry, "-video")
    # Gradio hands the handler its request (it finds the parameter by its gr.Request type)
    request = types.SimpleNamespace(session_hash="tab", headers={}, query_params={})
    inputs, *_ = special_args(handler, [], request=request)
    assert [getattr(given, "session_hash", None) for given in inputs] == ["tab"]
    handler(*inputs)
    assert "tab-video" not in registry and "tab" in registry
    unload_handler(registry)(types.SimpleNamespace(session_hash="tab"))
    assert len(registry) == 0


def test_views_of_a_session_with_one_mask():
    session = with_mask(new_session())
    canvas = canvas_value(session)
    assert canvas["w"] == 100 and canvas["h"] == 60
    assert canvas["src"].startswith("data:image/jpeg;base64,")
    assert canvas["points"] == [[40.0, 20.0, 1]] and canvas["box"] == [20.0, 10.0, 60.0, 30.0]
    assert "&lt;b&gt;" in canvas["alt"]  # the file name is escaped
    assert "colour separation 0.80" in canvas["hint"]  # GrabCut's score is not an IoU
    assert canvas_value(session)["n"] == canvas["n"] + 1  # always a new value: re-render
    rows = objects_value(session)["items"]
    assert rows == [{"id": 1, "name": "Object 1", "color": rows[0]["color"],
                     "meta": "13.3% · colour separation 0.80", "active": True,
                     "hidden": False, "locked": False, "group": "name:",
                     "search": "object 1 "}]
    assert candidates_value(session) == {"items": []}
    view = build_view(session, "GrabCut")
    assert view.can_undo and not view.can_redo and view.can_clear
    assert status_text(session, "GrabCut").startswith("Model: **GrabCut**")


def test_views_without_image_and_with_candidates():
    empty = Session("s", "grabcut")
    assert "src" not in canvas_value(empty) and objects_value(empty) == {"items": []}
    assert not build_view(empty, "x").can_undo
    session = new_session()
    masks = [np.eye(60, 100, k=k, dtype=bool) for k in range(3)]
    results = tuple(MaskResult.from_mask(m, 0.3 + i / 10, None, "grabcut")
                    for i, m in enumerate(masks))
    step = Step(PromptSet().with_point(5, 5, 1), results[2], results, 2)
    session.workspace = session.workspace.update_active(lambda o: o.record(step))
    value = candidates_value(session)
    assert [i["chosen"] for i in value["items"]] == [False, False, True]
    assert value["items"][2]["label"] == "colour separation 0.50 · shown"
    session.timings.update(encode_s=1.234, cached=False, decode_s=0.0456)
    # GrabCut encodes nothing, so its status never claims an encode
    assert status_text(session, "M") == "Model: **M** · last mask in 46 ms."
    session.model_id = "sam2.1-tiny"
    assert status_text(session, "M") == ("Model: **M** · image encoded in 1.23 s · "
                                         "last mask in 46 ms.")


def named_session(name: str):
    session = new_session()
    session.session_id = name
    return session


def test_a_session_in_use_is_never_evicted_a_newcomer_is_refused_instead():
    clock = Clock()
    registry = SessionRegistry(capacity=2, protect_s=300, clock=clock)
    working, idle = named_session("working"), named_session("idle")
    registry.track(working)
    registry.track(idle)
    clock.now += 200
    with pytest.raises(SessionsFullError, match="in use"):
        registry.track(named_session("flood-1"))
    assert "working" in registry and "idle" in registry and not working.released
    clock.now += 200  # idle for 400 s now; working clicks all the while
    assert registry.by_token(working.token) is working
    registry.track(named_session("newcomer"))
    assert "idle" not in registry and idle.released
    assert "working" in registry and not working.released


def test_activity_refreshes_a_sessions_place():
    clock = Clock()
    registry = SessionRegistry(capacity=2, protect_s=300, clock=clock)
    first, second = named_session("first"), named_session("second")
    registry.track(first)
    registry.track(second)
    clock.now += 400
    registry.touch("first")  # first is in use again; second stays idle
    registry.track(named_session("third"))
    assert "first" in registry and "second" not in registry


def test_new_sessions_are_rate_limited_per_address_not_for_everyone():
    clock = Clock()
    registry = SessionRegistry(capacity=500, new_per_minute=3, clock=clock)
    for i in range(3):
        registry.track(named_session(f"a{i}"), address="10.0.0.9")
    with pytest.raises(SessionsFullError, match="Too many new pages") as refused:
        registry.track(named_session("a3"), address="10.0.0.9")
    assert 1 <= refused.value.retry_after_s <= 61
    registry.track(named_session("b0"), address="127.0.0.2")  # another address is not held up
    registry.track(named_session("a0"), address="10.0.0.9")  # a known session is no new one
    clock.now += 61
    registry.track(named_session("a4"), address="10.0.0.9")
    assert len(registry) == 5
