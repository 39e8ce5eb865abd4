"""Has the caller of a running Gradio event gone away?

Gradio notices a closed event stream and marks that session's events as no longer alive
(``Event.alive``), and drops its queued ones, but a function already running is not told. Work
that waits (an API call queued in a lane) asks here between steps and gives up, so a burst of
abandoned calls does not keep the server busy. When Gradio's internals differ from what is
read here, the answer is "still there" (work continues, as before).
"""

from __future__ import annotations

from typing import Any, Callable


def caller_gone_check(blocks: Any, session_hash: str | None) -> Callable[[], bool]:
    """A callable that is True once every running event of ``session_hash`` has been marked
    dead by Gradio (its client disconnected)."""

    def gone() -> bool:
        if not session_hash:
            return False
        queue = getattr(blocks, "_queue", None)
        jobs = getattr(queue, "active_jobs", None) or ()
        mine = [event for job in jobs if job for event in job
                if getattr(event, "session_hash", None) == session_hash]
        return bool(mine) and not any(getattr(event, "alive", True) for event in mine)

    return gone
