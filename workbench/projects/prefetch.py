"""The next image is ready: encode the images a person will probably open next, in the background.

One ``Prefetcher`` per app (``ctx.services.prefetcher``). After each navigation the project view
tells it which images this page will probably open next (``want(client, model_id, paths)``, the
next two or three); a newer wish of the same page replaces its older one. One daemon thread
loads each wished image (``load_image`` with the app's pixel limit), hashes it and encodes it
(on a thread that ends with the encode: ``workbench.threads``) under the same cache key as
``ctx.encode``, so opening it later is a cache hit (and, with a
project's ``DiskEmbeddingStore`` attached, a disk hit after a restart).

Lowest priority, never delaying a click:

* the worker starts an image only when ``ctx.foreground`` (people's clicks, hovers, encodes,
  API calls, tracking; every lane counts there) reads zero;
* a started encode pauses before each block of the image encoder while foreground work is in
  flight (``sam_backends.background.pausing``), so a click waits for at most one block;
* a person who opens the very image being encoded waits for it: that encode stops pausing;
* it runs outside the encoder lane and is not counted as a typical encode; so a person's
  encode may run while a background one is paused, and the paused one keeps its intermediate
  tensors meanwhile (up to an encode's peak: ~1 GB for SAM 2.1 tiny, ~3 GB for ViT-B, fp32);
* ``threads``: the encoding thread's own intra-op thread count (None: the process's), set for
  that thread alone (``accel.limit_this_thread``); see ``benchmarks/bench_prefetch.py``.

It encodes only for models already loaded (a wish never loads or evicts a model) and never on
ZeroGPU (GPU time is the visitor's quota). Failures (an unreadable image) are recorded in
``status()``, never raised into the app. Bounded: ``MAX_CLIENTS`` wishes (the oldest dropped),
``MAX_PATHS`` paths each, ``MAX_REMEMBERED`` finished images remembered.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sam_backends.background import EncodeAbandoned, pausing
from sam_backends.cache import cache_key
from sam_backends.disk_cache import DiskEmbeddingStore
from sam_backends.errors import SamBackendError
from sam_backends.images import image_digest, load_image
from workbench.threads import in_own_thread

if TYPE_CHECKING:
    from workbench.context import AppContext

log = logging.getLogger("samwb.prefetch")

MAX_CLIENTS = 64  # pages with a wish at once (one project view each)
MAX_PATHS = 8  # images per wish (the view asks for 2-3)
MAX_REMEMBERED = 4096  # finished images (done or failed) remembered, least recent dropped
MAX_ERRORS = 5  # recent failures shown in the status
CACHE_FOLDER = Path(".samwb-cache") / "embeddings"  # inside a project folder
IDLE_POLL_S = 1.0  # how often the worker looks again when wished models are not loaded


def project_embedding_store(project_dir: str | Path, max_bytes: int) -> DiskEmbeddingStore:
    """The disk layer of a project: ``<project>/.samwb-cache/embeddings/<model>/...``, at most
    ``max_bytes`` (attach it with ``ctx.attach_disk_embeddings``)."""
    return DiskEmbeddingStore(Path(project_dir) / CACHE_FOLDER, max_bytes)


@dataclass(frozen=True)
class PrefetchStatus:
    """What the background encoder has done, for the project view.

    Attributes:
        done: wished images made ready since start (encoded, or found in memory or on disk).
        queued: wished images not ready yet (all pages together).
        failed: wished images that could not be read or encoded (not tried again unless the
            file changes); ``errors``: the latest of them, "name: message".
        running: the file name being encoded now, or None; ``paused``: it is giving way to a
            person's work.
        disk_bytes, disk_max_bytes: the attached disk layer's size and bound (None: none).
        enabled: False where the app does not prefetch (ZeroGPU) or after ``close()``.
    """

    done: int
    queued: int
    failed: int
    running: str | None
    paused: bool
    disk_bytes: int | None
    disk_max_bytes: int | None
    errors: tuple[str, ...] = ()
    enabled: bool = True


@dataclass(frozen=True)
class _Wish:
    model_id: str
    paths: tuple[Path, ...]


def _signature(path: Path, model_id: str) -> tuple[Any, ...]:
    """What identifies a file's version for one model: (path, size, mtime, model); size and
    mtime are None while the file is missing (it is tried again once it appears)."""
    try:
        stat = path.stat()
    except OSError:
        return (str(path), None, None, model_id)
    return (str(path), stat.st_size, stat.st_mtime_ns, model_id)


class Prefetcher:
    """See the module docstring."""

    def __init__(self, ctx: AppContext, threads: int | None = None) -> None:
        self._ctx = ctx
        self.threads = threads
        self._condition = threading.Condition()
        self._wishes: OrderedDict[str, _Wish] = OrderedDict()  # least recent wish first
        self._finished: OrderedDict[tuple[Any, ...], str | None] = OrderedDict()  # -> digest
        self._errors: list[str] = []
        self._done = self._failed = 0
        self._running: str | None = None
        self._paused = False
        self._closed = bool(ctx.zerogpu)
        self._thread: threading.Thread | None = None

    # --- the interface --------------------------------------------------------------------

    def want(self, client: str, model_id: str, paths: Sequence[str | Path]) -> None:
        """The images ``client`` (a page session) will probably open next with ``model_id``,
        most likely first; replaces this client's earlier wish. An empty list withdraws it.
        Cheap: no file is read here."""
        wanted = tuple(dict.fromkeys(Path(p) for p in paths))[:MAX_PATHS]
        with self._condition:
            if self._closed:
                return
            self._wishes.pop(client, None)
            if wanted:
                self._wishes[client] = _Wish(model_id, wanted)
                while len(self._wishes) > MAX_CLIENTS:
                    self._wishes.popitem(last=False)
            self._start_locked()
            self._condition.notify_all()

    def forget(self, client: str) -> None:
        """Drop ``client``'s wish (its page closed)."""
        self.want(client, "", ())

    def status(self) -> PrefetchStatus:
        disk = self._ctx.disk_embeddings
        stats = disk.stats() if disk is not None else None
        with self._condition:
            queued = sum(1 for _ in self._pending_locked())
            return PrefetchStatus(
                done=self._done, queued=queued, failed=self._failed, running=self._running,
                paused=self._paused, disk_bytes=None if stats is None else stats.bytes,
                disk_max_bytes=None if stats is None else stats.max_bytes,
                errors=tuple(self._errors), enabled=not self._closed)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (an encode in progress is dropped at its next pause point)."""
        with self._condition:
            self._closed = True
            self._wishes.clear()
            self._condition.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # --- the worker -----------------------------------------------------------------------

    def _start_locked(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="samwb-prefetch-queue",
                                            daemon=True)
            self._thread.start()

    def _pending_locked(self):
        """(client, model id, path, signature) of wished images not finished, newest wish
        first, most likely image first within a wish."""
        for client, wish in reversed(self._wishes.items()):
            for path in wish.paths:
                signature = _signature(path, wish.model_id)
                if signature not in self._finished:
                    yield client, wish.model_id, path, signature

    def _next_job(self) -> tuple[str, Path, tuple[Any, ...]] | None:
        """The next image to make ready (waits for a wish); None once closed."""
        with self._condition:
            while not self._closed:
                pending = list(self._pending_locked())
                for _, model_id, path, signature in pending:
                    if self._ctx.pool.is_loaded(model_id):
                        return model_id, path, signature
                # Nothing to do, or only for models not loaded yet: look again later.
                self._condition.wait(IDLE_POLL_S if pending else None)
            return None

    def _work(self) -> None:
        foreground = self._ctx.foreground
        while True:
            job = self._next_job()
            if job is None or not foreground.wait_quiet(stop=self._is_closed):
                return
            model_id, path, signature = job
            with self._condition:
                self._running = path.name
            try:
                digest = self._make_ready(model_id, path, signature)
            except EncodeAbandoned:
                pass  # closed mid-encode: nothing to record
            except Exception as exc:  # noqa: BLE001 - recorded, never raised into the app
                self._record_failure(path, signature, exc)
            else:
                self._record_done(signature, digest)
            finally:
                with self._condition:
                    self._running = None
                    self._paused = False

    def _make_ready(self, model_id: str, path: Path, signature: tuple[Any, ...]) -> str:
        """Load, hash and encode one image (a memory hit costs nothing more; a disk hit is
        loaded into memory); its digest ("" for a model that encodes nothing)."""
        ctx = self._ctx
        if signature[1] is None:
            raise SamBackendError(f"Image file {path} does not exist.")
        if not ctx.family(model_id).encodes:  # works on the pixels at each click
            return ""
        image = load_image(path, ctx.config.max_image_pixels)
        digest = image_digest(image)
        ctx.encode_in_background(model_id, image, digest, self._encode_pausing(image, digest))
        return digest

    def _encode_pausing(self, image: Any, digest: str):
        def run(backend: Any) -> Any:
            key = cache_key(digest, backend.model_id, backend.precision)

            def encode() -> Any:
                self._limit_threads()
                with pausing(backend, lambda: self._give_way(key)):
                    return backend.encode(image)

            # On a thread that ends with the encode: the queue's thread lives as long as the
            # app, and an OpenMP pool of its own would slow every click (workbench.threads).
            return in_own_thread(encode, "samwb-prefetch")

        return run

    def _limit_threads(self) -> None:
        if self.threads is not None:
            from sam_backends.speed.accel import limit_this_thread

            limit_this_thread(self.threads)

    def _give_way(self, key: Any) -> None:
        """A pause point: wait while people work, unless one waits for this very image;
        abandon the encode when the app closes (and nobody waits for it)."""
        foreground = self._ctx.foreground
        if foreground.count <= 0 or foreground.is_wanted(key):
            return
        with self._condition:
            self._paused = True
        try:
            if not foreground.wait_quiet(key, stop=self._is_closed):
                if not foreground.is_wanted(key):
                    raise EncodeAbandoned("the app is closing")
        finally:
            with self._condition:
                self._paused = False

    def _is_closed(self) -> bool:
        with self._condition:
            return self._closed

    def _record_done(self, signature: tuple[Any, ...], digest: str) -> None:
        with self._condition:
            self._done += 1
            self._remember_locked(signature, digest)

    def _record_failure(self, path: Path, signature: tuple[Any, ...], exc: Exception) -> None:
        message = str(exc) or type(exc).__name__
        log.info("prefetch of %s failed: %s", path, message)
        with self._condition:
            self._failed += 1
            self._errors = (self._errors + [f"{path.name}: {message}"])[-MAX_ERRORS:]
            self._remember_locked(signature, None)

    def _remember_locked(self, signature: tuple[Any, ...], digest: str | None) -> None:
        self._finished[signature] = digest
        self._finished.move_to_end(signature)
        while len(self._finished) > MAX_REMEMBERED:
            self._finished.popitem(last=False)

