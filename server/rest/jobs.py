"""Background jobs for long work (video tracking, large "everything" runs): ``/v1/jobs``.

Why a manager of its own rather than an open HTTP request: long work outlives proxies' and
clients' timeouts, and a client that polls can cancel. The manager bounds everything it holds,
per key so that no key can push out or hold up another's: at most ``per_key_jobs`` unfinished
jobs per key and ``max_jobs`` in all (more are refused at once with a retry hint, never queued
without limit); finished jobs forgotten ``keep_s`` after they finish, and at most
``max_history`` finished jobs kept per key (that key's oldest dropped first). Workers take the
queued jobs round-robin by key: a key's one job waits for at most one job of each other key.

Jobs belong to the API key id that made them; asking about another key's job is answered exactly
like asking about a missing one, so ids can't be probed. Status words, in order:
``starting`` (queued), ``processing`` (a worker runs it), then one of ``succeeded``,
``failed`` or ``canceled``.

A runner is ``run(request, key, progress, cancelled) -> result``: it calls ``progress(fraction)``
between steps and stops early when ``cancelled()`` turns True (returning anything or raising
``JobCanceled``). ``run`` may be one callable for every kind or a mapping ``{kind: runner}``,
so new kinds (video, everything) add a runner without touching this module.
"""

from __future__ import annotations

import collections
import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from server.rest.schemas import ErrorBody, ErrorDetail, JobRequest, JobState, JobStatusWord
from workbench.errors import Refusal
from workbench.threads import in_own_thread

log = logging.getLogger("samwb.rest.jobs")

Progress = Callable[[float], None]
Cancelled = Callable[[], bool]
Runner = Callable[[JobRequest, Any, Progress, Cancelled], Any]

FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "canceled"})
DEFAULT_TYPICAL_S = 5.0  # the retry hint before any job has finished


class KeyLike(Protocol):
    """What the manager needs of ``security.ApiKey``: the id that owns a job."""

    key_id: str


class JobError(Refusal):
    """A refusal the HTTP layer turns into an error body, by these attributes alone.

    ``status`` (HTTP), ``code`` (machine-readable), ``message`` (for a person), ``field`` (the
    request field at fault or None) and ``retry_after_s`` (seconds, for Retry-After, or None).
    """

    status = 500
    code = "internal"

    def __init__(self, message: str, *, retry_after_s: int | None = None,
                 field: str | None = None) -> None:
        super().__init__(type(self).status, type(self).code, message, field, retry_after_s)


class JobNotFound(JobError):
    """No such job for this key: missing, expired, or another key's (never told apart)."""

    status = 404
    code = "not_found"


class JobsFullError(JobError):
    """``max_jobs`` unfinished jobs exist, or this key has ``per_key_jobs``; ``retry_after_s``
    estimates when a slot frees."""

    status = 503
    code = "busy"


class JobsClosedError(JobError):
    """The manager was closed (the server is stopping); new jobs are refused."""

    status = 503
    code = "unavailable"


class JobKindUnsupported(JobError):
    """The request's kind has no runner on this server."""

    status = 422
    code = "unsupported_kind"


class JobCanceled(Exception):
    """Raised by a runner that stops because ``cancelled()`` turned True."""


@dataclass
class _Job:
    """The manager's mutable record of one job; read and written only under the manager's lock."""

    id: str
    key: KeyLike  # the ApiKey that submitted it; the runner gets it back
    kind: str
    request: JobRequest | None  # dropped once finished: it may hold a 40 MB data: URI
    runner: Runner
    created_s: float
    status: JobStatusWord = "starting"
    progress: float = 0.0
    result: Any = None
    error: ErrorBody | None = None
    finished_at: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)


_GONE_REMEMBERED = 4096  # ids whose end is remembered, to say "expired" rather than "unknown"


def new_job_id() -> str:
    """``job_`` and 12 random bytes, URL-safe: unguessable, so ids carry no information."""
    return f"job_{secrets.token_urlsafe(12)}"


