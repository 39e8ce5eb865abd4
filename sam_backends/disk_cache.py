"""Image embeddings kept on disk, bounded by bytes, under the in-memory ``EmbeddingCache``.

A project's images are opened again tomorrow; their embeddings need not be computed again.
``DiskEmbeddingStore(folder, max_bytes)`` keeps one file per embedding,
``<folder>/<model_id>/<digest>-<precision>.<ext>``, and drops the least recently used files
when the total passes ``max_bytes`` (use is the file's modification time, touched on every
read, so the order survives a restart).

Safe to read back: nothing is unpickled. With ``safetensors`` (installed with transformers) a
file is a safetensors file whose metadata holds the header; otherwise ``torch.save`` of a dict
of tensors and a JSON string, read with ``torch.load(weights_only=True)``. The header names the
key (digest, model id, precision) and the sizes; a file that cannot be read, or whose header
does not match its key, is deleted and counts as a miss (the caller computes again).

Features that are not tensors (or tuples of tensors) are not stored: ``put`` returns False.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import CacheKey
from .types import Embedding

log = logging.getLogger("samwb.disk_cache")

FORMAT_NAME = "samwb-embedding"
FORMAT_VERSION = "1"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
_DIGEST = re.compile(r"[0-9a-f]{8,128}")


def default_format() -> str:
    """"safetensors" when the package is importable, else "torch"."""
    try:
        import safetensors.torch  # noqa: F401
    except ImportError:
        return "torch"
    return "safetensors"


_EXTENSIONS = {"safetensors": "safetensors", "torch": "pt"}


@dataclass(frozen=True)
class DiskStats:
    """A snapshot: ``bytes`` held now of ``max_bytes``; ``entries`` files; counters since the
    store was opened (``damaged``: unreadable files deleted; ``refused``: writes that failed or
    did not fit)."""

    bytes: int
    max_bytes: int
    entries: int
    hits: int
    misses: int
    writes: int
    evictions: int
    damaged: int
    refused: int


def _flatten(features: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(name -> contiguous tensor, layout) for a mapping of tensors or tuples of tensors."""
    import torch

    tensors: dict[str, Any] = {}
    layout: dict[str, Any] = {}
    for name, value in features.items():
        if isinstance(value, torch.Tensor):
            tensors[name] = value.detach().contiguous()
            layout[name] = "tensor"
        elif isinstance(value, (tuple, list)) and all(isinstance(v, torch.Tensor)
                                                      for v in value):
            for i, item in enumerate(value):
                tensors[f"{name}.{i}"] = item.detach().contiguous()
            layout[name] = len(value)
        else:
            return None
    return tensors, layout


def _unflatten(tensors: dict[str, Any], layout: dict[str, Any]) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for name, kind in layout.items():
        if kind == "tensor":
            features[name] = tensors[name]
        else:
            features[name] = tuple(tensors[f"{name}.{i}"] for i in range(int(kind)))
    return features


def _header(key: CacheKey, embedding: Embedding, layout: dict[str, Any]) -> dict[str, str]:
    digest, model_id, precision = key
    return {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "digest": digest,
        "model_id": model_id, "precision": precision,
        "original_size": json.dumps(list(embedding.original_size)),
        "input_size": json.dumps(list(embedding.input_size)),
        "layout": json.dumps(layout), "encode_seconds": repr(float(embedding.encode_seconds)),
    }


def _write(path: Path, fmt: str, tensors: dict[str, Any], header: dict[str, str]) -> None:
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.cpu() for k, v in tensors.items()}, str(path), metadata=header)
    else:
        import torch

        torch.save({"header": json.dumps(header),
                    "tensors": {k: v.cpu() for k, v in tensors.items()}}, path)


def _read(path: Path, fmt: str, device: str) -> tuple[dict[str, Any], dict[str, str]]:
    if fmt == "safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device=device) as opened:
            header = dict(opened.metadata() or {})
            tensors = {k: opened.get_tensor(k) for k in opened.keys()}
        return tensors, header
    import torch

    payload = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("header"), str):
        raise ValueError("not an embedding file")
    return dict(payload["tensors"]), json.loads(payload["header"])


