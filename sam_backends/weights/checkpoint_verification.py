"""Checking that a file under an official catalogue name really is the official file.

Why: a checkpoint with flipped bytes can still unpickle and load strictly, and the model then
serves NaN scores and empty masks without any error. Comparing the catalogue's SHA-256 catches
it before the file is read.

Why a record: hashing 2.5 GB takes seconds, so each result is remembered in ``.verified.json``
in the checkpoints folder, keyed by file name, size and ``st_mtime_ns``; a restart re-hashes only
files that changed. The record is a cache, never a source of truth: when it is missing, corrupt
or cannot be written, files are simply hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointCorruptError, CheckpointHashMismatchError
from ..registry import ModelSpec

RECORD_FILE = ".verified.json"
CHECKPOINT_ENV_PREFIX = "SAM_CHECKPOINT_"

_CHUNK = 1 << 20  # 1 MiB reads: few syscalls, small memory
_RECORD_VERSION = 1
_record_lock = threading.Lock()  # one writer per process; processes may race (then: re-hash)


@dataclass(frozen=True)
class FileIdentity:
    """What must be unchanged for a remembered hash to still hold."""

    name: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        stat = path.stat()
        return cls(path.name, int(stat.st_size), int(stat.st_mtime_ns))


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoint_env_var(model_id: str) -> str:
    """The environment variable naming a custom checkpoint for ``model_id``.

    Upper case, every non-alphanumeric character replaced by ``_``: ``sam-vit-b`` ->
    ``SAM_CHECKPOINT_SAM_VIT_B``, ``sam2.1-tiny`` -> ``SAM_CHECKPOINT_SAM2_1_TINY``.
    """
    return CHECKPOINT_ENV_PREFIX + "".join(c if c.isalnum() else "_" for c in model_id.upper())


def verify_official(spec: ModelSpec, path: str | Path) -> None:
    """Refuse ``path`` unless its size and SHA-256 are the catalogue's (remembered, see above).

    Specs without a ``sha256`` (test models) are not checked.

    Raises:
        CheckpointHashMismatchError: wrong size or hash; the message says how to fix it.
        CheckpointCorruptError: the file cannot be read at all.
    """
    if spec.sha256 is None:
        return
    path = Path(path)
    expected = spec.sha256.lower()
    try:
        identity = FileIdentity.of(path)
        if spec.size_bytes is not None and identity.size != spec.size_bytes:
            raise hash_mismatch(
                spec, path, f"its size is {identity.size:,} bytes, not {spec.size_bytes:,}"
            )
        digest = remembered_digest(identity, path.parent)
        if digest is None:
            digest = sha256_file(path)
            if FileIdentity.of(path) == identity:  # not rewritten while we read it
                remember(path, digest, identity)
    except OSError as exc:
        raise CheckpointCorruptError(
            f"Checkpoint file {path} cannot be read ({exc.strerror or exc}). Check its "
            f"permissions, or download it again with: python -m sam_backends download "
            f"{spec.model_id} --force"
        ) from exc
    if digest != expected:
        raise hash_mismatch(
            spec, path, f"its SHA-256 is {digest[:16]}..., not {expected[:16]}..."
        )


def hash_mismatch(spec: ModelSpec, path: Path, detail: str) -> CheckpointHashMismatchError:
    """The error for a file under an official name that is not the official file."""
    model_id = spec.model_id
    return CheckpointHashMismatchError(
        f"Checkpoint file {path} is not the official {spec.display_name} file: {detail}. It is "
        f"damaged (an interrupted copy, a disk error) or another file saved under the official "
        f"name, so it was not loaded. To get the official weights, run: python -m sam_backends "
        f"download {model_id} --force (it replaces the file). To use this file deliberately "
        f"as a custom checkpoint, rename it and pass its path: create_backend({model_id!r}, "
        f"checkpoint=PATH), env {checkpoint_env_var(model_id)}=PATH, or "
        f"python app.py --checkpoint {model_id}=PATH."
    )


def remembered_digest(identity: FileIdentity, folder: Path) -> str | None:
    """The remembered SHA-256 of the file, or None when unknown or the file has changed."""
    entry = _read_record(folder).get(identity.name)
    if not isinstance(entry, dict):
        return None
    if entry.get("size") != identity.size or entry.get("mtime_ns") != identity.mtime_ns:
        return None
    digest = entry.get("sha256")
    return digest.lower() if isinstance(digest, str) else None


def remember(path: str | Path, digest: str, identity: FileIdentity | None = None) -> None:
    """Record ``digest`` as the SHA-256 of ``path`` as it is now; failures are ignored."""
    path = Path(path)
    try:
        identity = identity or FileIdentity.of(path)
    except OSError:
        return
    folder = path.parent
    with _record_lock:
        record = _read_record(folder)
        record[identity.name] = {
            "size": identity.size, "mtime_ns": identity.mtime_ns, "sha256": digest.lower()
        }
        for name in [n for n in record if n != identity.name and not (folder / n).is_file()]:
            del record[name]  # files deleted since: keep the record small
        _write_record(folder, record)


def _read_record(folder: Path) -> dict:
    try:
        data = json.loads((folder / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != _RECORD_VERSION:
        return {}
    files = data.get("files")
    return dict(files) if isinstance(files, dict) else {}


def _write_record(folder: Path, files: dict) -> None:
    """Write atomically (temporary file, then ``os.replace``); give up quietly on failure."""
    payload = json.dumps({"version": _RECORD_VERSION, "files": files}, indent=1, sort_keys=True)
    tmp: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w", dir=folder, prefix=f"{RECORD_FILE}.", suffix=".tmp", delete=False,
            encoding="utf-8",
        ) as handle:
            tmp = Path(handle.name)
            handle.write(payload)
        os.replace(tmp, folder / RECORD_FILE)
        tmp = None
    except OSError:
        pass  # read-only folder or full disk: files are hashed again next time
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
