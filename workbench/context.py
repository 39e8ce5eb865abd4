"""What every tab shares: the configuration, the one embedding cache and the loaded models.

One ``AppContext`` is built per app (``build_demo``) and handed to each tab. It holds no
per-user data (that lives in each session's ``gr.State``), only things every user may share:

* ``cache``: the ``EmbeddingCache`` (bounded in bytes), keyed by image content, model and
  precision, so an image is encoded once per model whoever uploads it;
* a bounded, thread-safe pool of loaded backends (``backend(model_id)``); backends are
  stateless, so one loaded model serves every session;
* ``sessions``: the registry that releases a session's data when its tab closes;
* ``foreground``: the count of people's work in flight (every lane counts there), which
  background work (``services.prefetcher``) gives way to;
* optionally, embeddings kept on disk under the memory cache (``attach_disk_embeddings``).

Typical use from a tab::

    encoded = ctx.encode("sam2.1-tiny", image)           # EncodeResult(embedding, cached, s)
    prediction = ctx.backend("sam2.1-tiny").predict(encoded.embedding, prompts)

On a ZeroGPU Space the encoder (and ``ctx.predict``) run under ``spaces.GPU`` (``zerogpu``); the
cache, pool and sessions stay in this process, on the CPU.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, NamedTuple, TypeVar

import numpy as np

from sam_backends import (
    Backend,
    Embedding,
    EmbeddingCache,
    ModelSpec,
    Prediction,
    Prompts,
    UnknownModelError,
    create_backend,
    get_spec,
)
from sam_backends.background import EncodeAbandoned
from sam_backends.cache import CacheKey, cache_key
from sam_backends.disk_cache import DiskEmbeddingStore
from sam_backends.families import Family, get_family
from sam_backends.images import image_digest
from sam_backends.speed.give_way import GiveWay
from sam_backends.weights import checkpoints
from workbench.compare.timings import EncodeTimings
from workbench.config import AppConfig
from workbench.lanes import Activity, WorkLane
from workbench.limits import Limits
from workbench.memory import IdleTrimmer, MemoryPlan, plan_memory, weights_bytes
from workbench.observe import Observations
from workbench.services import Services
from workbench.session import SessionRegistry
from workbench.temp_root import TempRoot
from workbench.threads import CpuLoad, DecodeThread, ThreadPolicy, decode_cores, in_own_thread
from workbench.zerogpu import embedding_to, gpu_task, zerogpu_active

ENCODE_GPU_SECONDS = 30  # ZeroGPU: the longest an encode may hold the GPU (ViT-H needs ~1 s)
PREDICT_GPU_SECONDS = 10
CLICK_MAX_WAITING = 16  # clicks waiting for one model, all users together; more get 503
CLICK_WAITING_PER_PAGE = 2  # one prompt and one hover (newer ones replace them)

log = logging.getLogger("samwb.context")
T = TypeVar("T")


@dataclass(frozen=True)
class ModelEntry:
    """A model offered by this app: its spec and, for non-catalogue models or the user's own
    weights, its checkpoint.

    ``custom``: ``checkpoint`` is the user's file for a catalogue model (``--checkpoint ID=PATH``
    or env ``SAM_CHECKPOINT_<MODEL ID>``), loaded as given, without the official hash check.
    """

    spec: ModelSpec
    checkpoint: Path | None = None  # explicit file; None: the catalogue file in checkpoint_dir
    custom: bool = False

    @property
    def model_id(self) -> str:
        return self.spec.model_id


@dataclass(frozen=True)
class ModelStatus:
    """Whether a model can run now, and what to tell the user if not."""

    model_id: str
    display_name: str
    present: bool
    loaded: bool
    size_bytes: int | None
    download_command: str | None  # shell command that fetches the weights (None: not needed)
    custom: bool = False  # the user's own checkpoint (see ``ModelEntry.custom``)


class EncodeResult(NamedTuple):
    """An embedding and how it was obtained: ``cached`` is True when no encoder ran (another
    call had computed it). ``seconds`` is the encoder's own time when it ran (else this call's
    wall time); ``waited`` the time spent before it could run, in the encoder lane behind other
    models' encodes: kept apart so a model is not blamed (nor estimated) for others' work."""

    embedding: Embedding
    cached: bool
    seconds: float
    waited: float = 0.0


class BackendPool:
    """Loaded backends by model id, at most ``capacity`` at once (least recently used go).

    Loading runs outside the pool lock, under a per-model lock, so two sessions asking for the
    same model load it once while other models stay usable.
    """

    def __init__(self, capacity: int, loader: Callable[[str], Backend]) -> None:
        self.capacity = max(1, int(capacity))
        self._loader = loader
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self._loaded: OrderedDict[str, Backend] = OrderedDict()

    def get(self, model_id: str) -> Backend:
        with self._lock:
            backend = self._loaded.get(model_id)
            if backend is not None:
                self._loaded.move_to_end(model_id)
                return backend
            model_lock = self._loading.setdefault(model_id, threading.Lock())
        with model_lock:
            with self._lock:
                backend = self._loaded.get(model_id)
            if backend is None:
                backend = self._loader(model_id)
            with self._lock:
                self._loaded[model_id] = backend
                self._loaded.move_to_end(model_id)
                while len(self._loaded) > self.capacity:
                    self._loaded.popitem(last=False)
            return backend

    def is_loaded(self, model_id: str) -> bool:
        with self._lock:
            return model_id in self._loaded

    def loaded_ids(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    def loaded(self) -> dict[str, Backend]:
        """The loaded backends by id, without touching their recency (for ``/metrics``)."""
        with self._lock:
            return dict(self._loaded)

    def clear(self) -> None:
        """Drop every loaded backend (at shutdown; a later ``get`` loads again)."""
        with self._lock:
            self._loaded.clear()


def _catalogue_entry(spec: ModelSpec, config: AppConfig) -> ModelEntry:
    """The entry for a catalogue model: the user's own file when ``--checkpoint`` (first) or env
    ``SAM_CHECKPOINT_<MODEL ID>`` names one, else the official file (hash-checked on load)."""
    if not spec.has_weights:
        return ModelEntry(spec)
    given = dict(config.custom_checkpoints).get(spec.model_id)
    path = Path(given).expanduser() if given is not None else checkpoints.custom_checkpoint(spec)
    return ModelEntry(spec, path, custom=path is not None)


class AppContext:
    """Shared services for all tabs; see the module docstring."""

    def __init__(self, config: AppConfig, temp: TempRoot | None = None) -> None:
        unknown = sorted({m for m, _ in config.custom_checkpoints} - set(config.models))
        if unknown:
            raise ValueError(
                f"Custom checkpoint(s) given for {', '.join(unknown)}, which this app does not "
                f"offer; add them to --models."
            )
        self.config = config
        self.limits = Limits.from_config(config)  # read by every entrance (workbench.limits)
        self.temp = temp if temp is not None else TempRoot(config.temp_dir, config.temp_max_bytes)
        self._closers: list[Callable[[], None]] = []
        entries = [_catalogue_entry(get_spec(m), config) for m in config.models]
        entries += [ModelEntry(e.spec, None if e.checkpoint is None else Path(e.checkpoint))
                    for e in config.extra_models]
        self._entries: dict[str, ModelEntry] = {e.model_id: e for e in entries}
        # One budget (workbench.memory), when given, sets the bounds of what holds memory.
        self.memory: MemoryPlan = plan_memory(
            config.memory_budget,
            weights_bytes([e.spec.size_bytes if e.spec.has_weights else 0 for e in entries],
                          config.max_loaded_models),
            config.everything_max_bytes, config.cache_bytes)
        self.cache = EmbeddingCache(self.memory.cache_bytes if self.memory.budget is not None
                                    else config.cache_bytes)
        self.pool = BackendPool(config.max_loaded_models, self._load)
        self.sessions = SessionRegistry(config.max_sessions,
                                        new_per_minute=config.new_sessions_per_minute,
                                        max_bytes=self.memory.session_bytes)
        self.startup_note = ""  # a status line about start-up work (model prefetch on a Space)
        self.encode_timings = EncodeTimings()  # measured encode seconds per model (estimates)
        self.observe = Observations()  # latencies and refusals for /metrics (server.metrics)
        # People's work in flight, counted by every lane: background work waits for zero.
        self.foreground = Activity()
        self._disk: DiskEmbeddingStore | None = None  # attach_disk_embeddings
        # Back-pressure: API calls run one at a time with a few waiting (the rest are refused
        # at once); encoders run one at a time whoever asks, so clicks keep a core.
        self.api_lane = WorkLane("the API", 1, config.api_max_waiting, self._typical_encode_s,
                                 activity=self.foreground)
        # Many-object runs (segment everything, text prompts) take seconds to minutes: a lane
        # of their own, so a long run never holds up the short calls of the API lane.
        self.proposals_lane = WorkLane("many-object runs", 1, config.api_max_waiting,
                                       lambda: 30.0, activity=self.foreground)
        self.encoder_lane = WorkLane("the image encoder", 1,
                                     config.queue_max_size + config.api_max_waiting,
                                     self._typical_encode_s, activity=self.foreground)
        # Clicks outside Gradio's queue (server.live_route): one lane per model, so one
        # model never decodes two clicks at once, and at most CLICK_MAX_WAITING wait for it.
        self._click_lanes: dict[str, WorkLane] = {}
        self._click_lanes_lock = threading.Lock()
        self.zerogpu = zerogpu_active()
        # Encodes and video frames on the CPU pause at their next operation while a click
        # decodes (sam_backends.speed.give_way); a click's decode runs on every core only while
        # nothing else competes for them (workbench.threads): many-object runs, other processes.
        # CPU decodes run on one long-lived thread, and encodes, model loads and many-object
        # runs on threads that end with them: one OpenMP pool in the process keeps a decode's
        # small parallel regions quick (workbench.threads). ZeroGPU: in the calling thread.
        self.give_way = GiveWay()
        decoder = None if self.zerogpu else DecodeThread()
        if decoder is not None:
            self.on_close(decoder.close)
        self.threads = ThreadPolicy(decode_cores(), self._heavy_running, CpuLoad(),
                                    give_way=self.give_way, decoder=decoder)
        # App-wide services beyond the image models (detectors, video trackers): typed,
        # bounded, one registry per app (workbench.services).
        self.services = Services(self)
        self.on_close(self.services.close)
        # ZeroGPU: decorated here, before launch(); elsewhere these are the plain methods.
        self._encode_task = gpu_task(self._encode_now, ENCODE_GPU_SECONDS)
        self._predict_task = gpu_task(self._predict_now, PREDICT_GPU_SECONDS)

    def work_done(self) -> int:
        """A number that grows with every lookup of the cache and every timed click, encode and
        track (the idle trimmer trims only after some work)."""
        stats = self.cache.stats()
        return stats.hits + stats.misses + self.observe.events

    def start_idle_trim(self) -> IdleTrimmer:
        """Start giving freed memory back when the app is quiet (``memory.IdleTrimmer``);
        stopped at shutdown. ``app.launch`` starts it for a served app."""
        trimmer = IdleTrimmer(lambda: self.foreground.count == 0, self.work_done)
        trimmer.start()
        self.on_close(trimmer.stop)
        return trimmer

    def lanes(self) -> dict[str, WorkLane]:
        """Every lane of this app by name (for ``/metrics``)."""
        with self._click_lanes_lock:
            clicks = list(self._click_lanes.values())
        lanes = [self.api_lane, self.proposals_lane, self.encoder_lane, *clicks]
        return {lane.name: lane for lane in lanes}

    def click_lane(self, model_id: str) -> WorkLane:
        """The lane that serialises decodes (clicks, hover previews) on ``model_id``."""
        with self._click_lanes_lock:
            lane = self._click_lanes.get(model_id)
            if lane is None:
                lane = WorkLane(f"{model_id} (clicks)", 1, CLICK_MAX_WAITING, lambda: 0.05,
                                per_client_waiting=CLICK_WAITING_PER_PAGE,
                                activity=self.foreground)
                self._click_lanes[model_id] = lane
            return lane

    def _heavy_running(self) -> int:
        """Jobs running now in the lanes whose work takes seconds (encodes, video frames go
        through the encoder lane; many-object runs through their own), less the encodes and
        frames that give way to decodes (they pause while one runs)."""
        encoder = max(0, self.encoder_lane.running - self.give_way.giving_way_now)
        return encoder + self.proposals_lane.running

    def _typical_encode_s(self) -> float:
        return self.encode_timings.typical_seconds()

    @property
    def export_parent(self) -> Path:
        """Where sessions make their download folders: inside the run's temp folder."""
        return self.temp.path / "exports"

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` at shutdown, before the temp folder goes (e.g. stop job workers)."""
        self._closers.append(callback)

    def close(self) -> None:
        """Stop what registered with ``on_close``, then free the temp folder; at shutdown."""
        while self._closers:
            try:
                self._closers.pop()()
            except Exception:  # noqa: BLE001 - shutdown goes on; the rest must still close
                log.exception("a shutdown step failed")
        self.temp.close()

    # --- the catalogue as this app offers it -------------------------------------------------

    @property
    def model_ids(self) -> list[str]:
        return list(self._entries)

    def entry(self, model_id: str) -> ModelEntry:
        entry = self._entries.get(model_id)
        if entry is None:
            raise UnknownModelError(
                f"Model {model_id!r} is not offered here. Available: {', '.join(self._entries)}."
            )
        return entry

    def spec(self, model_id: str) -> ModelSpec:
        return self.entry(model_id).spec

    def family(self, model_id: str) -> Family:
        """The facts of the model's family (its one-line note, what it can do)."""
        return get_family(self.spec(model_id).family)

    def checkpoint_file(self, model_id: str) -> Path | None:
        """Where the model's weights are (or will be); None for models without weights."""
        entry = self.entry(model_id)
        if entry.spec.hf_repo is not None:  # a model folder: present when its config is there
            from sam_backends.text import hub

            folder = entry.checkpoint or hub.local_folder(hub.for_spec(entry.spec),
                                                          self.config.checkpoint_dir)
            return Path(folder) / hub.CONFIG_FILE
        if entry.checkpoint is not None:
            return entry.checkpoint
        return checkpoints.checkpoint_path(entry.spec, self.config.checkpoint_dir)

    def status(self, model_id: str) -> ModelStatus:
        entry = self.entry(model_id)
        path = self.checkpoint_file(model_id)
        downloadable = entry.checkpoint is None and entry.spec.url is not None
        return ModelStatus(
            model_id=model_id,
            display_name=entry.spec.display_name,
            present=path is None or path.is_file(),
            loaded=self.pool.is_loaded(model_id),
            size_bytes=entry.spec.size_bytes,
            download_command=checkpoints.download_command(entry.spec) if downloadable else None,
            custom=entry.custom,
        )

    @property
    def offline(self) -> bool:
        """True when this server must not download anything (``SAM_OFFLINE``/``HF_HUB_OFFLINE``):
        a model that is not on disk then stays absent, and the page says so instead of
        offering a download that would fail."""
        return checkpoints.is_offline()

    def default_model(self) -> str:
        """The configured default when usable now, else the first model that is present."""
        preferred = self.config.default_model
        if preferred in self._entries and self.status(preferred).present:
            return preferred
        for model_id in self._entries:
            if self.status(model_id).present:
                return model_id
        return next(iter(self._entries))

    # --- weights and models ------------------------------------------------------------------

    def download(self, model_id: str, on_progress: Callable[[int, int], None] | None = None
                 ) -> Path | None:
        """Fetch the model's checkpoint from its URL (verified, atomic; see
        ``checkpoints.download``) and return its path; None for models without weights.

        Raises:
            DownloadError: offline, HTTP error or checksum mismatch (message says what to run).
        """
        entry = self.entry(model_id)
        if entry.checkpoint is not None or not entry.spec.needs_checkpoint:
            return entry.checkpoint
        return checkpoints.download(entry.spec, self.config.checkpoint_dir, progress=False,
                                    on_progress=on_progress)

    def backend(self, model_id: str) -> Backend:
        """The loaded backend for ``model_id`` (loads it on first use; may take seconds).

        Raises:
            UnknownModelError, CheckpointMissingError, CheckpointCorruptError,
            BackendUnavailableError.
        """
        self.entry(model_id)
        backend = self.pool.get(model_id)
        return GpuRoutedBackend(self, backend) if self.zerogpu else backend

    def _load(self, model_id: str) -> Backend:
        entry = self.entry(model_id)
        return self.in_own_thread(lambda: create_backend(
            entry.spec,
            checkpoint=entry.checkpoint,
            device=self.config.device,
            precision=self.config.precision,
            checkpoint_dir=self.config.checkpoint_dir,
        ), "samwb-load")

    def in_own_thread(self, work: Callable[[], T], name: str = "samwb-work") -> T:
        """``work()`` on a thread that ends with it (``workbench.threads.in_own_thread``: its
        OpenMP pool goes with it); on ZeroGPU in the calling thread, whose GPU call it is."""
        return work() if self.zerogpu else in_own_thread(work, name)

    def encode(self, model_id: str, image: np.ndarray, digest: str | None = None
               ) -> EncodeResult:
        """The embedding of ``image`` (RGB uint8 H x W x 3) for ``model_id``, from the cache when
        another session or an earlier call already computed it (or from the disk layer, when
        one is attached), else encoded in the encoder lane.

        Args:
            digest: ``images.image_digest(image)`` if the caller has it (saves hashing again).
        """
        backend = self.backend(model_id)
        key = cache_key(digest or image_digest(image), model_id, backend.precision)

        own: list[float] = []  # the encoder's own seconds, without the wait for the lane

        def encode_now() -> Embedding:
            with self.giving_way(backend.device):
                began = time.perf_counter()
                try:
                    return self._encode_task(model_id, image)
                finally:
                    own.append(time.perf_counter() - began)

        def compute() -> Embedding:
            with self.encoder_lane.admit():
                return self.in_own_thread(encode_now, "samwb-encode")

        # A person waits for this key: a background encode of it stops giving way.
        with self.foreground.wanting(key):
            try:
                return self._layered_encode(key, backend, compute, record=True, own=own)
            except EncodeAbandoned:  # waited for a background encode that was just dropped
                own.clear()
                return self._layered_encode(key, backend, compute, record=True, own=own)

    def giving_way(self, device: object) -> ContextManager[object]:
        """Around heavy model work on ``device`` (an encode, a video frame) in the encoder lane:
        on the CPU it gives way to clicks (``give_way``); elsewhere the accelerator runs it and
        pausing the host thread would gain nothing."""
        on_cpu = str(device).startswith("cpu") and not self.zerogpu
        return self.give_way.giving_way() if on_cpu else contextlib.nullcontext()

    def encode_in_background(self, model_id: str, image: np.ndarray, digest: str,
                             run: Callable[[Backend], Embedding]) -> EncodeResult:
        """``encode`` for work nobody asked for yet (``workbench.projects.prefetch``): the same
        cache key and disk layer, but ``run(backend)`` encodes, outside the encoder lane (whose
        jobs count as foreground work), and its time is not taken as a typical encode."""
        backend = self.backend(model_id)
        key = cache_key(digest, model_id, backend.precision)
        return self._layered_encode(key, backend, lambda: run(backend), record=False)

    def _layered_encode(self, key: CacheKey, backend: Backend,
                        compute: Callable[[], Embedding], record: bool,
                        own: list[float] | None = None) -> EncodeResult:
        """Memory cache, then the disk layer, then ``compute()`` (kept on disk afterwards).
        ``own``: where ``compute`` puts the encoder's own seconds (the rest was waiting)."""
        computed = []
        start = time.perf_counter()

        def layered() -> Embedding:
            disk = self._disk
            if disk is not None:
                device = "cpu" if self.zerogpu else backend.device
                found = disk.get(key, device=device)
                if found is not None:
                    return found
            computed.append(True)
            embedding = compute()
            if disk is not None:
                disk.put(key, embedding)
            return embedding

        embedding = self.cache.get_or_compute(key, layered)
        wall = time.perf_counter() - start
        seconds = min(wall, own[-1]) if computed and own else wall
        if computed and record:
            self.encode_timings.record(key[1], seconds)
            self.observe.latency("encode", key[1], seconds)
        return EncodeResult(embedding, not computed, seconds, max(0.0, wall - seconds))

    # --- embeddings kept on disk (a project's) -------------------------------------------

    def attach_disk_embeddings(self, store: DiskEmbeddingStore | None) -> None:
        """Keep embeddings in ``store`` too (None: stop): ``encode`` then looks in memory, then
        on disk, then computes and writes the result there. Off by default.

        The layer is app-wide: attach a project's store only where one project is open for
        the whole app (``--project``), never a visitor's, or one visitor's images would be
        written into another's folder.
        """
        self._disk = store

    @property
    def disk_embeddings(self) -> DiskEmbeddingStore | None:
        """The attached disk layer, or None."""
        return self._disk

    def _encode_now(self, model_id: str, image: np.ndarray) -> Embedding:
        """The encoder alone. On ZeroGPU this runs in the GPU worker (a fork of this process,
        with its own copy of the pool), so it takes the model id rather than the backend and
        returns the embedding in host memory, ready to pickle back and cache."""
        embedding = self.pool.get(model_id).encode(image)
        return embedding_to(embedding, "cpu") if self.zerogpu else embedding

    def predict(self, model_id: str, embedding: Embedding, prompts: Prompts) -> Prediction:
        """``self.backend(model_id).predict(embedding, prompts)``, except on ZeroGPU, where the
        decoder must run inside a GPU call too (this process has no CUDA there).

        Raises:
            the errors of ``backend`` and of ``Backend.predict`` (PromptError...).
        """
        self.pool.get(model_id)  # load here first, so a fresh GPU worker inherits the model
        return self._predict_task(model_id, embedding, prompts)

    def _predict_now(self, model_id: str, embedding: Embedding, prompts: Prompts) -> Prediction:
        """The decoder alone; on ZeroGPU its masks are made before returning, since a lazy
        mask source (a closure over the GPU model) cannot be pickled back."""
        backend = self.pool.get(model_id)
        if not self.zerogpu:
            return backend.predict(embedding, prompts)
        made = backend.predict(embedding_to(embedding, backend.device), prompts)
        return Prediction.from_masks(made.masks, made.scores, made.low_res_logits,
                                     made.decode_seconds)

    def cached(self, model_id: str, digest: str) -> bool:
        """True when an embedding for this image and model is in the cache or the disk layer
        (no encode needed)."""
        if not self.pool.is_loaded(model_id):
            return False
        precision = self.pool.get(model_id).precision
        key = cache_key(digest, model_id, precision)
        disk = self._disk
        return key in self.cache or (disk is not None and key in disk)


class GpuRoutedBackend:
    """On ZeroGPU, a loaded backend whose ``predict`` runs in a GPU call (``ctx.predict``), so
    every caller (clicks, compare, the APIs) gets the GPU without knowing about ZeroGPU; every
    other attribute is the backend's own."""

    def __init__(self, ctx: AppContext, backend: Backend) -> None:
        self._ctx = ctx
        self._backend = backend

    def predict(self, embedding: Embedding, prompts: Prompts) -> Prediction:
        return self._ctx.predict(self._backend.model_id, embedding, prompts)

    def __getattr__(self, name: str):
        return getattr(self._backend, name)
