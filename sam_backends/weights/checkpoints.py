"""Where checkpoints live, and fetching them safely from their official URLs.

Folder: an explicit argument, else env ``SAM_CHECKPOINT_DIR``, else ``<project root>/checkpoints``
in a source checkout, or ``$XDG_CACHE_HOME/sam-workbench/checkpoints`` (``~/.cache/...``) when
the package is installed (``pip install .``): gigabytes of weights do not belong in site-packages.

Which file a model loads (``resolve_checkpoint``): an explicit path, else env
``SAM_CHECKPOINT_<MODEL ID>`` (e.g. ``SAM_CHECKPOINT_SAM_VIT_B``: custom or fine-tuned weights,
never hash-checked), else the catalogue's file in the folder, which must be the official file:
its SHA-256 is checked once and remembered (``checkpoint_verification``).

A download streams into a temporary file in the destination folder, hashing as it goes; the file
is renamed to its final name only after its size and SHA-256 match the catalogue, so a partial or
damaged download is never mistaken for a complete one. A lock file (``filelock``) serialises
processes fetching the same checkpoint: the second one waits, then finds the finished file. A
server that stalls or drips bytes is given up (``DownloadLimits``), and partial files left by a
killed download are removed at the next attempt.

Env ``SAM_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) forbids any network access.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import CheckpointMissingError, DownloadError
from ..registry import ModelSpec
from . import checkpoint_verification
from .checkpoint_verification import (
    checkpoint_env_var,
    sha256_file,  # noqa: F401 (public here)
)
from .download_stream import DownloadLimits, RateGuard, make_readable, stream

CHECKPOINT_DIR_ENV = "SAM_CHECKPOINT_DIR"
OFFLINE_ENVS = ("SAM_OFFLINE", "HF_HUB_OFFLINE")
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # sam_backends/weights/ -> the project
CACHE_SUBDIR = Path("sam-workbench") / "checkpoints"


def default_checkpoint_dir() -> Path:
    """``<project root>/checkpoints`` when this package sits in a source checkout (a
    ``pyproject.toml`` beside it, as in the repository, an editable install or a Space), else
    the user's cache folder: an installed package's parent is site-packages, which may be
    read-only and is wiped by reinstalls."""
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT / "checkpoints"
    cache = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(cache).expanduser() if cache else Path.home() / ".cache") / CACHE_SUBDIR


DEFAULT_CHECKPOINT_DIR = default_checkpoint_dir()  # as at import (help texts); see checkpoint_dir

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes total; 0 when unknown)


DEFAULT_DOWNLOAD_LIMITS = DownloadLimits()  # read at call time, so tests may replace it


def checkpoint_dir(folder: str | Path | None = None) -> Path:
    """The checkpoints folder: ``folder`` if given, else env ``SAM_CHECKPOINT_DIR``, else
    ``default_checkpoint_dir()`` (read now, so a changed ``XDG_CACHE_HOME`` counts). Not created
    here."""
    if folder is not None:
        return Path(folder).expanduser()
    env = os.environ.get(CHECKPOINT_DIR_ENV, "").strip()
    return Path(env).expanduser() if env else default_checkpoint_dir()


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


def custom_checkpoint(spec: ModelSpec) -> Path | None:
    """The custom checkpoint named by env ``SAM_CHECKPOINT_<MODEL ID>``; None when unset.

    See ``checkpoint_env_var`` for how the variable's name is derived from the model id.
    """
    value = os.environ.get(checkpoint_env_var(spec.model_id), "").strip()
    return Path(value).expanduser() if value else None


def resolve_checkpoint(
    spec: ModelSpec,
    checkpoint: str | Path | None = None,
    folder: str | Path | None = None,
    *,
    download: bool = False,
) -> Path:
    """The file ``spec`` loads: ``checkpoint``, else env ``SAM_CHECKPOINT_<MODEL ID>``, else the
    official file in the checkpoints folder (verified; see ``ensure_checkpoint``).

    Explicit and environment paths are the user's own (fine-tuned) weights: they are not
    hash-checked, only required to exist.

    Raises:
        CheckpointMissingError: a custom path that is not a file, or the official one absent.
        CheckpointHashMismatchError: the official name holds another or a damaged file.
        DownloadError: absent, ``download`` asked, and the download failed.
    """
    if checkpoint is not None:
        return _custom_file(spec, Path(checkpoint).expanduser(),
                            "given explicitly: checkpoint= or python app.py --checkpoint")
    from_env = custom_checkpoint(spec)
    if from_env is not None:
        return _custom_file(spec, from_env, f"from env {checkpoint_env_var(spec.model_id)}")
    return ensure_checkpoint(spec, folder, download=download)


def _custom_file(spec: ModelSpec, path: Path, origin: str) -> Path:
    if path.is_file():
        return path
    raise CheckpointMissingError(
        f"Custom checkpoint for {spec.model_id} not found: {path} is not a file ({origin}). "
        f"Fix the path, or remove it to use the official weights "
        f"({download_command(spec)})."
    )


def ensure_checkpoint(
    spec: ModelSpec,
    folder: str | Path | None = None,
    *,
    download: bool = False,
    progress: bool = True,
    on_progress: ProgressCallback | None = None,
    verify: bool = True,
) -> Path:
    """Return the path of ``spec``'s official checkpoint, downloading it first when asked.

    A file already under the official name is checked against the catalogue's size and SHA-256
    (``verify``): hashed once, then remembered by size and modification time, so a restart does
    not read gigabytes again. A damaged file is refused, never replaced behind the user's back.

    Raises:
        CheckpointMissingError: absent and ``download`` is False.
        CheckpointHashMismatchError: present but not the official file (message: how to fix).
        DownloadError: absent and the download failed (offline, HTTP error, bad checksum).
        ValueError: the model needs no checkpoint.
    """
    path = checkpoint_path(spec, folder)
    if path is None:
        raise ValueError(f"{spec.model_id} needs no checkpoint.")
    if path.is_file():
        if verify:
            checkpoint_verification.verify_official(spec, path)
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
    *,
    force: bool = False,
    limits: DownloadLimits | None = None,
) -> Path:
    """Fetch ``spec``'s checkpoint from its official URL into the checkpoints folder.

    Returns at once when the official file is already there (size, then SHA-256: hashed once
    and remembered). Otherwise, under a per-file lock: remove partial files a killed download
    left, stream to ``.<name>.*.part`` in the same folder, check size and SHA-256, then
    ``os.replace`` to the final name (atomic on one file system), mode 0644 less the umask. On
    any failure the temporary file is removed and the final name is never created.

    Args:
        progress: show a tqdm progress bar on stderr.
        on_progress: called as ``on_progress(done_bytes, total_bytes)`` about every MiB (for a
            UI progress bar); total is 0 when neither the server nor the catalogue knows it.
        force: download even when a file is there, replacing it (a damaged or foreign file).
        limits: when to give up a slow transfer; default ``DEFAULT_DOWNLOAD_LIMITS``.

    Raises:
        CheckpointHashMismatchError: a complete-looking file is there but is not the official
            one, and ``force`` is False.
        DownloadError: offline mode, network or HTTP error, too slow, wrong size or checksum.
    """
    return _download(spec, folder, progress, on_progress, force=force, limits=limits)


def _download(
    spec: ModelSpec,
    folder: str | Path | None,
    progress: bool,
    on_progress: ProgressCallback | None,
    *,
    force: bool = False,
    limits: DownloadLimits | None = None,
) -> Path:
    path = checkpoint_path(spec, folder)
    if path is None:
        raise ValueError(f"{spec.model_id} needs no checkpoint.")
    if not force and _complete(path, spec):
        checkpoint_verification.verify_official(spec, path)
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
        if not force and _complete(path, spec):  # another process finished it while we waited
            checkpoint_verification.verify_official(spec, path)
            return path
        _remove_stale_parts(path)  # we hold the lock: no live download owns them
        _check_free_space(path, spec)
        _fetch_verified(spec, path, progress, on_progress, limits or DEFAULT_DOWNLOAD_LIMITS)
    return path


def _remove_stale_parts(path: Path) -> None:
    """Delete ``.<name>.*.part`` files of this checkpoint left by a killed download."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        try:
            stale.unlink()
        except OSError:
            pass  # not ours to remove (permissions): it never gets the final name anyway


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
    spec: ModelSpec,
    path: Path,
    progress: bool,
    on_progress: ProgressCallback | None,
    limits: DownloadLimits,
) -> None:
    """Stream the URL into a temporary file, verify it, and rename it to ``path``."""
    import urllib.error
    import urllib.request

    from tqdm.auto import tqdm

    handle = tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False
    )
    tmp = Path(handle.name)
    # A silent server is noticed within the rate window, not only after read_timeout_s.
    timeout = min(limits.read_timeout_s, limits.window_s)
    try:
        with handle:
            request = urllib.request.Request(spec.url, headers={"User-Agent": "sam-backends"})
            try:
                response = urllib.request.urlopen(request, timeout=timeout)
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
                with tqdm(total=total or None, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=path.name, disable=not progress, leave=False) as bar:

                    def store(chunk: bytes, done: int) -> None:
                        handle.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
                        if on_progress is not None:
                            on_progress(done, total)

                    done = stream(response, store, RateGuard(limits, total), timeout,
                                  lambda reason: _network_error(spec, path, reason))
            handle.flush()
            os.fsync(handle.fileno())
        _verify(spec, path, done, digest.hexdigest())
        make_readable(tmp)
        os.replace(tmp, path)
        checkpoint_verification.remember(path, digest.hexdigest())  # no re-hash on first load
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
