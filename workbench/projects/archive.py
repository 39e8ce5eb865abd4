"""Label ZIPs from the page, unpacked safely: YOLO and LabelMe labels are folders, and a
browser uploads one file.

Bounded (entries, bytes after unpacking, the ratio that marks a ZIP bomb) and confined: an
entry whose name is absolute, climbs out with ``..``, or is a link is skipped; sizes are
checked while reading, not trusted from the directory.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path, PurePosixPath

from workbench.projects.model import ProjectError

MAX_ENTRIES = 200_000
MAX_BYTES = 512 << 20  # unpacked
CHUNK = 1 << 20


def extract_labels_zip(archive: Path, out_dir: Path, max_bytes: int = MAX_BYTES,
                       max_entries: int = MAX_ENTRIES) -> Path:
    """Unpack ``archive`` into ``out_dir`` (made) and return it; ProjectError when the ZIP is
    not one, or holds more than the bounds allow."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = 0
    try:
        with zipfile.ZipFile(archive) as zipped:
            entries = zipped.infolist()
            if len(entries) > max_entries:
                raise ProjectError(f"The ZIP holds {len(entries):,} files; at most "
                                   f"{max_entries:,} are read.")
            for info in entries:
                target = _target(out_dir, info)
                if target is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(info) as source, open(target, "wb") as sink:
                    while chunk := source.read(CHUNK):
                        total += len(chunk)
                        if total > max_bytes:
                            raise ProjectError(
                                f"The ZIP unpacks to more than {max_bytes >> 20} MiB of labels; "
                                "split it, or import a folder with `samwb import`.")
                        sink.write(chunk)
    except zipfile.BadZipFile as exc:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise ProjectError("That file is not a readable ZIP.") from exc
    except ProjectError:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return out_dir


def _target(out_dir: Path, info: zipfile.ZipInfo) -> Path | None:
    """Where an entry goes, or None to skip it (folders, links, names leading out)."""
    if info.is_dir():
        return None
    if (info.external_attr >> 16) & 0o170000 == 0o120000:  # a symbolic link
        return None
    name = PurePosixPath(info.filename.replace("\\", "/"))
    if name.is_absolute() or ".." in name.parts or not name.parts:
        return None
    return out_dir.joinpath(*name.parts)
