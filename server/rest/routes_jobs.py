"""``/v1/jobs``: submit long work, poll its state, cancel it. Thin: ``jobs.JobManager`` does it.

Every route needs an API key with the ``jobs`` scope. A ``jobs.JobError`` leaves as the
service's ``RestError`` (same attributes: ``status``, ``code``, ``message``, ``field``,
``retry_after_s``), so app.py's one handler turns it into the JSON error body (and
``Retry-After`` for 503).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator

from fastapi import APIRouter, Depends

from server.rest.jobs import JobError, JobManager
from server.rest.schemas import ErrorBody, JobRequest, JobState
from server.rest.service import RestError

if TYPE_CHECKING:
    from server.security.auth import RestSecurity

SCOPE = "jobs"
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or unknown API key"},
    403: {"model": ErrorBody, "description": "the key lacks the jobs scope"},
    404: {"model": ErrorBody, "description": "no such job for this key (or it expired)"},
    503: {"model": ErrorBody, "description": "too many unfinished jobs; see Retry-After"},
}


def jobs_router(manager: JobManager, security: RestSecurity) -> APIRouter:
    """The jobs routes, to be included under ``/v1``; ``security.require("jobs")`` guards each."""
    router = APIRouter(tags=["jobs"], responses=ERRORS)
    # A default, not Annotated[...]: string annotations can't see names local to this function.
    requires_key = Depends(security.require(SCOPE))

    @router.post("/jobs", status_code=202, response_model=JobState)
    def submit_job(body: JobRequest, key: Any = requires_key) -> JobState:
        """Queue long work; answers at once with the job (``starting``). Poll ``GET
        /v1/jobs/{id}`` until ``succeeded``, ``failed`` or ``canceled``."""
        with translated():
            return manager.submit(body, key)

    @router.get("/jobs/{job_id}", response_model=JobState)
    def get_job(job_id: str, key: Any = requires_key) -> JobState:
        """The job's status, progress (0..1), result or error, and ``expires_in_s`` once it
        has finished. Another key's job answers 404, like a missing one."""
        with translated():
            return manager.get(job_id, key)

    @router.delete("/jobs/{job_id}", response_model=JobState)
    def cancel_job(job_id: str, key: Any = requires_key) -> JobState:
        """Cancel the job. An unfinished one answers ``canceled`` at once (a queued job never
        runs; a running one is told to stop and its result is dropped). One that had already
        finished is left alone and its final state is returned (``succeeded``, ``failed`` or
        ``canceled``), so read ``status`` to know which happened."""
        with translated():
            return manager.cancel(job_id, key)

    return router


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """A ``JobError`` leaves as the service's ``RestError`` (one error handler for /v1)."""
    try:
        yield
    except JobError as exc:
        raise RestError(exc.status, exc.code, exc.message, field=exc.field,
                        retry_after_s=exc.retry_after_s) from exc
