"""Finding a project's images: a streaming walk of the folder that never opens a file.

``walk(root)`` yields ``(relative_path, None)`` for each image file and
``(relative_path, reason)`` for each thing it refuses, one at a time (``os.scandir``, a stack of
folders still to visit), so 100,000 files cost one folder listing at a time, not a list of
100,000 paths. Rules:

* images are files whose suffix (any case) is in ``IMAGE_SUFFIXES``; whether the content is an
  image is found out when it is first read (``ProjectStore.record_image_error``);
* hidden files and folders (a leading ``.``) are skipped: that covers ``.samwb-cache`` and the
  project's own temp files, ``.git`` and the like;
* a symbolic link (file or folder) that leads outside the folder is refused; a link to a
  folder inside it is not followed (its images are listed under their real path, and a link
  to a parent cannot loop); a link to a file inside is listed under its own name;
* names are any valid UTF-8 (spaces, unicode, quotes...); a name that is not valid UTF-8
  cannot be stored and is refused with the advice to rename it.

``record_scan`` stores a walk in the project database inside the caller's transaction: new
paths are inserted ``SCAN_BATCH`` at a time, the paths seen go to a temporary table (on disk,
not in Python), and images not seen are marked missing with one ``UPDATE``.

``sort_key`` gives the natural order the lists use ("img2" before "img10", case-insensitive),
made unique by the path itself.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
OUTSIDE = "a link that leads outside the project folder"
INNER_FOLDER_LINK = "a link to a folder inside the project (listed under its real path)"
BAD_NAME = "the name is not valid UTF-8: rename the file"
SCAN_BATCH = 1000
_DIGITS = re.compile(r"(\d+)")


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def sort_key(path: str) -> str:
    """Natural, case-insensitive order; folders before names that merely share a prefix."""
    parts = _DIGITS.split(path.casefold().replace("/", "\x01"))
    for i in range(1, len(parts), 2):
        digits = parts[i].lstrip("0") or "0"
        parts[i] = f"{len(digits):03d}{digits}"  # length first: 9 < 10 < 100
    return "".join(parts) + "\x00" + path


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def walk(root: Path) -> Iterator[tuple[str, str | None]]:
    """Yield ``(relative POSIX path, None)`` per image and ``(path, reason)`` per refusal."""
    root_real = os.path.realpath(root)
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = os.scandir(folder)
        except OSError as exc:
            yield prefix or ".", f"the folder cannot be read ({exc.strerror})"
            continue
        subfolders: list[tuple[str, str]] = []
        with entries:
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue
                rel = f"{prefix}/{name}" if prefix else name
                try:
                    rel.encode("utf-8")
                except UnicodeEncodeError:
                    yield rel.encode("utf-8", "backslashreplace").decode("ascii"), BAD_NAME
                    continue
                try:
                    is_link = entry.is_symlink()
                    is_dir = entry.is_dir(follow_symlinks=True)
                except OSError:
                    continue
                if is_link:
                    if not _inside(os.path.realpath(entry.path), root_real):
                        if is_dir or is_image_name(name):
                            yield rel, OUTSIDE
                        continue
                    if is_dir:
                        yield rel, INNER_FOLDER_LINK
                        continue
                if is_dir:
                    subfolders.append((entry.path, rel))
                elif is_image_name(name) and entry.is_file(follow_symlinks=True):
                    yield rel, None
        stack.extend(reversed(subfolders))


def record_scan(conn: sqlite3.Connection, root: Path, missing_error: str,
                max_refused: int) -> dict:
    """Walk ``root`` into the ``images`` table; returns the ``ScanReport`` fields."""
    now = time.time()
    refused: list[tuple[str, str]] = []
    refused_more = 0
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS seen (path TEXT PRIMARY KEY) WITHOUT ROWID")
    conn.execute("DELETE FROM temp.seen")
    before = conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    batch: list[str] = []

    def flush() -> None:
        conn.executemany("INSERT OR IGNORE INTO temp.seen (path) VALUES (?)",
                         [(p,) for p in batch])
        conn.executemany(
            "INSERT INTO images (path, sort_key, added_at, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET error = '', updated_at = excluded.updated_at "
            "WHERE error = ?", [(p, sort_key(p), now, now, missing_error) for p in batch])
        batch.clear()

    for rel, reason in walk(root):
        if reason is None:
            batch.append(rel)
            if len(batch) >= SCAN_BATCH:
                flush()
        elif len(refused) < max_refused:
            refused.append((rel, reason))
        else:
            refused_more += 1
    flush()
    after = conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    conn.execute("UPDATE images SET error = ?, updated_at = ? WHERE error != ? "
                 "AND path NOT IN (SELECT path FROM temp.seen)",
                 (missing_error, now, missing_error))
    missing = conn.execute("SELECT COUNT(*) FROM images WHERE error = ?",
                           (missing_error,)).fetchone()[0]
    conn.execute("DELETE FROM temp.seen")
    return {"added": after - before, "missing": missing, "refused": refused,
            "refused_more": refused_more}
