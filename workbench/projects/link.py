"""Saved as you go: a session's image bound to its row in a project.

Every change to the session's workspace (a click on the live route, a delete, a rename, a kept
proposal, an undo) goes through ``Session.workspace``'s setter, which calls ``ImageLink.save``:
the objects that changed are written in one SQLite transaction before the answer goes back, so
a ``kill -9`` loses at most the click in flight. There is no Save button to forget.

A failed write (a full disk, a folder made read-only) is not lost silently: the changes stay
pending, ``problem`` says what happened (the page shows it), and the next change writes them
all again.
"""

from __future__ import annotations

import threading
from typing import Any

from workbench.errors import log
from workbench.objects import SegObject, Workspace
from workbench.projects.model import ProjectError
from workbench.projects.workspace_io import changes, stored_from_object

# A person's first object moves an image out of "new"; touching an auto-labelled image means
# a person is reviewing it.
STATUS_AFTER_EDIT = {"new": "review", "auto": "review"}


class ImageLink:
    """One project image open in one session (``store``: a ``ProjectStore``)."""

    def __init__(self, store: Any, image_id: int, workspace: Workspace, status: str,
                 default_class: int) -> None:
        self.store = store
        self.image_id = image_id
        self.status = status
        self.default_class = default_class
        self.problem = ""  # why the last write failed ("" when everything is saved)
        self._saved: dict[int, SegObject] = {
            o.object_id: o for o in workspace.objects if o.result is not None}
        self._lock = threading.Lock()

    def save(self, workspace: Workspace) -> None:
        """Write what changed since the last successful save (never raises: see ``problem``)."""
        with self._lock:
            changed, gone = changes(self._saved, workspace)
            if not changed and not gone:
                return
            rows = [stored_from_object(o, self.image_id, self.default_class) for o in changed]
            try:
                self.store.sync_objects(self.image_id, [r for r in rows if r is not None], gone)
                new_status = STATUS_AFTER_EDIT.get(self.status)
                if new_status is not None:
                    self.store.set_status(self.image_id, new_status)
                    self.status = new_status
            except Exception as exc:  # noqa: BLE001 - ProjectError, OSError, sqlite3
                self.problem = _describe(exc)
                log.warning("project save failed for image %s: %s", self.image_id, exc)
                return
            self.problem = ""
            self._saved = {o.object_id: o for o in workspace.objects if o.result is not None}


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, ProjectError):
        return text
    if "disk" in text.lower() or "full" in text.lower():
        return "the disk is full: free some space; your changes are kept in this page"
    if "readonly" in text.lower() or "read-only" in text.lower():
        return ("the project folder is read-only: make it writable; your changes are kept "
                "in this page")
    return "the project could not be written; your changes are kept in this page"
