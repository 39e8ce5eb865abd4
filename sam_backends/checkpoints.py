"""Where checkpoints live, and fetching them safely from their official URLs.

Folder: an explicit argument, else env ``SAM_CHECKPOINT_DIR``, else ``<project root>/checkpoints``.

A download streams into a temporary file in the destination folder, hashing as it goes; the file
is renamed to its final name only after its size and SHA-256 match the catalogue, so a partial or
damaged download is never mistaken for a complete one. A lock file (``filelock``) serialises
processes fetching the same checkpoint: the second one waits, then finds the finished file.

Env ``SAM_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) forbids any network access.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from .errors import CheckpointMissingError, DownloadError
from .registry import ModelSpec

CHECKPOINT_DIR_ENV = "SAM_CHECKPOINT_DIR"
OFFLINE_ENVS = ("SAM_OFFLINE", "HF_HUB_OFFLINE")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKPOINT_DIR = PROJECT_ROOT / "checkpoints"

_CHUNK = 1 << 20  # 1 MiB reads: few syscalls, small memory
_TIMEOUT_S = 30.0  # per socket operation (connect, each read), not for the whole file

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes total; 0 when unknown)


def checkpoint_dir(folder: str | Path | None = None) -> Path:
    """The checkpoints folder: ``folder`` if given, else env ``SAM_CHECKPOINT_DIR``, else the
    ``checkpoints/`` folder at the project root. Not created here."""
    if folder is not None:
        return Path(folder).expanduser()
    env = os.environ.get(CHECKPOINT_DIR_ENV, "").strip()
    return Path(env).expanduser() if env else DEFAULT_CHECKPOINT_DIR


def checkpoint_path(spec: ModelSpec, folder: str | Path | None = None) -> Path | None:
    """Where ``spec``'s checkpoint is (or would be); None for models that need no weights."""
    if not spec.needs_checkpoint:
        return None
    return checkpoint_dir(folder) / spec.checkpoint_file


def is_present(spec: ModelSpec, folder: str | Path | None = None) -> bool:
    """True when the model needs no weights or its checkpoint file exists."""
    path = checkpoint_path(spec, folder)
    return path is None or path.is_file()


def is_offline() -> bool:
    """True when env ``SAM_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to a true value."""
    return any(
        os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
        for name in OFFLINE_ENVS
    )


def download_command(spec: ModelSpec) -> str:
    """The shell command that fetches ``spec``'s checkpoint."""
    return f"python -m sam_backends download {spec.model_id}"


def ensure_checkpoint(
    spec: ModelSpec,
    folder: str | Path | None = None,
    *,
    download: bool = False,
    progress: bool = True,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Return the path of ``spec``'s checkpoint, downloading it first when asked.

    Presence is checked by name only (hashing gigabytes on every load would be slow); the
    integrity of a download is verified before the file gets its name, and the strict loader
    in ``checkpoint_loading`` rejects damaged or foreign files with a clear error.

    Raises:
        CheckpointMissingError: absent and ``download`` is False.
        DownloadError: absent and the download failed (offline, HTTP error, bad checksum).
        ValueError: the model needs no checkpoint.
    """
    path = checkpoint_path(spec, folder)
    if path is None:
        raise ValueError(f"{spec.model_id} needs no checkpoint.")
    if path.is_file():
        return path
    if not download:
        raise CheckpointMissingError(
            f"Checkpoint for {spec.model_id} not found: {path}. Download it with: "
            f"{download_command(spec)} (or fetch {spec.url} into {path.parent} yourself)."
        )
    return _download(spec, folder, progress, on_progress)


def download(
    spec: ModelSpec,
    folder: str | Path | None = None,
    progress: bool = True,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Fetch ``spec``'s checkpoint from its official URL into the checkpoints folder.

    Returns at once when the file is already there with the expected size. Otherwise, under a
    per-file lock: stream to ``.<name>.*.part`` in the same folder, check size and SHA-256, then
    ``os.replace`` to the final name (atomic on one file system). On any failure the temporary
    file is removed and the final name is never created.

    Args:
        progress: show a tqdm progress bar on stderr.
        on_progress: called as ``on_progress(done_bytes, total_bytes)`` after each chunk (for a
            UI progress bar); total is 0 when neither the server nor the catalogue knows it.

    Raises:
        DownloadError: offline mode, network or HTTP error, wrong size or checksum.
    """
    return _download(spec, folder, progress, on_progress)


def _download(
    spec: ModelSpec,
    folder: str | Path | None,
    progress: bool,
    on_progress: ProgressCallback | None,
) -> Path:
    path = checkpoint_path(spec, folder)
    if path is None:
        raise ValueError(f"{spec.model_id} needs no checkpoint.")
    if _complete(path, spec):
        return path
    if spec.url is None:
        raise DownloadError(f"{spec.model_id} has no download URL; place {path.name} in "
                            f"{path.parent} yourself.")
    if is_offline():
        raise DownloadError(
            f"Cannot download {path.name} for {spec.model_id}: offline mode is on "
            f"({' / '.join(OFFLINE_ENVS)}). Unset it and run: {download_command(spec)}, or fetch "
            f"{spec.url} into {path.parent} yourself."
        )
    from filelock import FileLock

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"Cannot create the checkpoints folder {path.parent}: {exc}.") from exc
    with FileLock(str(path.parent / f".{path.name}.lock")):
        if _complete(path, spec):  # another process finished it while we waited
            return path
        _check_free_space(path, spec)
        _fetch_verified(spec, path, progress, on_progress)
    return path


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_complete(spec: ModelSpec, folder: str | Path | None = None) -> bool:
    """True when the checkpoint file exists with the catalogue's size (cheap: no hashing)."""
    path = checkpoint_path(spec, folder)
    return path is None or _complete(path, spec)


