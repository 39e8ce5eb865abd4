"""Per-user data: one ``Session`` per browser tab, kept in that tab's ``gr.State``.

Nothing per-user is ever stored in module globals. The ``SessionRegistry`` (owned by the
``AppContext``) only maps live session ids to their ``Session`` so that the data can be
released the moment the tab closes (``demo.unload``); Gradio itself would keep a closed tab's
state for an hour. ``gr.State(delete_callback=...)`` releases it too, whichever comes first.

Each ``Session`` also has a random ``token`` (``secrets.token_urlsafe``): the fast click route
(``server.live_route``) works outside Gradio's queue, so it finds the session by this secret,
which only the session's own page receives (in the canvas value), never by a guessable id.

Fair to every visitor: the registry is bounded, but nobody can push the others out. Every use
of a session (a click on the fast route, an event of its page) marks it active; when the bound
is reached the session idle the longest goes, and a session active in the last
``protect_s`` seconds is never taken: a newcomer is then refused ("busy, retry") instead. New
sessions per client address are rate-limited, so one client cannot fill the registry.

Bounded in bytes too (``max_bytes``, a share of ``--memory-budget``: ``workbench.memory``). Each
session reports the bytes it holds (``Session.nbytes``: the image, its previews, masks and undo
history); beyond the bound the registry drops undo history first (least recently used sessions
first: the objects stay as they are), then releases idle sessions, least recently used first,
and never an active one (used in the last ``protect_s`` seconds, which covers a request in
flight: every request marks its session used). The check runs when a session is tracked and
at most once a second on use (``BUDGET_CHECK_S``), so a click never walks every session.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.lanes import ServerBusyError
from workbench.objects import MaskResult, Step, Workspace


@dataclass(frozen=True)
class Picture:
    """The session's image: RGB uint8 H x W x 3 (read-only), its content digest (the embedding
    cache key) and the uploaded file's name. One value, so readers never see an image paired
    with another image's digest."""

    image: np.ndarray
    digest: str
    name: str


def _mask_bytes(result: MaskResult | None, seen: set[int]) -> int:
    if result is None or id(result) in seen:
        return 0
    seen.add(id(result))
    logits = result.logits
    return result.bits_nbytes + (0 if logits is None else int(logits.nbytes))


def _step_bytes(step: Step, seen: set[int]) -> int:
    edits = step.edits
    edit_bytes = 0
    if edits is not None and id(edits) not in seen:  # shared by the steps after a click
        seen.add(id(edits))
        edit_bytes = int(edits.add.nbytes) + int(edits.remove.nbytes)
    return (_mask_bytes(step.result, seen) + _mask_bytes(step.base, seen) + edit_bytes
            + sum(_mask_bytes(c, seen) for c in step.candidates))


def workspace_nbytes(workspace: Workspace, seen: set[int] | None = None) -> int:
    """Bytes of the masks (bit-packed) and logits held by ``workspace``'s objects, every undo
    and redo step included; a mask shared by several steps counts once."""
    seen = set() if seen is None else seen
    return sum(_step_bytes(step, seen) for obj in workspace.objects for step in obj.history)


def _deleted_bytes(entry: Any, seen: set[int]) -> int:
    """Deleted objects kept for undo: a ``Removed`` (one delete of one or many objects) or an
    older ``(SegObject, index)`` pair."""
    pairs = getattr(entry, "entries", None)
    if pairs is None:
        pairs = (entry,) if isinstance(entry, tuple) and entry else ()
    return sum(_step_bytes(step, seen) for pair in pairs
               for step in getattr(pair[0], "history", ()) if isinstance(step, Step))


def _array_bytes(value: Any) -> int:
    return int(value.nbytes) if isinstance(value, np.ndarray) else 0


