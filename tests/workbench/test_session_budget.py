"""Page sessions under a byte bound: each reports its bytes; beyond the bound undo history goes
first, then idle sessions (least recently used first), never an active one."""

from __future__ import annotations

import numpy as np

from workbench.objects import MaskResult, PromptSet, Step
from workbench.session import PROTECT_S, Session, SessionRegistry

H, W = 120, 160
IMAGE_BYTES = H * W * 3
STEP_BYTES = H * W // 8 + 256 * 256 * 4  # one bit-packed mask and its low-res logits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def session_with_history(session_id: str, steps: int) -> Session:
    session = Session(session_id, "grabcut")
    session.set_image(np.full((H, W, 3), 7, np.uint8), f"d-{session_id}", "x.png")
    for n in range(steps):
        mask = np.zeros((H, W), bool)
        mask[10:20 + n, 10:40] = True
        logits = np.full((256, 256), float(n), np.float32)
        step = Step(PromptSet().with_point(12, 12 + n, 1), MaskResult.from_mask(
            mask, 0.9, logits, "grabcut"))
        session.workspace = session.workspace.update_active(lambda o, s=step: o.record(s))
    return session


def test_a_session_reports_its_image_masks_and_history():
    empty = Session("e", "grabcut")
    assert empty.nbytes() == 0
    session = session_with_history("a", 5)
    assert session.nbytes() == IMAGE_BYTES + 5 * STEP_BYTES
    current = session.workspace.active.result
    assert session.drop_history() == 4 * STEP_BYTES
    assert session.nbytes() == IMAGE_BYTES + STEP_BYTES
    assert session.workspace.active.result is current  # the object itself is unchanged
    assert not session.workspace.active.can_undo


def test_over_the_bound_history_goes_before_any_session():
    clock = Clock()
    registry = SessionRegistry(capacity=10, clock=clock, max_bytes=3 * IMAGE_BYTES + 8 * STEP_BYTES)
    sessions = [session_with_history(name, 6) for name in "abc"]
    for session in sessions:
        registry.track(session)
    assert registry.ids() == ["a", "b", "c"]  # all kept: history dropped, least recent first
    stats = registry.stats()
    assert stats.bytes <= registry.max_bytes and stats.history_drops == 2
    assert stats.budget_releases == 0
    assert sessions[0].nbytes() == IMAGE_BYTES + STEP_BYTES  # the oldest lost its history
    assert sessions[2].workspace.active.can_undo  # the newest kept its own


def test_then_idle_sessions_go_least_recently_used_first_never_an_active_one():
    clock = Clock()
    one = IMAGE_BYTES + STEP_BYTES
    registry = SessionRegistry(capacity=10, clock=clock, max_bytes=2 * one)
    a, b = session_with_history("a", 1), session_with_history("b", 1)
    registry.track(a)
    registry.track(b)
    clock.now += PROTECT_S + 1  # a and b are idle now
    registry.touch("b")  # b is used again: active
    c = session_with_history("c", 1)
    registry.track(c)
    assert registry.ids() == ["b", "c"] and a.released and not b.released
    assert registry.stats().budget_releases == 1
    d = session_with_history("d", 1)
    registry.track(d)  # every other session is active: all kept, over the bound
    assert registry.ids() == ["b", "c", "d"] and not b.released
    assert registry.stats().over_budget >= 1


def test_without_a_bound_nothing_is_dropped():
    registry = SessionRegistry(capacity=10)
    session = session_with_history("a", 4)
    registry.track(session)
    assert registry.stats().bytes == session.nbytes() and session.workspace.active.can_undo


def test_a_session_held_by_a_request_keeps_its_history_and_the_check_does_not_wait():
    import threading

    session = session_with_history("a", 3)
    held, done = threading.Event(), threading.Event()

    def request() -> None:
        with session.lock:
            held.set()
            done.wait(10)

    worker = threading.Thread(target=request)
    worker.start()
    held.wait(10)
    try:
        assert session.drop_history() == 0 and session.workspace.active.can_undo
    finally:
        done.set()
        worker.join()
    assert session.drop_history() == 2 * STEP_BYTES