class DiskEmbeddingStore:
    """Embeddings on disk, least recently used dropped past ``max_bytes``; thread-safe.

    Args:
        folder: where the files go (made on first write), e.g. a project's
            ``.samwb-cache/embeddings``.
        max_bytes: the bound on the files' total size; 0 stores nothing.
        fmt: "safetensors" or "torch" (default: ``default_format()``).
    """

    def __init__(self, folder: str | Path, max_bytes: int, fmt: str | None = None) -> None:
        self.folder = Path(folder)
        self.max_bytes = max(0, int(max_bytes))
        self.format = fmt or default_format()
        if self.format not in _EXTENSIONS:
            raise ValueError(f"Unknown embedding file format {self.format!r}; use "
                             f"{' or '.join(_EXTENSIONS)}.")
        self.ext = _EXTENSIONS[self.format]
        self._lock = threading.Lock()
        self._files: OrderedDict[Path, int] = OrderedDict()  # least recently used first
        self._bytes = 0
        self._counts = dict(hits=0, misses=0, writes=0, evictions=0, damaged=0, refused=0)
        self._scan()

    def path_for(self, key: CacheKey) -> Path:
        """The file of ``key`` (digest, model id, precision).

        Raises:
            ValueError: a part of the key that cannot be a file name.
        """
        digest, model_id, precision = key
        if not (_DIGEST.fullmatch(digest) and _SAFE_NAME.fullmatch(model_id)
                and _SAFE_NAME.fullmatch(precision)):
            raise ValueError(f"{key!r} cannot name an embedding file.")
        return self.folder / model_id / f"{digest}-{precision}.{self.ext}"

    def __contains__(self, key: CacheKey) -> bool:
        try:
            path = self.path_for(key)
        except ValueError:
            return False
        with self._lock:
            return path in self._files

    def get(self, key: CacheKey, device: str = "cpu") -> Embedding | None:
        """The stored embedding of ``key`` with its tensors on ``device``, or None (not stored,
        or damaged: then the file is deleted)."""
        try:
            path = self.path_for(key)
        except ValueError:
            return None
        with self._lock:
            known = path in self._files
            if not known:
                self._counts["misses"] += 1
                return None
        try:
            tensors, header = _read(path, self.format, device)
            embedding = self._embedding(key, tensors, header)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is recomputed
            log.warning("embedding file %s is damaged (%s); deleting it", path, exc)
            self._forget(path, damaged=True)
            return None
        with self._lock:
            if path in self._files:
                self._files.move_to_end(path)
            self._counts["hits"] += 1
        try:
            os.utime(path)  # the least-recently-used order survives a restart
        except OSError:
            pass
        return embedding

    def put(self, key: CacheKey, embedding: Embedding) -> bool:
        """Write ``embedding`` as ``key``'s file (atomically), then drop the least recently
        used files past the bound. False when it is not stored (features that are not
        tensors, larger than the bound, or the write failed, e.g. a read-only folder)."""
        flat = _flatten(embedding.features)
        try:
            path = self.path_for(key)
        except ValueError:
            flat = None
        if flat is None or self.max_bytes <= 0:
            with self._lock:
                self._counts["refused"] += 1
            return False
        tensors, layout = flat
        partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write(partial, self.format, tensors, _header(key, embedding, layout))
            size = partial.stat().st_size
            if size > self.max_bytes:
                partial.unlink()
                with self._lock:
                    self._counts["refused"] += 1
                return False
            partial.replace(path)
        except OSError as exc:
            log.warning("could not keep an embedding in %s (%s)", self.folder, exc)
            with contextlib.suppress(OSError):
                partial.unlink()
            with self._lock:
                self._counts["refused"] += 1
            return False
        with self._lock:
            self._bytes -= self._files.pop(path, 0)
            self._files[path] = size
            self._bytes += size
            self._counts["writes"] += 1
            dropped = self._evict_locked()
        for old in dropped:
            with contextlib.suppress(OSError):
                old.unlink()
        return True

    def stats(self) -> DiskStats:
        with self._lock:
            return DiskStats(self._bytes, self.max_bytes, len(self._files), **self._counts)

    def clear(self) -> None:
        """Delete every embedding file of this store."""
        with self._lock:
            files = list(self._files)
            self._files.clear()
            self._bytes = 0
        for path in files:
            with contextlib.suppress(OSError):
                path.unlink()

    # --- inside ------------------------------------------------------------------------------

    def _embedding(self, key: CacheKey, tensors: dict[str, Any],
                   header: dict[str, str]) -> Embedding:
        digest, model_id, precision = key
        expected = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "digest": digest,
                    "model_id": model_id, "precision": precision}
        wrong = {k: header.get(k) for k, v in expected.items() if header.get(k) != v}
        if wrong:
            raise ValueError(f"header does not match its key: {wrong}")
        features = _unflatten(tensors, json.loads(header["layout"]))
        from .base import array_nbytes

        return Embedding(
            model_id=model_id, precision=precision,
            original_size=tuple(int(s) for s in json.loads(header["original_size"])),
            input_size=tuple(int(s) for s in json.loads(header["input_size"])),
            features=features, nbytes=array_nbytes(features),
            encode_seconds=float(header.get("encode_seconds", 0.0)),
        )

    def _forget(self, path: Path, damaged: bool = False) -> None:
        with self._lock:
            self._bytes -= self._files.pop(path, 0)
            if damaged:
                self._counts["damaged"] += 1
                self._counts["misses"] += 1
        with contextlib.suppress(OSError):
            path.unlink()

    def _evict_locked(self) -> list[Path]:
        dropped = []
        while self._files and self._bytes > self.max_bytes:
            path, size = self._files.popitem(last=False)
            self._bytes -= size
            self._counts["evictions"] += 1
            dropped.append(path)
        return dropped

    def _scan(self) -> None:
        """Index the files already there, oldest use first; remove leftover partial writes."""
        if not self.folder.is_dir():
            return
        found = []
        for path in self.folder.glob(f"*/*.{self.ext}"):
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((stat.st_mtime_ns, path, stat.st_size))
        for partial in self.folder.glob("*/.*.partial"):
            with contextlib.suppress(OSError):
                partial.unlink()
        for _, path, size in sorted(found):
            self._files[path] = size
            self._bytes += size
        for old in self._evict_locked():  # the bound may have shrunk since the last run
            with contextlib.suppress(OSError):
                old.unlink()