class Session:
    """One tab's image, model choice and objects.

    Handlers compute new immutable values (``Picture``, ``Workspace``) and assign them here.
    ``generation`` changes with every new image, so a slow handler that started on the previous
    image can notice and drop its result instead of mixing two images.
    """

    def __init__(self, session_id: str, model_id: str) -> None:
        self.session_id = session_id
        self.model_id = model_id
        self.picture: Picture | None = None
        self.link: Any = None  # ``workbench.projects.link.ImageLink`` while a project image is open
        self.project: Any = None  # the ``ProjectStore`` this page works in (None: single images)
        self._workspace = Workspace()
        self.generation = 0
        self.released = False
        self.timings: dict[str, float | bool] = {}
        self.preview: Any = None  # (digest, render.Preview) of the image, built lazily
        self.display_src: Any = None  # (key, data URL) of the image the canvas shows
        self.render_count = 0  # changes every view, so the page always re-renders the canvas
        self._export_dir: Path | None = None
        self.token = secrets.token_urlsafe(24)  # the page's key to the live route
        self.lock = threading.RLock()  # read-modify-write of ``workspace`` by the live route
        self.hover_seq = 0  # newest hover request seen (older ones are dropped)
        self.hover: Any = None  # the last hover preview (``workbench.segment.live.HoverResult``)
        self.display_cache: Any = None  # encoded display masks (``workbench.segment.masks``)
        self.display_jpeg: Any = None  # (digest, JPEG bytes) of the displayed image
        self.warned_models: set[str] = set()  # absent models already explained in a toast
        self.show_candidates = False  # the user asked to see similar candidates too
        self.pending_refresh = False  # a model switch waits for its encode (second event)
        self.revision = 0  # bumped by every change the live route makes
        self.deleted: list[Any] = []  # ``Removed`` of each delete, for undo (newest last)
        self.undo_restores_delete = False  # the last edit was a delete: undo brings it back
        # The proposals (``workbench.proposals.logic.ProposalSet``) the canvas shows for review,
        # set by the proposals panel's handlers; their display masks, encoded once per run.
        self.review: Any = None
        self.review_payloads: Any = None

    @property
    def workspace(self) -> Workspace:
        return self._workspace

    @workspace.setter
    def workspace(self, workspace: Workspace) -> None:
        """Every change of the objects goes through here, so a project image saves it at once
        (``workbench.projects.link``)."""
        self._workspace = workspace
        link = self.link
        if link is not None:
            link.save(workspace)

    def attach(self, link: Any, workspace: Workspace) -> None:
        """Show a project image's stored objects and save every later change to it."""
        self.link = None
        self._workspace = workspace
        self.link = link

    @property
    def has_image(self) -> bool:
        return self.picture is not None

    @property
    def image(self) -> np.ndarray | None:
        picture = self.picture
        return None if picture is None else picture.image

    @property
    def digest(self) -> str:
        picture = self.picture
        return "" if picture is None else picture.digest

    @property
    def image_name(self) -> str:
        picture = self.picture
        return "image" if picture is None else picture.name

    def set_image(self, image: np.ndarray, digest: str, name: str) -> None:
        image = np.ascontiguousarray(image)
        image.setflags(write=False)
        self.picture = Picture(image, digest, name)
        self.link = None  # a new image leaves the project image (``attach`` binds one again)
        self.workspace = Workspace().with_class(self._workspace.class_id)
        self.generation += 1
        self.timings = {}
        self.preview = None
        self.hover = None
        self.deleted = []
        self.undo_restores_delete = False
        self.review = None
        self.review_payloads = None

    def nbytes(self) -> int:
        """Bytes this session holds in memory: the image, its preview and thumbnails, the
        encoded display copies and masks sent to the page, the objects' masks with their undo
        history, and deleted objects kept for undo (an estimate of its arrays and strings; the
        Python objects around them are not counted)."""
        total = _array_bytes(self.image)
        preview = self.preview
        if isinstance(preview, tuple) and len(preview) == 2:
            preview = preview[1]
        if preview is not None:
            total += _array_bytes(getattr(preview, "base", None))
            total += sum(_array_bytes(v) for v in getattr(preview, "_thumb_bases", {}).values())
        for pair in (self.display_src, self.display_jpeg):
            if isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], (str, bytes)):
                total += len(pair[1])
        seen: set[int] = set()
        total += workspace_nbytes(self._workspace, seen)
        total += sum(_deleted_bytes(entry, seen) for entry in list(self.deleted))
        cache = self.display_cache
        if isinstance(cache, dict):
            for result, payload in list(cache.values()):
                total += _mask_bytes(result, seen)
                total += len(payload.get("png", "")) if isinstance(payload, dict) else 0
        hover = self.hover
        if hover is not None and isinstance(getattr(hover, "step", None), Step):
            total += _step_bytes(hover.step, seen)
        for proposal in getattr(self.review, "proposals", ()):
            total += _mask_bytes(proposal.result, seen) + _array_bytes(proposal.small)
        payloads = self.review_payloads
        if isinstance(payloads, tuple) and len(payloads) == 2:
            total += sum(len(p.get("png", "")) for p in payloads[1].values() if p)
        return total

    def drop_history(self) -> int:
        """Forget the undo/redo history (the objects stay as they are); returns the bytes it
        held, 0 when a request holds the session right now (it is in use: left alone, and
        the budget check never waits for it). Not saved to a project: the objects did not
        change."""
        if not self.lock.acquire(blocking=False):
            return 0
        try:
            seen: set[int] = set()
            before = workspace_nbytes(self._workspace, seen)
            before += sum(_deleted_bytes(entry, seen) for entry in self.deleted)
            self._workspace = self._workspace.without_history()
            self.deleted = []
            self.undo_restores_delete = False
            self.display_cache = None
            return max(0, before - workspace_nbytes(self._workspace))
        finally:
            self.lock.release()

    def export_dir(self, parent: Path | None = None) -> Path:
        """A private temporary folder for this session's downloads (removed on release), made
        inside ``parent`` (the app's temp folder; None: the system's temp folder)."""
        if self._export_dir is None or not self._export_dir.is_dir():
            if parent is not None:
                Path(parent).mkdir(parents=True, exist_ok=True)
            self._export_dir = Path(tempfile.mkdtemp(prefix="export-", dir=parent))
        return self._export_dir

    def release(self) -> None:
        """Drop the image, masks and exported files; the session object stays usable (empty)."""
        self.picture = None
        self.preview = None
        self.link = None
        self.project = None
        self.workspace = Workspace()
        self.generation += 1
        self.released = True
        self.hover = None
        self.display_cache = None
        self.display_jpeg = None
        self.deleted = []
        if self._export_dir is not None:
            shutil.rmtree(self._export_dir, ignore_errors=True)
            self._export_dir = None


