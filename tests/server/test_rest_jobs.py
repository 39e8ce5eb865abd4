"""Background jobs: lifecycle, failure, cancel (queued and running), ownership, expiry, limits and
shutdown on the manager; then POST/GET/DELETE /jobs over HTTP with a stand-in security layer."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.testclient import TestClient

from server.rest.jobs import JobCanceled, JobKindUnsupported, JobManager, JobNotFound, JobsFullError
from server.rest.routes_jobs import jobs_router
from server.rest.schemas import CacheInfo, ImageInfo, JobRequest, JobState, SegmentResponse

WAIT_S = 5.0


@dataclass(frozen=True)
class FakeKey:
    key_id: str
    name: str = "test"
    scopes: frozenset[str] = frozenset({"jobs"})


ALICE, BOB = FakeKey("alice"), FakeKey("bob")


def response() -> SegmentResponse:
    # The cache block grows counters over time; any required counter is 0 here.
    counters = {name: 0 for name, info in CacheInfo.model_fields.items()
                if info.is_required() and name != "embedding"}
    return SegmentResponse(model="test-model", image=ImageInfo(width=4, height=3), objects=[],
                           timings={"total_s": 0.01},
                           cache=CacheInfo(embedding="miss", **counters))


def job_request(**segment: Any) -> JobRequest:
    return JobRequest.model_validate({"kind": "segment", "request": segment})


class Gate:
    """A runner held by events: ``started`` when it runs, it reports ``progress`` 0.5, then waits
    for ``release`` (or for a cancel); ``saw_cancel`` tells whether it was told to stop."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.reported = threading.Event()
        self.saw_cancel = threading.Event()
        self.fail = fail
        self.calls = 0
        self.keys: list[Any] = []

    def __call__(self, request: JobRequest, key: Any, progress, cancelled) -> SegmentResponse:
        self.calls += 1
        self.keys.append(key)
        self.started.set()
        progress(0.5)
        self.reported.set()
        deadline = time.monotonic() + WAIT_S
        while not self.release.is_set() and time.monotonic() < deadline:
            if cancelled():
                self.saw_cancel.set()
                raise JobCanceled("stopped between steps")
            time.sleep(0.005)
        if self.fail is not None:
            raise self.fail
        return response()


def wait_for(manager: JobManager, job_id: str, key: FakeKey, status: str) -> JobState:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        state = manager.get(job_id, key)
        if state.status == status:
            return state
        time.sleep(0.005)
    raise AssertionError(f"job {job_id} never reached {status}: {manager.get(job_id, key)}")


@pytest.fixture
def gate():
    gate = Gate()
    yield gate
    gate.release.set()


@pytest.fixture
def manager(gate):
    manager = JobManager(gate, max_jobs=3, keep_s=60, per_key_jobs=3)
    yield manager
    manager.close()


def test_a_job_goes_from_starting_to_processing_to_succeeded(manager, gate):
    state = manager.submit(job_request(), ALICE)
    assert state.id.startswith("job_") and len(state.id) > 12
    assert state.status == "starting" and state.progress == 0.0 and state.expires_in_s is None
    assert gate.reported.wait(WAIT_S)
    running = manager.get(state.id, ALICE)
    assert running.status == "processing" and running.progress == 0.5 and running.result is None
    gate.release.set()
    done = wait_for(manager, state.id, ALICE, "succeeded")
    assert done.progress == 1.0 and done.result == response() and done.error is None
    assert 0 < done.expires_in_s <= 60
    assert gate.keys == [ALICE]  # the runner gets the submitting key back


def test_each_job_runs_on_a_thread_that_ends_while_the_worker_lives_on():
    """The worker takes the next job; the job itself runs on a thread of its own, which ends
    with it and takes its OpenMP pool along (``workbench.threads``)."""
    import threading

    ran_on = []

    def runner(request, key, progress, cancelled):
        ran_on.append(threading.current_thread())
        return response()

    manager = JobManager(runner)
    try:
        for _ in range(2):
            job = manager.submit(job_request(), ALICE)
            assert wait_for(manager, job.id, ALICE, "succeeded").result == response()
        workers = [t for t in threading.enumerate() if t.name.startswith("samwb-jobs-")]
        assert len(ran_on) == 2 and ran_on[0] is not ran_on[1]
        assert all(t.name == "samwb-job" and not t.is_alive() for t in ran_on)
        assert workers and all(t.is_alive() for t in workers) and manager.alive_workers == 1
    finally:
        manager.close()


