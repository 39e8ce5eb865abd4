"""The live route's behaviour (``workbench.segment.live`` and ``live_route``), with a fake model: no
torch, no browser, no timing thresholds.

The fake backend paints a disc around the last point (or fills the box), can be made to block
(``gate``) and records how many predicts ran at once, so serialisation, bounds, stale hovers and
clicks during an encode are asserted as behaviour.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest

from sam_backends import Prediction
from sam_backends.registry import Capabilities
from workbench.lanes import ServerBusyError, WorkLane
from workbench.limits import Limits
from workbench.observe import Observations
from workbench.segment.live import LiveError, LiveSegment
from workbench.session import Session, SessionRegistry

H, W = 120, 200


class FakeBackend:
    def __init__(self, model_id: str = "fake") -> None:
        self.model_id = model_id
        self.spec = SimpleNamespace(capabilities=Capabilities(), display_name="Fake")
        self.gate = threading.Event()
        self.gate.set()
        self.running = 0
        self.peak = 0
        self.calls = 0
        self._lock = threading.Lock()

    def predict(self, embedding, prompts):
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.calls += 1
        try:
            self.gate.wait(10)
            mask = np.zeros((H, W), bool)
            if prompts.box is not None:
                x0, y0, x1, y1 = (int(v) for v in prompts.box)
                mask[y0:y1, x0:x1] = True
            else:
                x, y = prompts.points[-1]
                yy, xx = np.mgrid[:H, :W]
                mask = (xx - x) ** 2 + (yy - y) ** 2 < 15 ** 2
            count = 3 if prompts.multimask else 1
            masks = np.stack([mask] * count)
            logits = np.ones((count, 256, 256), np.float32)
            return Prediction.from_masks(masks, np.linspace(0.9, 0.7, count), logits, 0.001)
        finally:
            with self._lock:
                self.running -= 1


class FakeContext:
    """The parts of ``AppContext`` the live route uses."""

    def __init__(self, max_waiting: int = 16) -> None:
        self.sessions = SessionRegistry()
        self.config = SimpleNamespace(max_points=5, shows_operator_details=True,
                                      click_rate_per_s=40.0, click_burst=80)
        self.limits = Limits(max_points=5)
        self.backends = {"fake": FakeBackend("fake"), "other": FakeBackend("other")}
        self.encoded: set[tuple[str, str]] = set()
        self.encode_gate = threading.Event()
        self.encode_gate.set()
        self.pool = SimpleNamespace(is_loaded=lambda model_id: True)
        self._lanes: dict[str, WorkLane] = {}
        self.max_waiting = max_waiting
        self.observe = Observations()  # click latencies for /metrics

    def status(self, model_id):
        return SimpleNamespace(present=True)

    def spec(self, model_id):
        return SimpleNamespace(display_name=f"Model {model_id}", capabilities=Capabilities())

    def backend(self, model_id):
        return self.backends[model_id]

    def cached(self, model_id, digest):
        return (model_id, digest) in self.encoded

    def encode(self, model_id, image, digest):
        self.encode_gate.wait(10)
        cached = (model_id, digest) in self.encoded
        self.encoded.add((model_id, digest))
        return SimpleNamespace(embedding=object(), cached=cached, seconds=0.01)

    def click_lane(self, model_id):
        return self._lanes.setdefault(model_id, WorkLane(model_id, 1, self.max_waiting))


def open_session(ctx: FakeContext, model_id: str = "fake", name: str = "a") -> Session:
    session = Session(name, model_id)
    image = np.zeros((H, W, 3), np.uint8)
    session.set_image(image, f"digest-{name}", f"{name}.png")
    ctx.sessions.track(session)
    return session


def body(session: Session, **values):
    return {"token": session.token, "gen": session.generation, **values}


def test_a_click_updates_the_session_and_answers_only_the_changed_mask():
    ctx = FakeContext()
    session = open_session(ctx)
    answer = LiveSegment(ctx).handle("point", body(session, x=50, y=60, label=1))
    assert answer["ok"] and answer["rev"] == 1
    mask = answer["object"]["mask"]
    assert mask["png"].startswith("data:image/png;base64,")
    assert 0 < mask["w"] <= W and 0 < mask["h"] <= H  # cropped to the object
    assert answer["points"] == [[50.0, 60.0, 1]]
    active = session.workspace.active
    assert active.result is not None and active.can_undo  # an undoable step, as via Gradio
    answer = LiveSegment(ctx).handle("box", body(session, box=[10, 10, 90, 70]))
    assert session.workspace.active.prompts.box == (10.0, 10.0, 90.0, 70.0)
    assert answer["box"] == [10.0, 10.0, 90.0, 70.0]
    (clicks,) = ctx.observe.latencies()  # both timed for /metrics, under the session's model
    assert (clicks.kind, clicks.model_id, clicks.count) == ("click", session.model_id, 2)


def test_another_sessions_token_or_a_guessed_id_is_refused():
    ctx = FakeContext()
    mine = open_session(ctx, name="mine")
    live = LiveSegment(ctx)
    altered = mine.token[:-1] + ("B" if mine.token.endswith("A") else "A")  # never the same
    for token in (None, "", mine.session_id, "x" * 32, altered):
        with pytest.raises(LiveError) as info:
            live.handle("point", {"token": token, "gen": mine.generation, "x": 1, "y": 1})
        assert info.value.status == 403 and info.value.code == "forbidden"
    ctx.sessions.release(mine.session_id)  # a closed tab's token stops working
    with pytest.raises(LiveError) as info:
        live.handle("point", body(mine, x=1, y=1))
    assert info.value.status == 403


def test_a_click_for_an_old_image_or_over_the_point_cap_is_refused():
    ctx = FakeContext()
    session = open_session(ctx)
    live = LiveSegment(ctx)
    with pytest.raises(LiveError) as info:
        live.handle("point", {**body(session, x=1, y=1), "gen": session.generation - 1})
    assert info.value.status == 409
    for gen in (True, float(session.generation), str(session.generation), None):
        with pytest.raises(LiveError) as info:  # 1 == True and 2 == 2.0 in Python: not here
            live.handle("point", {**body(session, x=1, y=1), "gen": gen})
        assert info.value.status == 400 and "'gen'" in str(info.value)
    for i in range(ctx.config.max_points):
        live.handle("point", body(session, x=10 + i, y=10, label=1))
    with pytest.raises(LiveError) as info:
        live.handle("point", body(session, x=5, y=5, label=1))
    assert info.value.status == 422 and "point" in str(info.value).lower()
    with pytest.raises(LiveError) as info:
        live.handle("point", body(session, x="abc", y=5))
    assert info.value.status == 422


def test_a_locked_or_hidden_object_refuses_prompts_with_what_to_do():
    ctx = FakeContext()
    session = open_session(ctx)
    live = LiveSegment(ctx)
    live.handle("point", body(session, x=50, y=60, label=1))
    before = session.workspace.active
    session.workspace = session.workspace.flag([before.object_id], locked=True)
    for op, values in (("point", {"x": 80, "y": 60, "label": 1}), ("box", {"box": [1, 1, 9, 9]})):
        with pytest.raises(LiveError) as info:
            live.handle(op, body(session, **values))
        assert (info.value.status, info.value.code, info.value.title) == (
            423, "locked", "Object locked")
        assert "is locked: unlock it" in str(info.value)
        assert info.value.body()["error"]["code"] == "locked"
    assert live.handle("hover", body(session, x=80, y=60, label=1, seq=1))["reason"] == "locked"
    assert session.workspace.active.current is before.current  # nothing recorded
    assert ctx.backends["fake"].calls == 1  # and nothing decoded
    session.workspace = session.workspace.flag([before.object_id], locked=False, hidden=True)
    with pytest.raises(LiveError) as info:
        live.handle("point", body(session, x=80, y=60, label=1))
    assert info.value.code == "hidden" and "show it" in str(info.value)
    session.workspace = session.workspace.flag([before.object_id], hidden=False)
    assert live.handle("point", body(session, x=80, y=60, label=1))["ok"]


def test_the_preview_appears_without_a_click_and_a_click_there_reuses_it():
    ctx = FakeContext()
    session = open_session(ctx)
    live = LiveSegment(ctx)
    ctx.encoded.add(("fake", session.digest))
    before = session.workspace
    answer = live.handle("hover", body(session, x=100, y=50, label=1, seq=1))
    assert answer["ok"] and not answer["stale"] and answer["object"]["mask"] is not None
    assert session.workspace is before  # a hover changes nothing
    calls = ctx.backends["fake"].calls
    click = live.handle("point", body(session, x=100, y=50, label=1))
    assert click["reused"] and ctx.backends["fake"].calls == calls  # no second decode
    assert session.workspace.active.prompts.points == ((100.0, 50.0),)


def test_a_hover_sends_a_coarser_preview_kept_out_of_the_payload_cache(monkeypatch):
    """The preview is sampled at ``HOVER_SIDE`` (here 100 for this 120 x 200 image: half the
    display's pixels a side), placed where the click's mask goes; it is not cached on the
    session, and the click on that spot sends the full display mask."""
    import base64
    import io

    from PIL import Image

    monkeypatch.setattr("workbench.segment.live.HOVER_SIDE", 100)
    ctx = FakeContext()
    session = open_session(ctx)
    live = LiveSegment(ctx)
    ctx.encoded.add(("fake", session.digest))

    def size(payload):
        data = base64.b64decode(payload["png"].split(",", 1)[1])
        return Image.open(io.BytesIO(data)).size

    hover = live.handle("hover", body(session, x=100, y=50, label=1, seq=1))["object"]["mask"]
    assert not getattr(session, "display_cache", None)
    click = live.handle("point", body(session, x=100, y=50, label=1))
    assert click["reused"]
    full = click["object"]["mask"]
    assert size(full) == (full["w"], full["h"]) == (29, 29)  # the disc, r = 15
    assert size(hover)[0] in (14, 15, 16) and hover["w"] == pytest.approx(2 * size(hover)[0])
    for key in ("x", "y", "w", "h"):
        assert abs(hover[key] - full[key]) <= 2


def test_stale_hover_requests_are_dropped_newest_wins():
    ctx = FakeContext()
    session = open_session(ctx)
    ctx.encoded.add(("fake", session.digest))
    live = LiveSegment(ctx)
    backend = ctx.backends["fake"]
    blocker = open_session(ctx, name="other-user")
    backend.gate.clear()  # another user's click holds the model
    with ThreadPoolExecutor(4) as pool:
        held = pool.submit(live.handle, "point", body(blocker, x=5, y=5, label=1))
        while backend.running == 0:
            time.sleep(0.01)
        old = pool.submit(live.handle, "hover", body(session, x=10, y=10, label=1, seq=1))
        while ctx.click_lane("fake").waiting < 1:
            time.sleep(0.01)
        new = pool.submit(live.handle, "hover", body(session, x=20, y=20, label=1, seq=2))
        while ctx.click_lane("fake").superseded < 1:  # the newer hover took the old one's place
            time.sleep(0.01)
        backend.gate.set()
        assert held.result()["ok"]
        assert old.result()["stale"] is True
        assert new.result()["stale"] is False and new.result()["seq"] == 2
    assert backend.calls == 2  # the blocker and the newest hover; the old one never decoded


def test_a_click_during_encoding_is_answered_after_it():
    ctx = FakeContext()
    session = open_session(ctx)
    live = LiveSegment(ctx)
    ctx.encode_gate.clear()  # the encode is running
    with ThreadPoolExecutor(2) as pool:
        hover = live.handle("hover", body(session, x=30, y=30, label=1, seq=1))
        assert hover["stale"] and hover["reason"] == "encoding"  # hovers never wait or encode
        click = pool.submit(live.handle, "point", body(session, x=30, y=30, label=1))
        time.sleep(0.2)
        assert not click.done()  # kept, not refused
        ctx.encode_gate.set()
        answer = click.result(10)
    assert answer["ok"] and answer["object"]["mask"] is not None
    assert session.workspace.active.result is not None


def test_decodes_are_serialised_per_model_and_bounded():
    ctx = FakeContext(max_waiting=2)
    live = LiveSegment(ctx)
    sessions = [open_session(ctx, name=f"u{i}") for i in range(6)]
    backend = ctx.backends["fake"]
    backend.gate.clear()
    with ThreadPoolExecutor(8) as pool:
        running = pool.submit(live.handle, "point", body(sessions[0], x=5, y=5, label=1))
        while backend.running == 0:
            time.sleep(0.01)
        waiting = [pool.submit(live.handle, "point", body(s, x=5, y=5, label=1))
                   for s in sessions[1:3]]
        while ctx.click_lane("fake").waiting < 2:
            time.sleep(0.01)
        with pytest.raises(LiveError) as info:  # the third waiter is refused at once
            live.handle("point", body(sessions[3], x=5, y=5, label=1))
        assert info.value.status == 503 and info.value.retry_after_s >= 1
        # another model has its own lane: not held up by this one
        other = open_session(ctx, model_id="other", name="o")
        assert live.handle("point", body(other, x=5, y=5, label=1))["ok"]
        backend.gate.set()
        assert running.result()["ok"] and all(f.result()["ok"] for f in waiting)
    assert backend.peak == 1  # never two decodes at once on one model


def test_busy_error_maps_to_503():
    from workbench.segment.live import _as_live_error

    error = _as_live_error(ServerBusyError("full", 3), operator=False)
    assert error.status == 503 and error.retry_after_s == 3


def test_route_refuses_big_bodies_bad_json_and_strangers():
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from server.live_route import MAX_BODY_BYTES, live_routes

    ctx = FakeContext()
    session = open_session(ctx)
    client = TestClient(Starlette(routes=live_routes(ctx)))
    ok = client.post("/samwb/segment/point", json=body(session, x=20, y=20, label=1))
    assert ok.status_code == 200 and ok.json()["ok"]
    stranger = client.post("/samwb/segment/point", json={"token": "z" * 32, "gen": 1, "x": 1,
                                                         "y": 1})
    assert stranger.status_code == 403 and stranger.json()["error"]["code"] == "forbidden"
    big = client.post("/samwb/segment/point", content=b"{" + b" " * MAX_BODY_BYTES + b"}",
                      headers={"content-type": "application/json"})
    assert big.status_code == 413
    bad = client.post("/samwb/segment/point", content=b"not json")
    assert bad.status_code == 400
    assert client.post("/samwb/segment/nope", json=body(session)).status_code == 404
    image = client.get(f"/samwb/segment/image/{session.token}/{session.generation}.jpg")
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    assert client.get(f"/samwb/segment/image/{'q' * 32}/1.jpg").status_code == 403
    coco = client.get(f"/samwb/segment/file/{session.token}/{session.generation}/a_coco.json")
    assert coco.status_code == 200 and coco.json()["annotations"]
    files = f"/samwb/segment/file/{session.token}/{session.generation}/"
    mask = client.get(files + "a_object1_mask.png")
    assert mask.status_code == 200 and mask.content[:4] == b"\x89PNG"
    whole = client.get(files + "a_object1_cutout.png")
    cropped = client.get(files + "a_object1_cutout.png?crop=1")
    assert len(cropped.content) < len(whole.content)
    assert client.get(files + "../etc_coco.json").status_code == 404
    assert client.get(files + "b_coco.json").status_code == 404  # another image's name
    # an object a person named: its files say so, and serve the same mask
    from workbench.segment.downloads import downloads_value

    session.workspace = session.workspace.update_active(lambda o: o.renamed("red car"))
    names = [item["name"] for item in downloads_value(session)["items"]]
    assert "a_object1-red_car_mask.png" in names and "a_object1-red_car_cutout.png" in names
    named = client.get(files + "a_object1-red_car_mask.png")
    assert named.status_code == 200 and named.content == mask.content
    assert client.get(files + "a_object1-red/car_mask.png").status_code == 404


def test_a_hover_flood_with_a_constant_seq_keeps_one_waiting_and_never_refuses_another_page():
    ctx = FakeContext(max_waiting=3)
    flood, polite, blocker = (open_session(ctx, name=n) for n in ("flood", "polite", "blocker"))
    for s in (flood, polite):
        ctx.encoded.add(("fake", s.digest))
    live = LiveSegment(ctx)
    backend = ctx.backends["fake"]
    backend.gate.clear()  # a third page's click holds the model
    lane = ctx.click_lane("fake")
    with ThreadPoolExecutor(8) as pool:
        held = pool.submit(live.handle, "point", body(blocker, x=5, y=5, label=1))
        while backend.running == 0:
            time.sleep(0.01)
        hovers = []
        for i in range(6):  # the same seq every time: "older than the newest" never drops them
            hovers.append(pool.submit(live.handle, "hover",
                                      body(flood, x=10 + i, y=10, label=1, seq=7)))
            while lane.waiting + lane.superseded < i + 1:
                time.sleep(0.01)
        assert lane.waiting == 1 and lane.superseded == 5  # one flood hover waits, not six
        click = pool.submit(live.handle, "point", body(polite, x=50, y=50, label=1))
        while lane.waiting < 2:
            time.sleep(0.01)
        backend.gate.set()
        assert held.result()["ok"] and click.result()["ok"]  # never refused with 503
        answers = [h.result() for h in hovers]
    assert [a["stale"] for a in answers] == [True] * 5 + [False]
    assert backend.calls == 3  # the blocker, the polite click, the newest hover


def test_a_polite_page_never_reaches_the_default_address_limit():
    """The page paces hovers (``HOVER_INTERVAL_MS`` in canvas_input.js) below the route's
    default per-address rate: a minute of continuous hovering plus a click a second is never
    refused (a fake clock: no sleeping)."""
    import re
    from pathlib import Path

    from server.live_route import click_limiter
    from workbench.config import AppConfig

    script = (Path(__file__).resolve().parents[2] / "ui/widgets/canvas_input.js").read_text()
    interval_ms = int(re.search(r"HOVER_INTERVAL_MS = (\d+);", script).group(1))
    now = [0.0]
    limiter = click_limiter(AppConfig(models=("grabcut",), default_model="grabcut"))
    limiter._clock = lambda: now[0]
    refused = 0
    for step in range(60_000 // interval_ms):
        now[0] = step * interval_ms / 1000
        refused += limiter.take("203.0.113.7") is not None  # a hover
        if step % (1000 // interval_ms) == 0:
            refused += limiter.take("203.0.113.7") is not None  # and a click a second
    assert refused == 0
    for _ in range(200):  # a flood from the same address is refused, with a time to wait
        wait = limiter.take("203.0.113.7")
    assert wait is not None and wait >= 1
    assert limiter.take("198.51.100.1") is None  # another address is not


def test_the_route_answers_an_address_over_its_rate_with_429_and_retry_after():
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from server.live_route import live_routes

    ctx = FakeContext()
    ctx.config.click_rate_per_s, ctx.config.click_burst = 0.01, 3  # a token per 100 s
    session = open_session(ctx)
    client = TestClient(Starlette(routes=live_routes(ctx)))
    answers = [client.post("/samwb/segment/hover", json=body(session, x=20, y=20, label=1,
                                                                  seq=i)) for i in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert "Retry in" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1


class LazyBackend(FakeBackend):
    """Like ``FakeBackend``, with its candidates made on demand as the SAM backends do (only
    the best one at once), counting what its mask source made."""

    def __init__(self, model_id: str = "fake") -> None:
        super().__init__(model_id)
        self.made: list[int] = []

    def predict(self, embedding, prompts):
        made = super().predict(embedding, prompts)

        def source(index):
            self.made.append(index)
            return made.masks[index]

        best = made.best_index
        return Prediction(made.scores, made.low_res_logits, made.decode_seconds, source,
                          {best: made.masks[best]})


def test_a_clicks_other_candidates_are_made_after_its_answer_and_before_the_next():
    """``handle_then``: the answer comes with the best candidate made and the two others left;
    the follow-up makes them (the route runs it once the answer is sent; ``handle`` before
    returning), so no kept step refers to the model for long. A hover leaves nothing."""
    ctx = FakeContext()
    backend = ctx.backends["fake"] = LazyBackend()
    session = open_session(ctx)
    live = LiveSegment(ctx)
    answer, later = live.handle_then("point", body(session, x=50, y=60, label=1))
    candidates = session.workspace.active.current.candidates
    assert answer["ok"] and len(candidates) == 3
    assert [c.packed.made for c in candidates] == [True, False, False] and backend.made == []
    later()
    assert all(c.packed.made for c in candidates) and sorted(backend.made) == [1, 2]
    ctx.encoded.add(("fake", session.digest))
    hover, nothing = live.handle_then("hover", body(session, x=20, y=20, label=1, seq=1))
    assert hover["ok"] and nothing() is None
    session.workspace = session.workspace.new_object()
    live.handle("point", body(session, x=10, y=10, label=1))  # a new object's first click
    candidates = session.workspace.active.current.candidates
    assert len(candidates) == 3 and all(c.packed.made for c in candidates)


def test_the_route_makes_the_other_candidates_once_the_answer_is_sent():
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from server.live_route import live_routes

    ctx = FakeContext()
    ctx.backends["fake"] = LazyBackend()
    session = open_session(ctx)
    client = TestClient(Starlette(routes=live_routes(ctx)))
    response = client.post("/samwb/segment/point", json=body(session, x=50, y=60, label=1))
    assert response.status_code == 200 and response.json()["ok"]
    candidates = session.workspace.active.current.candidates
    assert len(candidates) == 3 and all(c.packed.made for c in candidates)
