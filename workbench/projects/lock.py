"""One app per project: an OS file lock on ``DIR/.samwb-cache/lock``.

``filelock`` takes an ``flock`` on the file; the kernel drops it when the process ends, however
it ends (``kill -9`` included), so a crashed app never blocks the next one and there is no
stale-lock cleanup to get wrong. The holder's pid, host and start time go to a separate
``lock.owner`` file (the lock file itself is truncated by each attempt), read only to word the
refusal; a leftover owner file from a killed app is simply overwritten.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from filelock import FileLock, Timeout

from .model import ProjectError


class ProjectLock:
    """Held from ``acquire`` to ``release``; a second holder (thread or process) is refused."""

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / "lock"
        self.owner_path = cache_dir / "lock.owner"
        self._lock = FileLock(str(self.path), timeout=0)

    def acquire(self) -> None:
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise ProjectError(self._refusal()) from None
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        try:
            self.owner_path.write_text(json.dumps(owner), encoding="utf-8")
        except OSError:
            pass  # the lock holds without the note

    def release(self) -> None:
        if self._lock.is_locked:
            try:
                self.owner_path.unlink()
            except OSError:
                pass
            self._lock.release(force=True)

    def _refusal(self) -> str:
        try:
            owner = json.loads(self.owner_path.read_text(encoding="utf-8"))
            who = f"pid {int(owner['pid'])} on {owner['host']}"
        except (OSError, ValueError, KeyError, TypeError):
            who = "pid unknown"
        project = self.path.parent.parent
        return (f"This project is open in another samwb app ({who}). Close it first, or open "
                f"the project read-only to view or export it. Project: {project}")