def test_a_failure_ends_failed_with_a_message_and_no_traceback(caplog):
    gate = Gate(fail=ValueError("secret internal detail"))
    gate.release.set()
    manager = JobManager(gate)
    try:
        with caplog.at_level(logging.ERROR, logger="samwb.rest.jobs"):
            job = manager.submit(job_request(), ALICE)
            state = wait_for(manager, job.id, ALICE, "failed")
        assert state.result is None and state.error.error.code == "internal"
        message = state.error.error.message
        assert job.id in message and "Traceback" not in message and "secret" not in message
        logged = [r for r in caplog.records if r.exc_info]
        assert len(logged) == 1 and job.id in logged[0].getMessage()
    finally:
        manager.close()


def test_a_rest_error_keeps_its_code_and_message():
    class Refused(Exception):
        code, message, field = "bad_request", "The image is empty; send a PNG or JPEG.", "image"

    gate = Gate(fail=Refused())
    gate.release.set()
    manager = JobManager(gate)
    try:
        state = wait_for(manager, manager.submit(job_request(), ALICE).id, ALICE, "failed")
        assert state.error.error.model_dump() == {
            "code": "bad_request", "message": "The image is empty; send a PNG or JPEG.",
            "field": "image"}
    finally:
        manager.close()


def test_a_queued_job_canceled_never_runs(manager, gate):
    first = manager.submit(job_request(), ALICE)
    assert gate.started.wait(WAIT_S)
    queued = manager.submit(job_request(), ALICE)
    canceled = manager.cancel(queued.id, ALICE)
    assert canceled.status == "canceled" and canceled.expires_in_s is not None
    gate.release.set()
    wait_for(manager, first.id, ALICE, "succeeded")
    time.sleep(0.05)
    assert gate.calls == 1 and manager.get(queued.id, ALICE).status == "canceled"


def test_a_running_job_canceled_is_told_and_stays_canceled(manager, gate):
    job = manager.submit(job_request(), ALICE)
    assert gate.reported.wait(WAIT_S)
    assert manager.cancel(job.id, ALICE).status == "canceled"
    assert gate.saw_cancel.wait(WAIT_S)
    time.sleep(0.05)
    state = manager.get(job.id, ALICE)
    assert state.status == "canceled" and state.result is None and state.error is None


def test_a_runner_that_returns_after_a_cancel_has_its_result_dropped():
    seen = threading.Event()

    def runner(request, key, progress, cancelled):
        while not cancelled():
            time.sleep(0.005)
        seen.set()
        return response()

    manager = JobManager(runner)
    try:
        job = manager.submit(job_request(), ALICE)
        wait_for(manager, job.id, ALICE, "processing")
        manager.cancel(job.id, ALICE)
        assert seen.wait(WAIT_S)
        time.sleep(0.05)
        assert manager.get(job.id, ALICE).status == "canceled"
        assert manager.get(job.id, ALICE).result is None
    finally:
        manager.close()


def test_cancelling_a_finished_job_returns_its_final_state(manager, gate):
    gate.release.set()
    job = manager.submit(job_request(), ALICE)
    wait_for(manager, job.id, ALICE, "succeeded")
    assert manager.cancel(job.id, ALICE).status == "succeeded"


def test_another_keys_job_is_not_found_like_a_missing_one(manager, gate):
    job = manager.submit(job_request(), ALICE)
    with pytest.raises(JobNotFound) as other:
        manager.get(job.id, BOB)
    with pytest.raises(JobNotFound) as missing:
        manager.get("job_doesnotexist", BOB)
    with pytest.raises(JobNotFound):
        manager.cancel(job.id, BOB)
    assert other.value.status == missing.value.status == 404
    assert other.value.code == missing.value.code == "not_found"
    assert other.value.message.replace(job.id, "X") == missing.value.message.replace(
        "job_doesnotexist", "X")
    assert manager.get(job.id, ALICE).status in {"starting", "processing"}


def test_finished_jobs_expire_keep_s_after_they_finish():
    now = [1000.0]
    manager = JobManager(lambda *args: response(), keep_s=60, clock=lambda: now[0])
    try:
        job = manager.submit(job_request(), ALICE)
        assert wait_for(manager, job.id, ALICE, "succeeded").expires_in_s == 60
        now[0] += 45
        assert manager.get(job.id, ALICE).expires_in_s == 15
        now[0] += 15
        with pytest.raises(JobNotFound):
            manager.get(job.id, ALICE)
    finally:
        manager.close()


