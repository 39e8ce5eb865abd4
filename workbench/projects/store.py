"""The project store: a folder of images and everything said about them, saved as it changes.

On disk, in the project folder ``DIR`` (images anywhere under it, referenced by relative POSIX
path, never copied or changed):

* ``samwb-project.json``: name, classes, settings (``project_file``; atomic writes).
* ``samwb-project.sqlite``: images, objects, state (``schema``: tables, indexes, WAL,
  ``synchronous=FULL``, versions and migrations).
* ``.samwb-cache/``: the lock (``lock``), thumbnails (``thumbs/<size>/``); deletable at any
  time, skipped by scans.

Decisions:

* **Threads**: one SQLite connection behind one re-entrant lock. Every call is short (indexed
  queries, one transaction per change), SQLite serialises writers anyway, and one connection
  means one place that opens, migrates and closes. Slow work (decoding an image for a
  thumbnail or a size) runs outside the lock.
* **One app per project**: ``lock.ProjectLock`` (``flock``: freed by the kernel when an app
  dies, even by ``kill -9``). ``open(..., read_only=True)`` takes no lock, so an export or a
  viewer can read a project while the app has it open.
* **A folder nobody can write** opens read-only (``read_only`` is True and says why):
  viewing, thumbnails (made in memory, not cached) and exports work; changes raise
  ProjectError with what to do. Image sizes and read errors found while viewing are facts, not
  edits: on a read-only store they are not stored, and ``set_state`` keeps values in memory.
* **Scans never forget**: an image whose file is gone keeps its objects and is marked with
  the error ``MISSING`` (exports skip it); it is back to normal when the file reappears.
* **Batch runs never overwrite people**: ``replace_run_objects`` replaces a run's own model
  objects, never a person's and never one a person edited.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import navigation, project_file, records, schema
from .files import write_atomic
from .lock import ProjectLock
from .model import (
    ImageEntry,
    LabelClass,
    LabelledImage,
    ProjectError,
    StoredObject,
)
from .scan import record_scan
from .thumbnails import MAX_SIZE, MIN_SIZE, UnreadableImage, make_thumbnail, probe_size

CACHE_DIR = ".samwb-cache"
MISSING = "The file is missing from the project folder."
MAX_REFUSED = 1000  # refusals listed by a scan (the rest are counted)


@dataclass(frozen=True)
class ScanReport:
    """What a scan found: new images, images whose file is gone, and what it refused."""

    added: int
    missing: int
    refused: list[tuple[str, str]] = field(default_factory=list)
    refused_more: int = 0  # refusals beyond the first MAX_REFUSED


@dataclass(frozen=True)
class ImportReport:
    """What an import added, and the problems it skipped (unknown paths, size mismatches)."""

    images: int = 0
    objects: int = 0
    classes_added: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


class ProjectStore:
    """One project, open. Thread-safe; use ``ProjectStore.open`` and close it (or ``with``)."""

    def __init__(self, folder: Path, project: project_file.ProjectFile, conn, lock,
                 read_only_reason: str) -> None:
        self.folder = folder
        self._project = project
        self._conn = conn
        self._file_lock = lock
        self._read_only_reason = read_only_reason
        self._memory_state: dict[str, object] = {}
        self._lock = threading.RLock()
        self._closed = False

    # -- opening and closing -------------------------------------------------------------

    @classmethod
    def open(cls, folder: Path, *, create: bool = False, name: str | None = None,
             read_only: bool = False) -> ProjectStore:
        """Open the project in ``folder`` (``create=True``: make it, then scan, if missing).

        ``read_only=True`` opens for viewing or export without the app lock. A folder that
        cannot be written opens read-only by itself (see ``read_only``).
        """
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise ProjectError(f"{root} is not a folder. Give the folder that holds the images.")
        root = root.resolve()
        pf_path = root / project_file.FILE_NAME
        db_path = root / schema.DB_NAME
        exists = pf_path.exists()
        new_db = not db_path.exists()
        if not exists and not create:
            raise ProjectError(
                f"{root} is not a samwb project yet (no {project_file.FILE_NAME}). Create one "
                "there: the Projects view's \"Create\", or ProjectStore.open(folder, create=True).")
        reason = "it was opened read-only" if read_only else ""
        if not reason and not (_writable(root) and (not exists or _writable(pf_path))
                               and (not db_path.exists() or _writable(db_path))):
            reason = ("its folder is not writable: copy the folder somewhere writable, or ask "
                      "its owner for write access, to change it")
        if reason and not exists:
            raise ProjectError(f"Cannot create a project in {root}: {reason}.")
        lock = None
        if not reason:
            try:
                (root / CACHE_DIR).mkdir(exist_ok=True)
            except OSError as exc:
                raise ProjectError(f"Cannot write in {root} ({exc.strerror}).") from None
            lock = ProjectLock(root / CACHE_DIR)
            lock.acquire()
        try:
            if exists:
                project = project_file.load(pf_path)
            else:
                project = project_file.new_project(name.strip() if name else root.name)
                project_file.save(pf_path, project)
            if reason and not db_path.exists():
                raise ProjectError(f"{db_path} is missing, and {reason}.")
            wal_present = Path(f"{db_path}-wal").exists()
            conn = schema.connect(db_path, read_only=bool(reason),
                                  immutable=bool(reason) and not wal_present
                                  and not _writable(root))
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        store = cls(root, project, conn, lock, reason)
        try:
            if not reason:
                store._adopt_orphan_classes()
            if not exists or new_db:
                store.scan()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Close the database and free the project for another app (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if not self._read_only_reason:
                    with contextlib.suppress(Exception):
                        self._conn.execute("PRAGMA optimize")
                self._conn.close()
            finally:
                if self._file_lock is not None:
                    self._file_lock.release()

    def __enter__(self) -> ProjectStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def name(self) -> str:
        return self._project.name

    @property
    def read_only(self) -> bool:
        return bool(self._read_only_reason)

    @property
    def read_only_reason(self) -> str:
        """Why the store is read-only ('' when it is not)."""
        return self._read_only_reason

    # -- internals ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _read(self) -> Iterator:
        with self._lock:
            if self._closed:
                raise ProjectError("This project was closed; open it again.")
            try:
                yield self._conn
            except Exception as exc:
                if isinstance(exc, ProjectError) or not _is_sqlite_error(exc):
                    raise
                raise ProjectError(f"The project database could not be read ({exc}).") from None

    @contextlib.contextmanager
    def _write(self) -> Iterator:
        """One transaction (``BEGIN IMMEDIATE`` .. ``COMMIT``), or ProjectError when read-only."""
        with self._read() as conn:
            self._require_writable()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if _is_sqlite_error(exc):
                    raise ProjectError(
                        f"The project database could not be written ({exc}).") from None
                raise

    def _require_writable(self) -> None:
        if self._read_only_reason:
            raise ProjectError(f"This project is open read-only ({self._read_only_reason}).")

    def _save_project(self, project: project_file.ProjectFile) -> None:
        self._require_writable()
        try:
            project_file.save(self.folder / project_file.FILE_NAME, project)
        except OSError as exc:
            raise ProjectError(f"The project file could not be written ({exc}).") from None
        self._project = project

    def _adopt_orphan_classes(self) -> None:
        """Objects whose class is not in the project file (a hand edit) get it back."""
        with self._read() as conn:
            used = [r[0] for r in conn.execute("SELECT DISTINCT class_id FROM objects")]
        project = project_file.with_classes_back(self._project, used)
        if project is not self._project:
            self._save_project(project)

    def _check_image(self, conn, image_id: int) -> None:
        if conn.execute("SELECT 1 FROM images WHERE id = ?", (int(image_id),)).fetchone() is None:
            raise ProjectError(f"There is no image {image_id} in this project.")

    def _check_class(self, class_id: int) -> None:
        project_file.class_with_id(self._project, class_id)

    # -- images ---------------------------------------------------------------------------

    def scan(self) -> ScanReport:
        """Add the folder's new images; mark those whose file is gone (see the module doc)."""
        with self._write() as conn:
            found = record_scan(conn, self.folder, MISSING, MAX_REFUSED)
        return ScanReport(**found)

    def image_path(self, image_id: int) -> Path:
        """The image's file: absolute, links resolved, inside the folder (else ProjectError)."""
        with self._read() as conn:
            row = conn.execute("SELECT path FROM images WHERE id = ?", (int(image_id),)).fetchone()
        if row is None:
            raise ProjectError(f"There is no image {image_id} in this project.")
        path = (self.folder / row[0]).resolve()
        if not path.is_relative_to(self.folder):
            raise ProjectError(f"{row[0]} leads outside the project folder; it is not opened.")
        return path

    def image_id_of(self, relative: str) -> int | None:
        """The id of the image at ``relative`` (``/`` separators), or None."""
        with self._read() as conn:
            row = conn.execute("SELECT id FROM images WHERE path = ?",
                               (str(relative).replace("\\", "/").removeprefix("./"),)
                               ).fetchone()
        return None if row is None else int(row[0])

    def image_size(self, relative: str) -> tuple[int, int] | None:
        """(width, height) of the image at ``relative`` (read from its header and recorded
        when not known yet); None for a path the project does not have or cannot read."""
        image_id = self.image_id_of(relative)
        if image_id is None:
            return None
        entry = self.entry(image_id)
        if entry.width and entry.height:
            return entry.width, entry.height
        try:
            width, height = probe_size(self.image_path(image_id))
        except (UnreadableImage, ProjectError, OSError):
            return None
        self.set_image_size(image_id, width, height)
        return width, height

    @property
    def project_file(self) -> Path:
        return self.folder / project_file.FILE_NAME

    @property
    def database_file(self) -> Path:
        return self.folder / schema.DB_NAME

    def backup(self, target: Path) -> Path:
        """A consistent copy of the database at ``target`` (SQLite's online backup: pages
        keep saving meanwhile), e.g. for a download of the whole project."""
        target = Path(target)
        target.unlink(missing_ok=True)
        copy = sqlite3.connect(target)
        try:
            with self._read() as conn:
                conn.backup(copy)
        finally:
            copy.close()
        return target

    def set_image_size(self, image_id: int, width: int, height: int) -> None:
        """Record the size found when the image was read (clears an earlier read error)."""
        if not all(isinstance(v, int) and v > 0 for v in (width, height)):
            raise ProjectError(f"An image size is two positive whole numbers, got {width, height}.")
        if self.read_only:
            return
        with self._write() as conn:
            conn.execute("UPDATE images SET width = ?, height = ?, error = '', updated_at = ? "
                         "WHERE id = ?", (width, height, time.time(), int(image_id)))

    def record_image_error(self, image_id: int, reason: str) -> None:
        """Mark an image unreadable (runs, exports and "next unfinished" skip it)."""
        if self.read_only:
            return
        with self._write() as conn:
            conn.execute("UPDATE images SET error = ?, updated_at = ? WHERE id = ?",
                         (str(reason)[:500] or "unreadable", time.time(), int(image_id)))

    def set_status(self, image_id: int, status: str) -> None:
        navigation.check_status(status)
        if status is None:
            raise ProjectError("An image needs a status, e.g. \"done\".")
        with self._write() as conn:
            cur = conn.execute("UPDATE images SET status = ?, updated_at = ? WHERE id = ?",
                               (status, time.time(), int(image_id)))
            if cur.rowcount == 0:
                raise ProjectError(f"There is no image {image_id} in this project.")

    # -- navigation (navigation.py holds the queries) ---------------------------------------

    def count(self, status: str | None = None, class_id: int | None = None) -> int:
        with self._read() as conn:
            return navigation.count(conn, status, class_id)

    def status_counts(self) -> dict[str, int]:
        """Images per status, every status present (0 when none)."""
        with self._read() as conn:
            return navigation.status_counts(conn)

    def page(self, offset: int, limit: int, status: str | None = None,
             class_id: int | None = None) -> list[ImageEntry]:
        """Up to ``limit`` (at most 1000) images from ``offset``, in natural path order."""
        with self._read() as conn:
            return navigation.page(conn, offset, limit, status, class_id)

    def entry(self, image_id: int) -> ImageEntry:
        with self._read() as conn:
            return navigation.entry(conn, image_id)

    def neighbour(self, image_id: int, step: int, status: str | None = None,
                  class_id: int | None = None) -> ImageEntry | None:
        """The image ``step`` places after (negative: before) this one under the filter."""
        with self._read() as conn:
            return navigation.neighbour(conn, image_id, step, status, class_id)

    def next_unfinished(self, after_image_id: int | None) -> ImageEntry | None:
        with self._read() as conn:
            return navigation.next_unfinished(conn, after_image_id)

    def index_of(self, image_id: int, status: str | None = None,
                 class_id: int | None = None) -> int:
        with self._read() as conn:
            return navigation.index_of(conn, image_id, status, class_id)

    # -- classes and settings ---------------------------------------------------------------

    def classes(self) -> list[LabelClass]:
        with self._lock:
            return list(self._project.classes)

    def next_class_color(self) -> str:
        """The colour ``add_class`` gives a class when none is chosen."""
        with self._lock:
            return project_file.next_class_color(self._project)

    def class_by_name(self, name: str) -> LabelClass | None:
        """The class of that name, ignoring case and extra spaces."""
        with self._lock:
            return project_file.class_named(self._project, name)

    def add_class(self, name: str, color: str | None = None) -> LabelClass:
        with self._lock:
            project, label = project_file.with_new_class(self._project, name, color)
            self._save_project(project)
            return label

    def update_class(self, class_id: int, name: str | None = None,
                     color: str | None = None) -> LabelClass:
        with self._lock:
            project, label = project_file.with_changed_class(self._project, class_id, name,
                                                             color)
            self._save_project(project)
            return label

    def remove_class(self, class_id: int, reassign_to: int | None) -> None:
        """Remove a class; its objects move to ``reassign_to`` (required when it has any)."""
        with self._lock:
            self._check_class(class_id)
            if len(self._project.classes) == 1:
                raise ProjectError("A project keeps at least one class; add another first.")
            if reassign_to is not None:
                self._check_class(reassign_to)
                if reassign_to == class_id:
                    raise ProjectError("Move the objects to another class than the one removed.")
            with self._write() as conn:
                used = conn.execute("SELECT COUNT(*) FROM objects WHERE class_id = ?",
                                    (class_id,)).fetchone()[0]
                if used and reassign_to is None:
                    raise ProjectError(f"{used} objects have this class: choose a class to move "
                                       "them to, or delete them first.")
                if used:
                    conn.execute("UPDATE objects SET class_id = ?, updated_at = ? "
                                 "WHERE class_id = ?", (reassign_to, time.time(), class_id))
            classes = tuple(c for c in self._project.classes if c.class_id != class_id)
            self._save_project(replace(self._project, classes=classes))

    def settings(self) -> dict:
        with self._lock:
            return dict(self._project.settings)

    def update_settings(self, values: Mapping) -> dict:
        """Merge ``values`` into the project file's settings (JSON values); returns them all."""
        with self._lock:
            settings = {**self._project.settings, **dict(values)}
            self._save_project(replace(self._project, settings=settings))
            return dict(settings)

    # -- objects ----------------------------------------------------------------------------

    def objects(self, image_id: int) -> list[StoredObject]:
        with self._read() as conn:
            return records.select_objects(conn, image_id)

    def next_local_id(self, image_id: int) -> int:
        with self._read() as conn:
            return records.next_local_id(conn, image_id)

    def sync_objects(self, image_id: int, upserts: Sequence[StoredObject],
                     delete_local_ids: Sequence[int]) -> None:
        """Write an image's changed objects and deletions in one transaction.

        Upserts match on (image_id, local_id): ``created_at`` of an existing object is kept,
        ``updated_at`` becomes now.
        """
        now = time.time()
        with self._lock:
            for obj in upserts:
                if obj.image_id != image_id:
                    raise ProjectError(f"Object {obj.local_id} belongs to image {obj.image_id}, "
                                       f"not {image_id}.")
                self._check_class(obj.class_id)
            rows = [records.object_params(obj, image_id, obj.local_id, now) for obj in upserts]
            with self._write() as conn:
                self._check_image(conn, image_id)
                records.upsert(conn, rows)
                conn.executemany("DELETE FROM objects WHERE image_id = ? AND local_id = ?",
                                 [(int(image_id), int(i)) for i in delete_local_ids])
                conn.execute("UPDATE images SET updated_at = ? WHERE id = ?", (now, image_id))

    def replace_run_objects(self, image_id: int, run_key_prefix: str,
                            objects: Sequence[StoredObject], *,
                            state: Mapping[str, object] | None = None) -> list[StoredObject]:
        """A batch run's result for one image: its earlier objects (model-made, unedited, run
        key starting with the prefix) are replaced; new local ids follow the image's highest
        (never reusing one a canvas may still show). A "new" image becomes "auto". Returns the
        objects as stored.

        ``state``: values (as ``set_state``) written in the same transaction, e.g. the run's
        "this image is done" marker, so a crash leaves both or neither."""
        state_rows = [(str(k), _state_json(v)) for k, v in (state or {}).items()]
        if not run_key_prefix:
            raise ProjectError("A batch run needs a run key prefix, e.g. \"text:car:\".")
        now = time.time()
        with self._lock:
            for obj in objects:
                self._check_class(obj.class_id)
                if not obj.run_key.startswith(run_key_prefix):
                    raise ProjectError(f"Run key {obj.run_key!r} does not start with "
                                       f"{run_key_prefix!r}.")
            with self._write() as conn:
                self._check_image(conn, image_id)
                first = records.next_local_id(conn, image_id)
                conn.execute("DELETE FROM objects WHERE image_id = ? AND source = 'model' AND "
                             "edited = 0 AND substr(run_key, 1, ?) = ?",
                             (int(image_id), len(run_key_prefix), run_key_prefix))
                stored = [replace(obj, image_id=image_id, local_id=first + i, source="model",
                                  created_at=now, updated_at=now)
                          for i, obj in enumerate(objects)]
                records.upsert(conn, [records.object_params(o, image_id, o.local_id, now)
                                      for o in stored])
                status_sql = ", status = 'auto'" if stored else ""
                conn.execute(f"UPDATE images SET updated_at = ?{status_sql} WHERE id = ? "
                             "AND status = 'new'", (now, image_id))
                conn.executemany(_UPSERT_STATE, state_rows)
        return stored

    # -- state ------------------------------------------------------------------------------

    def get_state(self, key: str, default=None):
        """A value kept across restarts (JSON data), e.g. the last opened image id."""
        with self._read() as conn:
            if key in self._memory_state:
                return self._memory_state[key]
            row = conn.execute("SELECT value FROM state WHERE key = ?", (str(key),)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_state(self, key: str, value) -> None:
        text = _state_json(value)
        if self.read_only:
            with self._lock:
                self._memory_state[str(key)] = json.loads(text)
            return
        with self._write() as conn:
            conn.execute(_UPSERT_STATE, (str(key), text))

    def state_with_prefix(self, prefix: str) -> dict[str, object]:
        """Every stored state value whose key starts with ``prefix`` (e.g. a batch run's
        per-image markers), by key."""
        with self._read() as conn:
            rows = conn.execute("SELECT key, value FROM state WHERE key >= ? AND key < ?",
                                (prefix, prefix + "\U0010ffff")).fetchall()
        found = {key: json.loads(value) for key, value in rows}
        with self._lock:
            found.update({k: v for k, v in self._memory_state.items() if k.startswith(prefix)})
        return found

    # -- thumbnails ---------------------------------------------------------------------------

    def thumbnail(self, image_id: int, size: int = 160) -> bytes:
        """A JPEG of at most ``size`` pixels a side (16..1024), cached in .samwb-cache/thumbs.

        The first request decodes the image (and records its size); an unreadable image is
        recorded (``record_image_error``) and raises ProjectError with the reason.
        """
        size = max(MIN_SIZE, min(MAX_SIZE, int(size)))
        path = self.image_path(image_id)
        entry = self.entry(image_id)
        digest = hashlib.sha1(entry.path.encode("utf-8")).hexdigest()[:12]
        cached = self.folder / CACHE_DIR / "thumbs" / str(size) / f"{image_id}-{digest}.jpg"
        with contextlib.suppress(OSError):
            if cached.stat().st_mtime_ns >= path.stat().st_mtime_ns:
                return cached.read_bytes()
        try:
            data, (width, height) = make_thumbnail(path, size)
        except UnreadableImage as exc:
            self.record_image_error(image_id, str(exc))
            raise ProjectError(f"{entry.path}: {exc}.") from None
        if (entry.width, entry.height) != (width, height) or entry.error:
            self.set_image_size(image_id, width, height)
        if not self.read_only:
            with contextlib.suppress(OSError):
                write_atomic(cached, data)  # a cache: no fsync
        return data

    # -- exports and imports (exchange.py) ----------------------------------------------------

    def iter_labelled(self, status: str | None = None) -> Iterator[LabelledImage]:
        """Every readable image (optionally of one status) with its objects, streamed in pages.

        An image whose size is not known yet has its header read (and the size recorded); one
        that cannot be read is recorded as an error and skipped.
        """
        from .exchange import iter_labelled

        return iter_labelled(self, status)

    def import_objects(self, images: Iterable[LabelledImage], class_names: Sequence[str] |
                       Mapping[int, str], source: str = "model") -> ImportReport:
        """Add objects read from a dataset file; see ``exchange.import_objects``."""
        from .exchange import import_objects

        return import_objects(self, images, class_names, source)


_UPSERT_STATE = ("INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) "
                 "DO UPDATE SET value = excluded.value")


def _state_json(value) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ProjectError(f"A state value must be plain JSON data ({exc}).") from None


def _is_sqlite_error(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.Error)