class JobManager:
    """Runs jobs on ``workers`` daemon threads (started on the first submit, stopped by
    ``close()``) and answers their state. Thread-safe.

    Args:
        run: a runner for every kind, or a mapping ``{kind: runner}``.
        max_jobs: unfinished jobs (queued or running) at most; more raise ``JobsFullError``.
        keep_s: seconds a finished job stays readable (``expires_in_s`` counts down).
        workers: jobs run at once.
        clock: monotonic seconds, for expiry and durations (tests inject a fake one).
        wall_clock: Unix seconds, for ``created_s`` as clients read it.
        max_history: finished jobs kept at most per key, that key's oldest finished dropped
            first (each may hold a result of several MB: overlays and cut-outs as data: URIs);
            keys are the operator's, so memory is bounded by keys x ``max_history``.
        per_key_jobs: unfinished jobs one key may hold (default: a quarter of ``max_jobs``).
        checks: per kind, ``check(request, key)`` run at submit time; what it raises refuses
            the job at once (a job that cannot succeed is never accepted to fail later).
        on_release: per kind, ``release(request)`` for a request dropped without running
            (cancelled while queued, or the manager closed): a kind that holds files for its
            runner (a video job's clip) removes them here; a runner cleans up after itself.
    """

    def __init__(self, run: Runner | Mapping[str, Runner], max_jobs: int = 100,
                 keep_s: float = 3600, workers: int = 1,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time, max_history: int = 100,
                 per_key_jobs: int | None = None,
                 checks: Mapping[str, Callable[[JobRequest, KeyLike], None]] | None = None,
                 on_release: Mapping[str, Callable[[Any], None]] | None = None) -> None:
        if max_jobs < 1 or workers < 1 or keep_s < 0 or max_history < 0:
            raise ValueError(
                f"JobManager needs max_jobs >= 1, workers >= 1, keep_s >= 0 and max_history >= 0 "
                f"(got max_jobs={max_jobs}, workers={workers}, keep_s={keep_s}, "
                f"max_history={max_history}); fix the server's job settings.")
        self._run = run if callable(run) else dict(run)
        self._checks = dict(checks or {})
        self._on_release = dict(on_release or {})
        self.max_jobs = max_jobs
        self.keep_s = keep_s
        self.workers = workers
        self.max_history = max_history
        self.per_key_jobs = max(1, min(max_jobs, per_key_jobs or max(1, max_jobs // 4)))
        self._clock = clock
        self._wall_clock = wall_clock
        self._cond = threading.Condition()
        self._jobs: dict[str, _Job] = {}
        self._queue: collections.deque[str] = collections.deque()
        self._finished: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._running: dict[str, float] = {}  # job id -> clock at start, while in a runner
        self._served: dict[str, int] = {}  # key id -> the turn its last job started on
        self._turns = 0
        self._gone: collections.OrderedDict[str, tuple[str, str]] = collections.OrderedDict()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._typical_s = DEFAULT_TYPICAL_S

    # -- the API the routes use -------------------------------------------------------------

    def submit(self, request: JobRequest, key: KeyLike) -> JobState:
        """Queue ``request`` for ``key``; returns its state (``starting``).

        Raises:
            JobsFullError: ``max_jobs`` unfinished jobs exist (with ``retry_after_s``).
            JobsClosedError: the manager was closed.
            JobKindUnsupported: no runner for ``request.kind``.
        """
        runner = self._runner_for(request.kind)
        check = self._checks.get(request.kind)
        if check is not None:
            check(request, key)
        with self._cond:
            if self._closed:
                raise JobsClosedError("The server is shutting down and takes no new jobs. Retry "
                                      "once it is back.")
            self._purge_locked()
            # A canceled job whose runner has not returned yet still holds a worker: count it.
            unfinished = len(self._queue) + len(self._running)
            mine = sum(1 for job in self._jobs.values()
                       if job.key.key_id == key.key_id and job.status not in FINISHED)
            if mine >= self.per_key_jobs:
                retry = self._retry_after_locked()
                raise JobsFullError(
                    f"This key already has {mine} unfinished jobs (a key may have "
                    f"{self.per_key_jobs}). Retry in about {retry} s, or cancel one.",
                    retry_after_s=retry)
            if unfinished >= self.max_jobs:
                retry = self._retry_after_locked()
                raise JobsFullError(
                    f"The server already holds {unfinished} unfinished jobs (its limit is "
                    f"{self.max_jobs}). Retry in about {retry} s.", retry_after_s=retry)
            job = _Job(id=new_job_id(), key=key, kind=request.kind, request=request,
                       runner=runner, created_s=float(self._wall_clock()))
            self._jobs[job.id] = job
            self._queue.append(job.id)
            self._start_workers_locked()
            self._cond.notify()
            return self._state_locked(job)

    def get(self, job_id: str, key: KeyLike) -> JobState:
        """The state of ``key``'s job ``job_id``. Raises ``JobNotFound`` (also for another
        key's job, and for a job forgotten ``keep_s`` after it finished)."""
        with self._cond:
            return self._state_locked(self._find_locked(job_id, key))

    def cancel(self, job_id: str, key: KeyLike) -> JobState:
        """Cancel ``key``'s job and return its state; final at once.

        A queued job never starts; a running one reads ``canceled`` from now on, its runner
        sees ``cancelled()`` turn True and whatever it returns later is dropped. A job that had
        already finished is left as it was and its final state returned (``succeeded``,
        ``failed`` or ``canceled``). Raises ``JobNotFound`` like ``get``.
        """
        with self._cond:
            job = self._find_locked(job_id, key)
            if job.status not in FINISHED:
                job.cancel.set()
                if job.id in self._queue:
                    self._queue.remove(job.id)
                    self._release_locked(job)
                self._finish_locked(job, "canceled")
            return self._state_locked(job)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the workers: queued jobs end ``canceled``, running runners see ``cancelled()``
        turn True, and each worker is waited for up to ``timeout_s``. Idempotent."""
        with self._cond:
            self._closed = True
            for job in self._jobs.values():
                if job.status not in FINISHED:
                    job.cancel.set()
                    if job.id in self._queue:
                        self._release_locked(job)
                    self._finish_locked(job, "canceled")
            self._queue.clear()
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        deadline = self._clock() + timeout_s
        for thread in threads:
            thread.join(max(0.0, deadline - self._clock()))
            if thread.is_alive():
                log.warning("job worker %s did not stop within %g s; its runner ignores "
                            "cancelled()", thread.name, timeout_s)

    def counts(self) -> dict[str, int]:
        """Jobs held now by status word (for ``/metrics``)."""
        with self._cond:
            found: dict[str, int] = {}
            for job in self._jobs.values():
                found[job.status] = found.get(job.status, 0) + 1
            return found

    @property
    def alive_workers(self) -> int:
        """Worker threads running now (for tests and /readyz)."""
        with self._cond:
            return sum(1 for thread in self._threads if thread.is_alive())

    # -- workers ----------------------------------------------------------------------------

    def _start_workers_locked(self) -> None:
        self._threads = [thread for thread in self._threads if thread.is_alive()]
        while len(self._threads) < self.workers:
            thread = threading.Thread(target=self._work, daemon=True,
                                      name=f"samwb-jobs-{len(self._threads)}")
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._next_locked()
                job.status = "processing"
                self._running[job.id] = self._clock()
                # Queued jobs are unfinished, so this is set; a cancel drops it once we let go.
                request = job.request
            self._run_one(job, request)

    def _run_one(self, job: _Job, request: JobRequest) -> None:
        """Run one job outside the lock and record how it ended."""

        def progress(fraction: float) -> None:
            with self._cond:
                if job.status == "processing" and math.isfinite(fraction):
                    job.progress = min(1.0, max(0.0, float(fraction)))

        def cancelled() -> bool:
            return job.cancel.is_set()

        outcome: JobStatusWord = "succeeded"
        result: Any = None
        error: ErrorBody | None = None
        try:
            # On a thread that ends with the job: the worker lives on, and an OpenMP pool of
            # its own (a video's frames, an everything run) would slow every later click
            # (workbench.threads).
            result = in_own_thread(lambda: job.runner(request, job.key, progress, cancelled),
                                   "samwb-job")
            if not job.cancel.is_set():
                # Refuse a result the response can't carry here, not on every later GET.
                JobState(id=job.id, kind=job.kind, status="succeeded", progress=1.0,
                         result=result, created_s=job.created_s)
        except JobCanceled:
            outcome = "canceled"
        except Exception as exc:  # the job's outcome, not the worker's: the worker goes on
            outcome, error = "failed", _error_body(job, exc)
        with self._cond:
            took = self._clock() - self._running.pop(job.id)
            self._typical_s = 0.7 * self._typical_s + 0.3 * max(0.0, took)
            if job.status in FINISHED:  # canceled by DELETE or close() while it ran
                return
            if job.cancel.is_set():
                outcome = "canceled"
            if outcome == "succeeded":
                job.result, job.progress = result, 1.0
            job.error = error if outcome == "failed" else None
            self._finish_locked(job, outcome)

    # -- bookkeeping (under the lock) -------------------------------------------------------

    def _runner_for(self, kind: str) -> Runner:
        if callable(self._run):
            return self._run
        runner = self._run.get(kind)
        if runner is None:
            known = ", ".join(sorted(self._run)) or "none"
            raise JobKindUnsupported(
                f"This server runs no jobs of kind {kind!r}; it runs: {known}.", field="kind")
        return runner

    def _next_locked(self) -> _Job:
        """The queued job of the key served longest ago (first come first within a key)."""
        position = min(range(len(self._queue)), key=lambda i: (
            self._served.get(self._jobs[self._queue[i]].key.key_id, -1), i))
        job = self._jobs[self._queue[position]]
        del self._queue[position]
        self._turns += 1
        self._served[job.key.key_id] = self._turns
        return job

    def _find_locked(self, job_id: str, key: KeyLike) -> _Job:
        self._purge_locked()
        job = self._jobs.get(job_id)
        if job is None or job.key.key_id != key.key_id:
            gone = self._gone.get(job_id) if job is None else None
            if gone is not None and gone[0] == key.key_id and gone[1] == "replaced":
                why = (f"it was dropped to make room: a key keeps its {self.max_history} most "
                       "recent finished jobs")
            elif gone is not None and gone[0] == key.key_id:
                why = f"it finished more than {self.keep_s:g} s ago and has expired"
            else:
                why = ("it is unknown here (jobs live in memory, so ids from before a server "
                       "restart are gone)")
            raise JobNotFound(f"No job {job_id!r} for this API key: {why}. Submit it again "
                              "with POST /v1/jobs.", field="job_id")
        return job

    def _release_locked(self, job: _Job) -> None:
        """A queued job's request dropped unrun: its kind's ``on_release`` (quick: file
        removal), failures logged, never raised into a cancel."""
        release = self._on_release.get(job.kind)
        if release is not None and job.request is not None:
            try:
                release(job.request)
            except Exception:  # noqa: BLE001 - a cancel must still answer
                log.exception("releasing job %s (%s) failed", job.id, job.kind)

    def _finish_locked(self, job: _Job, status: JobStatusWord) -> None:
        job.status, job.request = status, None
        job.finished_at = self._clock()
        self._finished[job.id] = None
        own = [i for i in self._finished if self._jobs[i].key.key_id == job.key.key_id]
        for oldest in own[:max(0, len(own) - self.max_history)]:
            self._forget_locked(oldest, "replaced")

    def _forget_locked(self, job_id: str, reason: str) -> None:
        self._finished.pop(job_id, None)
        job = self._jobs.pop(job_id, None)
        if job is not None:
            self._gone[job_id] = (job.key.key_id, reason)
            while len(self._gone) > _GONE_REMEMBERED:
                self._gone.popitem(last=False)

    def _purge_locked(self) -> None:
        """Forget finished jobs older than ``keep_s``; they finish in order, so stop early."""
        now = self._clock()
        while self._finished:
            job_id = next(iter(self._finished))
            job = self._jobs.get(job_id)
            if job is not None and job.finished_at is not None \
                    and now - job.finished_at < self.keep_s:
                break
            self._forget_locked(job_id, "expired")

    def _state_locked(self, job: _Job) -> JobState:
        expires: int | None = None
        if job.finished_at is not None:
            expires = max(0, math.ceil(job.finished_at + self.keep_s - self._clock()))
        return JobState(id=job.id, kind=job.kind, status=job.status,
                        progress=job.progress, result=job.result, error=job.error,
                        created_s=job.created_s, expires_in_s=expires)

    def _retry_after_locked(self) -> int:
        """Seconds until the longest-running job likely ends and frees a slot, at least 1."""
        now = self._clock()
        elapsed = max((now - started for started in self._running.values()), default=0.0)
        return max(1, math.ceil(self._typical_s - elapsed))


def _error_body(job: _Job, exc: Exception) -> ErrorBody:
    """A failed job's error body: the message of a RestError-like exception (one with ``code``
    and ``message``), else a generic message, with the traceback logged once, here."""
    code, message = getattr(exc, "code", None), getattr(exc, "message", None)
    if isinstance(code, str) and isinstance(message, str):
        field_name = getattr(exc, "field", None)
        return ErrorBody(error=ErrorDetail(
            code=code, message=message,
            field=field_name if isinstance(field_name, str) else None))
    log.error("job %s (%s) failed", job.id, job.kind, exc_info=exc)
    return ErrorBody(error=ErrorDetail(
        code="internal",
        message=f"The job failed unexpectedly on the server (job id {job.id}). Retry it; if it "
                "fails again, report the job id to the operator, whose log has the details."))