def test_the_history_drops_the_oldest_finished_jobs_first():
    manager = JobManager(lambda *args: response(), max_history=2)
    try:
        ids = []
        for _ in range(3):
            ids.append(manager.submit(job_request(), ALICE).id)
            wait_for(manager, ids[-1], ALICE, "succeeded")
        with pytest.raises(JobNotFound):
            manager.get(ids[0], ALICE)
        assert [manager.get(i, ALICE).status for i in ids[1:]] == ["succeeded"] * 2
    finally:
        manager.close()


def test_max_jobs_unfinished_refuses_more_with_a_retry_hint(manager, gate):
    ids = [manager.submit(job_request(), ALICE).id for _ in range(3)]
    with pytest.raises(JobsFullError) as full:
        manager.submit(job_request(), BOB)
    assert full.value.status == 503 and full.value.code == "busy"
    assert full.value.retry_after_s >= 1 and "Retry in about" in full.value.message
    manager.cancel(ids[2], ALICE)  # a queued job canceled frees its slot at once
    manager.submit(job_request(), BOB)


def test_a_kind_without_a_runner_is_refused():
    manager = JobManager({"video": lambda *args: response()})
    try:
        with pytest.raises(JobKindUnsupported) as refused:
            manager.submit(job_request(), ALICE)
        assert refused.value.field == "kind" and "video" in refused.value.message
    finally:
        manager.close()


def test_close_stops_the_workers_and_cancels_what_is_left():
    gate = Gate()
    manager = JobManager(gate, workers=2)
    assert manager.alive_workers == 0  # started lazily
    running = manager.submit(job_request(), ALICE)
    assert gate.started.wait(WAIT_S)
    assert manager.alive_workers == 2
    manager.close(timeout_s=WAIT_S)
    assert manager.alive_workers == 0 and gate.saw_cancel.is_set()
    assert manager.get(running.id, ALICE).status == "canceled"
    assert not [t for t in threading.enumerate() if t.name.startswith("samwb-jobs")
                and t.is_alive()]
    with pytest.raises(Exception) as closed:
        manager.submit(job_request(), ALICE)
    assert closed.value.status == 503


# -- over HTTP --------------------------------------------------------------------------------


class FakeAuthError(Exception):
    status, code, message = 401, "unauthorized", "Send an X-Test-Key header."
    field = retry_after_s = None


class FakeSecurity:
    """Stands in for ``security.RestSecurity``: the key id is the ``X-Test-Key`` header."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def require(self, scope: str):
        self.scopes.append(scope)

        def dependency(request: Request) -> FakeKey:
            key_id = request.headers.get("x-test-key")
            if not key_id:
                raise FakeAuthError()
            return FakeKey(key_id)

        return dependency


def error_response(request: Request, exc: Exception) -> JSONResponse:
    """What app.py's handler does: any error with these attributes becomes the error body."""
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
    body = {"error": {"code": exc.code, "message": exc.message, "field": exc.field}}
    return JSONResponse(body, status_code=exc.status, headers=headers)


@pytest.fixture
def client(manager):
    security = FakeSecurity()
    app = FastAPI()
    app.include_router(jobs_router(manager, security), prefix="/v1")
    app.add_exception_handler(FakeAuthError, error_response)
    errors = [JobNotFound.__mro__[1]]
    try:
        from server.rest.service import RestError
        errors.append(RestError)
    except ImportError:
        pass
    for error in errors:
        app.add_exception_handler(error, error_response)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client
    assert security.scopes == ["jobs"]


def test_http_submit_poll_and_cancel(client, gate):
    alice, bob = {"X-Test-Key": "alice"}, {"X-Test-Key": "bob"}
    posted = client.post("/v1/jobs", json={"kind": "segment", "request": {"objects": []}},
                         headers=alice)
    assert posted.status_code == 202 and posted.json()["status"] == "starting"
    job_id = posted.json()["id"]
    assert gate.reported.wait(WAIT_S)
    polled = client.get(f"/v1/jobs/{job_id}", headers=alice)
    assert polled.status_code == 200
    assert polled.json()["status"] == "processing" and polled.json()["progress"] == 0.5

    for path in (f"/v1/jobs/{job_id}", "/v1/jobs/job_missing"):
        for method in (client.get, client.delete):
            refused = method(path, headers=bob)
            assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    assert client.get(f"/v1/jobs/{job_id}").status_code == 401

    deleted = client.delete(f"/v1/jobs/{job_id}", headers=alice)
    assert deleted.status_code == 200 and deleted.json()["status"] == "canceled"
    assert client.get(f"/v1/jobs/{job_id}", headers=alice).json()["status"] == "canceled"