class SessionsFullError(ServerBusyError):
    """No session can be opened now: every tracked one is in use, or this address opened too
    many in the last minute."""


@dataclass(frozen=True)
class SessionStats:
    """The registry's numbers (for ``/metrics``): ``bytes`` as last measured (``nbytes`` of
    every session, at the last budget check); ``history_drops``: undo histories dropped for
    the byte bound; ``budget_releases``: idle sessions released for it; ``over_budget``:
    checks that ended over the bound (every session left was active)."""

    sessions: int
    bytes: int
    max_bytes: int | None
    refused: int
    history_drops: int
    budget_releases: int
    over_budget: int


PROTECT_S = 300.0  # a session used in the last five minutes is never evicted
BUDGET_CHECK_S = 1.0  # on use, the byte bound is checked at most this often
NEW_PER_ADDRESS_PER_MINUTE = 60  # new sessions one client address may open in a minute
_ADDRESSES_REMEMBERED = 4096  # bound on the per-address rate table


class SessionRegistry:
    """Live sessions by id, bounded; the idle ones are released first beyond capacity and an
    active one never (see the module docstring)."""

    def __init__(self, capacity: int = 200, protect_s: float = PROTECT_S,
                 new_per_minute: int = NEW_PER_ADDRESS_PER_MINUTE,
                 clock: Callable[[], float] = time.monotonic,
                 max_bytes: int | None = None) -> None:
        self.capacity = max(1, int(capacity))
        self.max_bytes = None if max_bytes is None else max(0, int(max_bytes))
        self._bytes = 0
        self._checked_at = float("-inf")
        self._budget_lock = threading.Lock()  # one budget check at a time
        self.history_drops = self.budget_releases = self.over_budget = 0
        self.protect_s = float(protect_s)
        self.new_per_minute = max(1, int(new_per_minute))
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently active first
        self._active: dict[str, float] = {}
        self._tokens: dict[str, Session] = {}
        self._created: OrderedDict[str, deque[float]] = OrderedDict()
        self.refused = 0  # sessions refused (registry full of active ones, or rate limit)

    def release_value(self, session: Any) -> None:
        """A ``gr.State`` delete callback: free the session's data, tracked here or not."""
        if session is not None and not self.release(session.session_id):
            session.release()

    def track(self, session: Session, address: str | None = None) -> None:
        """Register ``session`` (opened by a client at ``address``, when known).

        Raises:
            SessionsFullError: ``address`` opened too many sessions in the last minute, or
                every tracked session was active in the last ``protect_s`` seconds.
        """
        evicted = []
        with self._lock:
            now = self._clock()
            previous = self._sessions.get(session.session_id)
            if previous is None:
                self._count_new_locked(address, now)
            elif previous is not session:
                self._tokens.pop(getattr(previous, "token", ""), None)
            self._sessions[session.session_id] = session
            self._tokens[session.token] = session
            self._mark_active_locked(session.session_id, now)
            while len(self._sessions) > self.capacity:
                victim = self._idlest_locked(now, spare=session.session_id)
                if victim is None:
                    self._forget_locked(session.session_id)
                    self.refused += 1
                    raise SessionsFullError(
                        f"The server has {self.capacity} pages open and in use. Retry in a "
                        "minute.", 60)
                evicted.append(self._forget_locked(victim))
        for old in evicted:
            old.release()
        self.enforce_budget()

    def touch(self, session_id: str) -> None:
        """Mark a session as in use now (its place in the eviction order is refreshed)."""
        with self._lock:
            if session_id in self._sessions:
                self._mark_active_locked(session_id, self._clock())
            due = self.max_bytes is not None and self._clock() - self._checked_at >= BUDGET_CHECK_S
        if due:
            self.enforce_budget()

    def enforce_budget(self) -> int:
        """Measure every session and, beyond ``max_bytes``, drop undo history (least recently
        used first), then release idle sessions (least recently used first), never an active
        one. Returns the bytes held after the check."""
        if not self._budget_lock.acquire(blocking=False):
            return self._bytes  # another thread is checking right now
        try:
            with self._lock:
                self._checked_at = self._clock()
                order = list(self._sessions.values())  # least recently active first
            sizes = {s.session_id: s.nbytes() for s in order}
            total = sum(sizes.values())
            if self.max_bytes is not None and total > self.max_bytes:
                for session in order:
                    if total <= self.max_bytes:
                        break
                    freed = session.drop_history()
                    if freed:
                        self.history_drops += 1
                        now_bytes = session.nbytes()
                        total -= sizes[session.session_id] - now_bytes
                        sizes[session.session_id] = now_bytes
                for session in order:
                    if total <= self.max_bytes:
                        break
                    if self._release_if_idle(session.session_id):
                        self.budget_releases += 1
                        total -= sizes[session.session_id]
                if total > self.max_bytes:
                    self.over_budget += 1
            self._bytes = total
            return total
        finally:
            self._budget_lock.release()

    def _release_if_idle(self, session_id: str) -> bool:
        with self._lock:
            now = self._clock()
            if session_id not in self._sessions or now - self._active.get(
                    session_id, now) < self.protect_s:
                return False
            session = self._forget_locked(session_id)
        session.release()
        return True

    def stats(self) -> SessionStats:
        with self._lock:
            count = len(self._sessions)
        return SessionStats(count, self._bytes, self.max_bytes, self.refused,
                            self.history_drops, self.budget_releases, self.over_budget)

    def _mark_active_locked(self, session_id: str, now: float) -> None:
        self._active[session_id] = now
        self._sessions.move_to_end(session_id)

    def _idlest_locked(self, now: float, spare: str) -> str | None:
        for session_id in self._sessions:  # least recently active first
            if session_id != spare and now - self._active.get(session_id, now) >= self.protect_s:
                return session_id
        return None

    def _forget_locked(self, session_id: str) -> Session:
        session = self._sessions.pop(session_id)
        self._active.pop(session_id, None)
        self._tokens.pop(session.token, None)
        return session

    def _count_new_locked(self, address: str | None, now: float) -> None:
        if not address:
            return
        times = self._created.setdefault(address, deque())
        self._created.move_to_end(address)
        while times and now - times[0] >= 60.0:
            times.popleft()
        if len(times) >= self.new_per_minute:
            self.refused += 1
            retry = max(1, int(60.0 - (now - times[0])) + 1)
            raise SessionsFullError(
                f"Too many new pages from this address ({self.new_per_minute} a minute). Retry "
                f"in about {retry} s.", retry)
        times.append(now)
        while len(self._created) > _ADDRESSES_REMEMBERED:
            self._created.popitem(last=False)

    def release(self, session_id: str) -> bool:
        """Release and forget a session; False when it was not tracked."""
        with self._lock:
            session = self._forget_locked(session_id) if session_id in self._sessions else None
        if session is None:
            return False
        session.release()
        return True

    def get(self, session_id: str) -> Session | None:
        with self._lock:
            return self._sessions.get(session_id)

    def by_token(self, token: object) -> Session | None:
        """The live session whose page holds ``token``; None for anything else (compared in
        constant time, so the lookup leaks nothing about other tokens)."""
        if not isinstance(token, str) or not 16 <= len(token) <= 64:
            return None
        with self._lock:
            session = self._tokens.get(token)
        if session is None or session.released or not secrets.compare_digest(session.token,
                                                                             token):
            return None
        self.touch(session.session_id)
        return session

    def ids(self) -> list[str]:
        """Live session ids, oldest first."""
        with self._lock:
            return list(self._sessions)

    def __contains__(self, session_id: str) -> bool:
        with self._lock:
            return session_id in self._sessions

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
