"""The image list's queries: counts, pages, neighbours and positions under a filter.

Every query walks an index, never the table in Python: images are ordered by ``sort_key``
(unique, natural order, see ``scan.sort_key``), a status filter uses
``images_by_status(status, sort_key)`` and a class filter the set of images holding an object
of that class (``objects_by_class``). The object count of a listed image is one lookup in the
``UNIQUE (image_id, local_id)`` index. Neighbours are keyset queries (``sort_key > ?``), so the
next image is found in the same time on the first and the 100,000th image, and an image that
no longer matches the filter (just marked done) still has a next and a previous.

All functions take the caller's connection; the store holds its lock around them.
"""

from __future__ import annotations

import sqlite3

from .model import STATUSES, UNFINISHED, ImageEntry, ProjectError

ENTRY_COLUMNS = ("i.id, i.path, i.status, i.width, i.height, i.error, "
                 "(SELECT COUNT(*) FROM objects o WHERE o.image_id = i.id)")
MAX_PAGE = 1000


def entry_from_row(row: tuple) -> ImageEntry:
    image_id, path, status, width, height, error, count = row
    return ImageEntry(image_id=image_id, path=path, status=status, width=width, height=height,
                      object_count=count, error=error)


def check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise ProjectError(f"Unknown status {status!r}; the statuses are {', '.join(STATUSES)}.")


def _filter(status: str | None, class_id: int | None) -> tuple[list[str], list]:
    check_status(status)
    clauses: list[str] = []
    params: list = []
    if status is not None:
        clauses.append("i.status = ?")
        params.append(status)
    if class_id is not None:
        clauses.append("i.id IN (SELECT image_id FROM objects WHERE class_id = ?)")
        params.append(int(class_id))
    return clauses, params


def _where(clauses: list[str]) -> str:
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


def sort_key_of(conn: sqlite3.Connection, image_id: int) -> str:
    row = conn.execute("SELECT sort_key FROM images WHERE id = ?", (int(image_id),)).fetchone()
    if row is None:
        raise ProjectError(f"There is no image {image_id} in this project.")
    return row[0]


def entry(conn: sqlite3.Connection, image_id: int) -> ImageEntry:
    row = conn.execute(f"SELECT {ENTRY_COLUMNS} FROM images i WHERE i.id = ?",
                       (int(image_id),)).fetchone()
    if row is None:
        raise ProjectError(f"There is no image {image_id} in this project.")
    return entry_from_row(row)


def count(conn: sqlite3.Connection, status: str | None, class_id: int | None) -> int:
    clauses, params = _filter(status, class_id)
    return conn.execute(f"SELECT COUNT(*) FROM images i{_where(clauses)}", params).fetchone()[0]


def status_counts(conn: sqlite3.Connection) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for status, n in conn.execute("SELECT status, COUNT(*) FROM images GROUP BY status"):
        counts[status] = n
    return counts


def page(conn: sqlite3.Connection, offset: int, limit: int, status: str | None,
         class_id: int | None) -> list[ImageEntry]:
    offset, limit = int(offset), int(limit)
    if offset < 0 or limit < 0:
        raise ProjectError("A page needs offset >= 0 and limit >= 0.")
    clauses, params = _filter(status, class_id)
    rows = conn.execute(
        f"SELECT {ENTRY_COLUMNS} FROM images i{_where(clauses)} ORDER BY i.sort_key "
        "LIMIT ? OFFSET ?", [*params, min(limit, MAX_PAGE), offset]).fetchall()
    return [entry_from_row(row) for row in rows]


def neighbour(conn: sqlite3.Connection, image_id: int, step: int, status: str | None,
              class_id: int | None) -> ImageEntry | None:
    step = int(step)
    key = sort_key_of(conn, image_id)
    if step == 0:
        return entry(conn, image_id)
    clauses, params = _filter(status, class_id)
    clauses.append("i.sort_key > ?" if step > 0 else "i.sort_key < ?")
    order = "" if step > 0 else " DESC"
    row = conn.execute(
        f"SELECT {ENTRY_COLUMNS} FROM images i{_where(clauses)} ORDER BY i.sort_key{order} "
        "LIMIT 1 OFFSET ?", [*params, key, abs(step) - 1]).fetchone()
    return None if row is None else entry_from_row(row)


def index_of(conn: sqlite3.Connection, image_id: int, status: str | None,
             class_id: int | None) -> int:
    """The image's 0-based position in the filtered list (where it would be, if filtered out)."""
    key = sort_key_of(conn, image_id)
    clauses, params = _filter(status, class_id)
    clauses.append("i.sort_key < ?")
    return conn.execute(f"SELECT COUNT(*) FROM images i{_where(clauses)}",
                        [*params, key]).fetchone()[0]


def next_unfinished(conn: sqlite3.Connection, after_image_id: int | None) -> ImageEntry | None:
    """The first readable image in ``UNFINISHED`` after this one, wrapping around.

    One indexed probe per unfinished status (a single ``status IN (...)`` query would have to
    merge three index ranges and may walk the whole table when most images are done).
    """
    start = "" if after_image_id is None else sort_key_of(conn, after_image_id)
    for bound in (start, ""):
        keys = []
        for status in UNFINISHED:
            row = conn.execute(
                "SELECT sort_key FROM images WHERE status = ? AND sort_key > ? AND error = '' "
                "ORDER BY sort_key LIMIT 1", (status, bound)).fetchone()
            if row is not None:
                keys.append(row[0])
        if keys:
            row = conn.execute(f"SELECT {ENTRY_COLUMNS} FROM images i WHERE i.sort_key = ?",
                               (min(keys),)).fetchone()
            return entry_from_row(row)
        if not start:
            break
    return None
