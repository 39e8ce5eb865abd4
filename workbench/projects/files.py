"""The one way a project writes a file: whole or not at all.

A temporary file in the same folder, then ``os.replace`` (atomic on one file system), so a
crash or ``kill -9`` leaves the old file or the new one, never half of one. ``durable`` also
fsyncs the data and the folder, so the write survives a power cut: for the project file, which
holds the classes; not for caches (thumbnails), which are made again when lost.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, durable: bool = False, prefix: str = ".tmp-"
                 ) -> None:
    """Replace ``path`` with ``data`` (its folder made if missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
