"""One folder for every temporary file of a running app, so none outlives it.

Layout: ``<parent>/run-<pid>-<random>/`` (``parent``: ``<system temp>/samwb-<uid>`` by default),
with ``gradio/`` (Gradio's upload and output cache: ``GRADIO_TEMP_DIR`` points there), ``api/`` and
``exports/``. A live run holds an exclusive ``flock`` on its ``.lock`` file; at start every run
folder whose lock can be taken belongs to a process that is gone (killed, crashed) and is
removed. A clean shutdown removes the run's own folder.

The byte bound acts when a write would pass it, not a minute later: ``reserve(n)`` (asked by
the HTTP guard before an upload is read, and by the app's own writers) refuses with
``TempFullError`` ("the server's temporary storage is full", HTTP 507) while the folder holds
too much. Files are never deleted while they may be in use: the janitor (every minute) removes
only files untouched for ``JANITOR_MIN_AGE_S`` (oldest first) when the folder is over its
bound, and Gradio's own sweep removes its cache after an hour.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("samwb.temp")
RUN_PREFIX = "run-"
LOCK_NAME = ".lock"
JANITOR_MIN_AGE_S = 900.0  # a file written or read by the app in the last 15 min is in use
KEPT_FOLDER = "projects"  # per-session projects: removed with their session, not by age
USAGE_FRESH_S = 1.0  # how long a measured usage is trusted (a walk of the folder costs ms)


class TempFullError(OSError):
    """A write that would take the temp folder past its byte bound (an ``OSError`` like the
    disk-full error it stands in for)."""


def default_parent() -> Path:
    """``<system temp>/samwb-<uid>``: one per user, so two users' apps on one machine never
    share (or fight over) a folder."""
    return Path(tempfile.gettempdir()) / f"samwb-{os.getuid()}"


def check_private(folder: Path) -> None:
    """Refuse a default temp parent that someone else made first (in a world-writable /tmp a
    folder or link planted under our name could expose or redirect our files)."""
    info = folder.lstat()
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(
            f"The temp folder {folder} is not a private folder of this user (a link, another "
            "owner, or open to others). Remove it, or start the app with --temp-dir pointing "
            "to a folder of your own.")


@dataclass(frozen=True)
class TempUsage:
    files: int
    bytes: int


def usage(folder: Path) -> TempUsage:
    """Files and bytes under ``folder`` (0, 0 when absent)."""
    files = size = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            try:
                size += os.lstat(os.path.join(dirpath, name)).st_size
                files += 1
            except OSError:
                pass
    return TempUsage(files, size)


def remove_stale_runs(parent: Path) -> list[Path]:
    """Remove run folders under ``parent`` whose owner process is gone; returns them."""
    removed = []
    if not parent.is_dir():
        return removed
    for run in parent.glob(f"{RUN_PREFIX}*"):
        if not run.is_dir() or run.is_symlink():
            continue
        try:
            with open(run / LOCK_NAME, "a+") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live process holds it
        except OSError:
            pass  # no lock file: a half-made folder, also stale
        shutil.rmtree(run, ignore_errors=True)
        removed.append(run)
    if removed:
        log.info("removed %d temp folder(s) left by stopped runs under %s", len(removed), parent)
    return removed


class TempRoot:
    """This run's temp folder (see the module docstring). ``close()`` removes it."""

    def __init__(self, parent: Path | None = None, max_bytes: int = 2 << 30) -> None:
        self.parent = Path(parent) if parent is not None else default_parent()
        self.max_bytes = int(max_bytes)
        self.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if parent is None:
            check_private(self.parent)
        remove_stale_runs(self.parent)
        self.path = self.parent / f"{RUN_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path.mkdir(mode=0o700)
        self._lock_file = open(self.path / LOCK_NAME, "w")
        fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._stop = threading.Event()
        self._janitor: threading.Thread | None = None
        self._usage_lock = threading.Lock()
        self._usage_bytes, self._usage_at = 0, -1e9
        self.closed = False

    @property
    def gradio_dir(self) -> Path:
        return self.path / "gradio"

    def folder(self, kind: str) -> Path:
        """A fresh private folder ``<root>/<kind>/<random>`` (e.g. one per export)."""
        folder = self.path / kind / uuid.uuid4().hex[:12]
        folder.mkdir(parents=True, mode=0o700)
        return folder

    def usage(self) -> TempUsage:
        return usage(self.path)

    def reserve(self, nbytes: int, what: str = "This file") -> None:
        """Refuse a write of ``nbytes`` that would take the folder past its bound.

        Raises:
            TempFullError: with a message for a visitor (no paths).
        """
        now = time.monotonic()
        with self._usage_lock:
            if now - self._usage_at > USAGE_FRESH_S:
                self._usage_bytes, self._usage_at = usage(self.path).bytes, now
            used = self._usage_bytes
            if used + max(0, int(nbytes)) > self.max_bytes:
                raise TempFullError(
                    f"{what} cannot be stored now: the server's temporary storage is full "
                    f"({used / 2**20:,.0f} of {self.max_bytes / 2**20:,.0f} MiB). Retry in a "
                    "few minutes.")
            self._usage_bytes = used + max(0, int(nbytes))  # counted until the next walk

    def enforce_bound(self, min_age_s: float = JANITOR_MIN_AGE_S) -> int:
        """Delete the oldest files untouched for ``min_age_s`` until the folder holds at most
        ``max_bytes``; returns the number of bytes freed. Newer files may be in use (an upload a
        page still shows, a download not fetched yet) and are never deleted: writes are refused
        instead (``reserve``). Per-session projects (``KEPT_FOLDER``) count but are never
        deleted here: a page works in them until its session ends, which removes them."""
        cutoff = time.time() - min_age_s
        entries = []
        total = 0
        kept = str(self.path / KEPT_FOLDER)
        for dirpath, _, names in os.walk(self.path):
            in_use = dirpath == kept or dirpath.startswith(kept + os.sep)
            for name in names:
                if name == LOCK_NAME:
                    continue
                full = os.path.join(dirpath, name)
                try:
                    stat = os.lstat(full)
                except OSError:
                    continue
                if not in_use:
                    entries.append((stat.st_mtime, stat.st_size, full))
                total += stat.st_size
        freed = 0
        for mtime, size, full in sorted(entries):
            if total - freed <= self.max_bytes or mtime > cutoff:
                break
            try:
                os.unlink(full)
                freed += size
            except OSError:
                pass
        if freed:
            log.warning("temp folder over its %d-byte bound: removed %d bytes of the oldest files",
                        self.max_bytes, freed)
        return freed

    def start_janitor(self, every_s: float = 60.0) -> None:
        def run() -> None:
            while not self._stop.wait(every_s):
                self.enforce_bound()

        if self._janitor is None:
            self._janitor = threading.Thread(target=run, name="temp-janitor", daemon=True)
            self._janitor.start()

    def close(self) -> None:
        """Remove the folder (clean shutdown). Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock_file.close()
