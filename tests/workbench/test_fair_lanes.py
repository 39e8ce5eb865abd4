"""A lane is served round-robin by client: a flood from one page or key cannot starve another.

Each test holds the lane's one slot, queues jobs from several clients, then lets go and reads
the order in which the jobs ran.
"""

from __future__ import annotations

import threading
import time

import pytest

from workbench.lanes import ServerBusyError, SupersededError, WorkLane


class HeldLane:
    """A lane whose only slot is held by ``holder`` until ``release()``."""

    def __init__(self, lane: WorkLane, holder: str | None = "flood") -> None:
        self.lane = lane
        self.ran: list[str] = []
        self.errors: dict[str, BaseException] = {}
        self._release = threading.Event()
        self._threads: list[threading.Thread] = []
        entered = threading.Event()

        def hold() -> None:
            with lane.admit(client=holder):
                entered.set()
                self._release.wait(10)

        self._start(hold)
        assert entered.wait(5)

    def _start(self, target) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self._threads.append(thread)

    def queue(self, name: str, client: str | None, slot: str | None = None) -> None:
        """Queue a job and wait until the lane counts it (or refused it)."""
        before = self.lane.waiting + self.lane.refused + self.lane.superseded
        done = threading.Event()

        def job() -> None:
            try:
                with self.lane.admit(client=client, slot=slot):
                    self.ran.append(name)
            except (ServerBusyError, SupersededError) as exc:
                self.errors[name] = exc
            finally:
                done.set()

        self._start(job)
        for _ in range(500):
            if self.lane.waiting + self.lane.refused + self.lane.superseded > before \
                    or done.is_set():
                return
            time.sleep(0.01)
        raise AssertionError(f"{name} was never queued")

    def release(self) -> None:
        self._release.set()
        for thread in self._threads:
            thread.join(10)
        assert self.lane.running == 0 and self.lane.waiting == 0


def test_a_polite_client_runs_before_the_rest_of_a_flood():
    held = HeldLane(WorkLane("clicks", max_running=1, max_waiting=16))
    for i in range(5):
        held.queue(f"flood-{i}", "flood")
    held.queue("polite", "polite")
    held.release()
    assert held.ran == ["polite", "flood-0", "flood-1", "flood-2", "flood-3", "flood-4"]


def test_clients_take_turns():
    held = HeldLane(WorkLane("clicks", max_running=1, max_waiting=16), holder=None)
    for i in range(3):
        held.queue(f"a{i}", "a")
    for i in range(3):
        held.queue(f"b{i}", "b")
    held.release()
    assert held.ran == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_one_clients_share_is_bounded_and_never_refuses_another():
    held = HeldLane(WorkLane("clicks", max_running=1, max_waiting=16, per_client_waiting=1))
    held.queue("flood-0", "flood")
    held.queue("flood-1", "flood")  # refused: flood already has one waiting
    held.queue("polite", "polite")
    held.release()
    assert isinstance(held.errors.get("flood-1"), ServerBusyError)
    assert "already has 1 request" in str(held.errors["flood-1"])
    assert "polite" not in held.errors
    assert held.ran == ["polite", "flood-0"]


def test_a_newer_hover_replaces_the_waiting_one_whatever_its_sequence():
    held = HeldLane(WorkLane("clicks", max_running=1, max_waiting=16, per_client_waiting=2))
    held.queue("hover-1", "page", slot="hover")
    held.queue("click", "page", slot="click")
    held.queue("hover-2", "page", slot="hover")
    held.release()
    assert isinstance(held.errors.get("hover-1"), SupersededError)
    assert held.ran == ["click", "hover-2"]
    assert held.lane.superseded == 1


def test_the_retry_hint_counts_the_work_ahead_of_this_client():
    lane = WorkLane("clicks", max_running=1, max_waiting=16, typical_s=lambda: 1.0)
    held = HeldLane(lane)
    for i in range(10):
        held.queue(f"flood-{i}", "flood")
    # a newcomer waits for the running job and one turn of the flood, not for all ten
    assert lane.retry_after_s("polite") == 2
    assert lane.retry_after_s() == 11  # no client: everything ahead
    held.release()


@pytest.mark.parametrize("per_client", [0, -1])
def test_a_lane_refuses_a_meaningless_share(per_client):
    with pytest.raises(ValueError):
        WorkLane("clicks", per_client_waiting=per_client)