def test_http_a_finished_job_carries_its_result(client, gate):
    gate.release.set()
    alice = {"X-Test-Key": "alice"}
    job_id = client.post("/v1/jobs", json={"kind": "segment", "request": {}},
                         headers=alice).json()["id"]
    deadline = time.monotonic() + WAIT_S
    while (state := client.get(f"/v1/jobs/{job_id}", headers=alice).json())["status"] \
            != "succeeded" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state["result"]["model"] == "test-model" and state["expires_in_s"] > 0
    again = client.delete(f"/v1/jobs/{job_id}", headers=alice)
    assert again.status_code == 200 and again.json()["status"] == "succeeded"


def test_http_refuses_unknown_fields_and_a_full_manager(client, gate):
    alice = {"X-Test-Key": "alice"}
    for body in ({"kind": "segment", "request": {}, "priority": 1},
                 {"kind": "segment", "request": {"imagee": "x"}},
                 {"kind": "video", "request": {}}):
        assert client.post("/v1/jobs", json=body, headers=alice).status_code == 422
    for _ in range(3):
        assert client.post("/v1/jobs", json={"kind": "segment", "request": {}},
                           headers=alice).status_code == 202
    full = client.post("/v1/jobs", json={"kind": "segment", "request": {}}, headers=alice)
    assert full.status_code == 503 and full.json()["error"]["code"] == "busy"
    assert int(full.headers["Retry-After"]) >= 1


# --- fair to every key: quotas, turns, honest 404s ---------------------------------------------


def test_one_key_at_its_quota_is_refused_alone(gate):
    manager = JobManager(gate, max_jobs=100, per_key_jobs=2)
    try:
        for _ in range(2):
            manager.submit(job_request(), ALICE)
        with pytest.raises(JobsFullError, match="This key already has 2 unfinished"):
            manager.submit(job_request(), ALICE)
        assert manager.submit(job_request(), BOB).status == "starting"  # bob is not held up
    finally:
        gate.release.set()
        manager.close()


def test_queued_jobs_take_turns_by_key(gate):
    order: list[str] = []

    def run(request, key, progress, cancelled):
        if not order:  # the first job holds the worker until every other is queued
            order.append(key.key_id)
            gate.release.wait(WAIT_S)
        else:
            order.append(key.key_id)
        return response()

    manager = JobManager(run, max_jobs=100, per_key_jobs=10)
    try:
        first = manager.submit(job_request(), ALICE)
        wait_for(manager, first.id, ALICE, "processing")
        ids = [manager.submit(job_request(), ALICE).id for _ in range(3)]
        bobs = manager.submit(job_request(), BOB).id
        gate.release.set()
        wait_for(manager, bobs, BOB, "succeeded")
        for job_id in ids:
            wait_for(manager, job_id, ALICE, "succeeded")
        assert order == ["alice", "bob", "alice", "alice", "alice"]
    finally:
        manager.close()


def test_another_keys_jobs_never_push_out_a_finished_job():
    manager = JobManager(lambda *args: response(), max_history=2)
    try:
        mine = manager.submit(job_request(), ALICE).id
        wait_for(manager, mine, ALICE, "succeeded")
        for _ in range(5):
            wait_for(manager, manager.submit(job_request(), BOB).id, BOB, "succeeded")
        assert manager.get(mine, ALICE).status == "succeeded"
    finally:
        manager.close()


def test_a_missing_job_says_why():
    clock = [0.0]
    manager = JobManager(lambda *args: response(), keep_s=10, max_history=1,
                         clock=lambda: clock[0])
    try:
        expired = manager.submit(job_request(), ALICE).id
        wait_for(manager, expired, ALICE, "succeeded")
        clock[0] += 11
        with pytest.raises(JobNotFound, match="has expired"):
            manager.get(expired, ALICE)
        first = manager.submit(job_request(), ALICE).id
        wait_for(manager, first, ALICE, "succeeded")
        wait_for(manager, manager.submit(job_request(), ALICE).id, ALICE, "succeeded")
        with pytest.raises(JobNotFound, match="dropped to make room"):
            manager.get(first, ALICE)
        with pytest.raises(JobNotFound, match="unknown here") as other:
            manager.get(expired, BOB)  # another key's id reads like a missing one
        assert "expired" not in other.value.message
        with pytest.raises(JobNotFound, match="restart"):
            manager.get("job_never", ALICE)
    finally:
        manager.close()
