"""The project database: its schema, its version and the migrations that bring it up to date.

``DIR/samwb-project.sqlite`` (schema version 2, in ``PRAGMA user_version``)::

    images   id INTEGER PRIMARY KEY AUTOINCREMENT  -- stable, never reused (thumbnail names)
             path TEXT NOT NULL UNIQUE             -- relative to DIR, '/' separators
             sort_key TEXT NOT NULL UNIQUE         -- natural order ("img2" < "img10"), see scan
             status TEXT NOT NULL DEFAULT 'new'    -- model.STATUSES (checked in Python, so a
                                                   -- new status needs no table rebuild)
             width, height INTEGER NULL            -- known once the image was first read
             error TEXT NOT NULL DEFAULT ''        -- why it cannot be read ('' = fine)
             added_at, updated_at REAL             -- unix seconds
    objects  id INTEGER PRIMARY KEY
             image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE
             local_id INTEGER NOT NULL CHECK (local_id >= 1)  -- the canvas's object id
             class_id INTEGER NOT NULL              -- a class of the project file
             instance_name TEXT NOT NULL DEFAULT ''
             rle_h, rle_w INTEGER NOT NULL          -- the mask's size (the image's)
             rle_counts TEXT NOT NULL               -- COCO compressed RLE counts
             source TEXT NOT NULL CHECK (source IN ('person', 'model'))
             model_id TEXT NOT NULL DEFAULT ''
             prompts TEXT NOT NULL DEFAULT '{}'     -- JSON: points, labels, box
             score REAL NULL
             run_key TEXT NOT NULL DEFAULT ''       -- batch run that made it ('' = a person)
             edited INTEGER NOT NULL DEFAULT 0      -- 1 once a person changed it by hand
                                                   -- (an update never sets it back to 0)
             hidden INTEGER NOT NULL DEFAULT 0      -- 1: not drawn on the canvas (v2)
             locked INTEGER NOT NULL DEFAULT 0      -- 1: refuses edits until unlocked (v2)
             created_at, updated_at REAL
             edit_add, edit_remove TEXT NULL        -- (v2) the hand edits as a layer: RLE
                                                   -- counts of the pixels painted in and
                                                   -- erased, same size; NULL = no layer
             model_counts TEXT NULL                 -- (v2) the model's own mask under that
                                                   -- layer (RLE counts; NULL = none)
             UNIQUE (image_id, local_id)            -- also the image -> objects index
    state    key TEXT PRIMARY KEY, value TEXT       -- JSON values (last image, view settings)

Indexes: ``images_by_status(status, sort_key)`` (filtered lists and "next unfinished" walk
one index range), ``objects_by_class(class_id, image_id)`` (class filter, class removal);
``UNIQUE (image_id, local_id)`` serves an image's objects and its object count, so a page of
images with counts is one indexed lookup per row at any project size.

Connection settings: WAL (readers never block the writer, a crash leaves the last committed
state), ``synchronous=FULL`` (each commit is fsynced to the WAL: an annotation is written when
it is made and survives a power cut, not only a ``kill -9``; commits are human-paced, one per
edit, and cost about a millisecond on an SSD, so NORMAL's saving buys nothing here),
``foreign_keys=ON``, ``busy_timeout`` 5 s (a read-only viewer or export in another process may
hold a read snapshot during a checkpoint).

``rle_counts`` is always the mask as shown, edits included: exports and batch runs read it
alone. The layer (v2) is what lets a later click keep the edits: the model predicts a new mask
and the same add/remove pixels go on top (``workbench.objects.MaskEdits``); without it a reopened
object's edits would be baked in and lost at the next click. Rows written before v2 have no
layer (NULL): their edits stay baked into ``rle_counts``, as they were saved.

Migrations: ``MIGRATIONS[n]`` takes a version-n database to n+1. ``migrate`` runs every
missing step and the new ``user_version`` in ONE transaction, so a failure leaves the file as
it was. A database newer than ``SCHEMA_VERSION`` is refused before anything is written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from .model import ProjectError

DB_NAME = "samwb-project.sqlite"
BUSY_TIMEOUT_MS = 5000


def _v0_to_v1(conn: sqlite3.Connection) -> None:
    """The first schema (an empty database is version 0)."""
    conn.execute("""
        CREATE TABLE images (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL UNIQUE,
            sort_key TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL DEFAULT 'new',
            width INTEGER,
            height INTEGER,
            error TEXT NOT NULL DEFAULT '',
            added_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""")
    conn.execute("""
        CREATE TABLE objects (
            id INTEGER PRIMARY KEY,
            image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            local_id INTEGER NOT NULL CHECK (local_id >= 1),
            class_id INTEGER NOT NULL,
            instance_name TEXT NOT NULL DEFAULT '',
            rle_h INTEGER NOT NULL,
            rle_w INTEGER NOT NULL,
            rle_counts TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('person', 'model')),
            model_id TEXT NOT NULL DEFAULT '',
            prompts TEXT NOT NULL DEFAULT '{}',
            score REAL,
            run_key TEXT NOT NULL DEFAULT '',
            edited INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (image_id, local_id)
        )""")
    conn.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("CREATE INDEX images_by_status ON images(status, sort_key)")
    conn.execute("CREATE INDEX objects_by_class ON objects(class_id, image_id)")


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """Hand edits as a layer over the model's mask (NULL columns: old rows read as before),
    and whether an object is hidden or locked (``workbench.objects.SegObject``), so a reload
    shows the list as the annotator left it."""
    for column in ("edit_add", "edit_remove", "model_counts"):
        conn.execute(f"ALTER TABLE objects ADD COLUMN {column} TEXT")
    conn.execute("ALTER TABLE objects ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE objects ADD COLUMN locked INTEGER NOT NULL DEFAULT 0")


Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = [_v0_to_v1, _v1_to_v2]


def schema_version() -> int:
    """The newest version this samwb reads and writes (the number of migrations)."""
    return len(MIGRATIONS)


def connect(db_path: Path, *, read_only: bool = False, immutable: bool = False
            ) -> sqlite3.Connection:
    """A connection, version-checked and migrated (unless read-only), with the settings above.

    The version is read before any setting that could write (journal mode), so a database
    from a newer samwb is left byte-for-byte untouched. ``immutable`` is for a folder nobody
    can write: SQLite then needs no -wal/-shm files and takes no locks.
    """
    if read_only:
        query = "immutable=1" if immutable else "mode=ro"
        uri = f"{db_path.resolve().as_uri()}?{query}"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        version = check_version(conn, db_path)
        if not read_only:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        if version < schema_version():
            if read_only:
                raise ProjectError(
                    f"{db_path} uses an older layout (schema {version}) that must be upgraded "
                    "before it can be read: open the project once where its folder is writable.")
            migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def check_version(conn: sqlite3.Connection, db_path: Path) -> int:
    """The database's schema version; ProjectError when it is not a samwb database or newer."""
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise ProjectError(f"{db_path} is not a samwb project database ({exc}). Move it away "
                           "to start the project's database afresh.") from None
    newest = schema_version()
    if version > newest:
        raise ProjectError(f"{db_path} was written by a newer samwb (schema {version}, this one "
                           f"reads up to {newest}): upgrade samwb.")
    return version


def migrate(conn: sqlite3.Connection, migrations: list[Migration] | None = None) -> int:
    """Run the missing migrations in one transaction; returns the new version."""
    steps = MIGRATIONS if migrations is None else migrations
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for step in steps[version:]:
            step(conn)
        conn.execute(f"PRAGMA user_version = {len(steps)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(steps)
