"""The default model ready before the first person needs it: loaded, and its image encoder run
once on a plain picture, in the background at start-up (``python app.py``; ``--no-warm-start``
turns it off).

Why: the first encode after a start pays for more than an encode: the model's load and every
kernel's and buffer's first use. On a 2-core AMD EPYC (AVX2 only), SAM 2.1 tiny, the first
encode in a process took 7.7 s against 3.0 s for the next (most of the difference the first
touch of the encoder's working memory), and in the app a person's first upload's encode took
8.3-10.2 s, against 3.7-4.4 s after a warm start (``benchmarks/bench_warm_start.py``; ViT-B
15.6-18.3 s against 9.4-9.8 s).

Never in anyone's way:

* it runs outside the encoder lane, on a thread that ends with it (``workbench.threads``);
* at each of the encoder's pause points (``sam_backends.background``) it drops the run
  (``EncodeAbandoned``) as soon as any person's work is in flight (``ctx.foreground``): their own
  first encode then warms the model, as without a warm start;
* its embedding is not cached (nobody asked for that picture) and its time is not taken as a
  typical encode (the page's "about N s" estimate);
* a model whose weights are not on disk is not fetched here (on a Space ``app.start_prefetch``
  fetches the default model, then warms it); a model that encodes nothing (GrabCut) needs no
  warming; on ZeroGPU nothing is warmed (a GPU call there is a visitor's quota).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sam_backends.background import EncodeAbandoned, pausing
from sam_backends.errors import SamBackendError
from workbench.threads import in_own_thread

if TYPE_CHECKING:
    from workbench.context import AppContext

log = logging.getLogger("samwb.warm")

PICTURE_SIDE = 1024  # every encoder here works at 1024 x 1024 (or pads to it)


@dataclass(frozen=True)
class WarmStart:
    """What a warm start did: ``warmed`` (loaded and encoded once), else why not (``reason``:
    absent weights, nothing to encode, a person's work came first, the app closed, a failure).
    ``load_s`` and ``encode_s`` are the seconds each part took (None when not reached)."""

    model_id: str
    warmed: bool
    reason: str = ""
    load_s: float | None = None
    encode_s: float | None = None


def plain_picture(side: int = PICTURE_SIDE) -> np.ndarray:
    """A smooth RGB uint8 gradient, ``side`` x ``side``: what the encoder warms on (its cost
    does not depend on the content)."""
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    red = np.broadcast_to(ramp[None, :], (side, side))
    green = np.broadcast_to(ramp[:, None], (side, side))
    blue = np.full((side, side), 128.0, dtype=np.float32)
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def warm_start(ctx: AppContext, model_id: str, closed: threading.Event | None = None
               ) -> WarmStart:
    """Load ``model_id`` and encode ``plain_picture()`` once with it (module docstring); never
    raises for a model that cannot be warmed, it says why instead."""
    if ctx.zerogpu:
        return WarmStart(model_id, False, "on ZeroGPU a GPU call is a visitor's quota")
    if not ctx.family(model_id).encodes:
        return WarmStart(model_id, False, "this model encodes nothing")
    if not ctx.status(model_id).present:
        return WarmStart(model_id, False, "its weights are not on disk")
    start = time.perf_counter()
    try:
        backend = ctx.backend(model_id)
    except SamBackendError as exc:
        return WarmStart(model_id, False, f"it could not be loaded: {exc}")
    load_s = time.perf_counter() - start

    def step_aside() -> None:
        if closed is not None and closed.is_set():
            raise EncodeAbandoned("the app is closing")
        if ctx.foreground.count > 0:
            raise EncodeAbandoned("a person's work came first")

    def encode() -> None:
        with pausing(backend, step_aside):
            step_aside()
            backend.encode(plain_picture())

    start = time.perf_counter()
    try:
        in_own_thread(encode, "samwb-warm")
    except EncodeAbandoned as exc:
        return WarmStart(model_id, False, str(exc), load_s)
    except (SamBackendError, RuntimeError, MemoryError) as exc:
        return WarmStart(model_id, False, f"its first encode failed: {exc}", load_s)
    return WarmStart(model_id, True, "", load_s, time.perf_counter() - start)


def start_warm_start(ctx: AppContext, model_id: str) -> threading.Thread:
    """``warm_start`` on a daemon thread; what it did goes to the log. Stops at the next pause
    point when the app closes."""
    closed = threading.Event()
    ctx.on_close(closed.set)

    def run() -> None:
        try:
            result = warm_start(ctx, model_id, closed)
        except Exception as exc:  # noqa: BLE001 - optional work: said in the log, never raised
            log.warning("Warm start of %s failed: %s", model_id, exc)
            return
        if result.warmed:
            log.info("Warm start: %s loaded in %.1f s and ran its first encode in %.1f s.",
                     model_id, result.load_s, result.encode_s)
        else:
            log.info("Warm start of %s skipped: %s.", model_id, result.reason)

    thread = threading.Thread(target=run, name="samwb-warm-start", daemon=True)
    thread.start()
    return thread