def _complete(path: Path, spec: ModelSpec) -> bool:
    if not path.is_file():
        return False
    return spec.size_bytes is None or path.stat().st_size == spec.size_bytes


def _check_free_space(path: Path, spec: ModelSpec) -> None:
    if spec.size_bytes is None:
        return
    free = shutil.disk_usage(path.parent).free
    if free < spec.size_bytes:
        raise DownloadError(
            f"Not enough disk space in {path.parent} for {path.name}: it needs "
            f"{spec.size_bytes / 1e6:.0f} MB and {free / 1e6:.0f} MB are free."
        )


def _network_error(spec: ModelSpec, path: Path, reason: str) -> DownloadError:
    return DownloadError(
        f"Could not download {path.name} for {spec.model_id} from {spec.url} ({reason}). "
        f"Check the network and run: {download_command(spec)}, or fetch the URL into "
        f"{path.parent} yourself."
    )


def _fetch_verified(
    spec: ModelSpec, path: Path, progress: bool, on_progress: ProgressCallback | None
) -> None:
    """Stream the URL into a temporary file, verify it, and rename it to ``path``."""
    import http.client
    import urllib.error
    import urllib.request

    from tqdm.auto import tqdm

    handle = tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False
    )
    tmp = Path(handle.name)
    try:
        with handle:
            request = urllib.request.Request(spec.url, headers={"User-Agent": "sam-backends"})
            try:
                response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)
            except urllib.error.HTTPError as exc:
                raise _network_error(spec, path, f"HTTP {exc.code} {exc.reason}") from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise _network_error(spec, path, f"network error: {reason}") from None
            with response:
                announced = int(response.headers.get("Content-Length") or 0)
                if spec.size_bytes is not None and announced and announced != spec.size_bytes:
                    raise DownloadError(
                        f"The server offers {announced} bytes for {path.name} but the catalogue "
                        f"expects {spec.size_bytes}; not downloading {spec.url}."
                    )
                total = spec.size_bytes or announced
                digest = hashlib.sha256()
                done = 0
                with tqdm(total=total or None, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=path.name, disable=not progress, leave=False) as bar:
                    while True:
                        try:
                            chunk = response.read(_CHUNK)
                        except (http.client.HTTPException, OSError) as exc:
                            detail = type(exc).__name__
                            raise _network_error(
                                spec, path, f"connection lost after {done} bytes ({detail})"
                            ) from None
                        if not chunk:
                            break
                        handle.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        bar.update(len(chunk))
                        if on_progress is not None:
                            on_progress(done, total)
            handle.flush()
            os.fsync(handle.fileno())
        _verify(spec, path, done, digest.hexdigest())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _verify(spec: ModelSpec, path: Path, size: int, sha256: str) -> None:
    if spec.size_bytes is not None and size < spec.size_bytes:
        raise _network_error(
            spec, path, f"got {size} of {spec.size_bytes} bytes; the transfer was cut short"
        )
    if spec.size_bytes is not None and size != spec.size_bytes:
        raise DownloadError(
            f"Downloaded {size} bytes for {path.name} from {spec.url} but the catalogue expects "
            f"{spec.size_bytes}; the file was discarded."
        )
    if spec.sha256 is not None and sha256 != spec.sha256.lower():
        raise DownloadError(
            f"Downloaded {path.name} from {spec.url} but its SHA-256 is {sha256}, not the "
            f"expected {spec.sha256}; the file was discarded. Try again with: "
            f"{download_command(spec)}"
        )
