"""Encodes that step aside: pause points between the image encoder's blocks.

An app may encode images nobody asked for yet (the next images of a project). Such an encode
must never hold up a person's click, but a running encoder cannot be interrupted. So the
encode runs in a thread of its own inside ``pausing(backend, wait)``, and ``wait()`` is called
before each transformer block of the image encoder and before each layer inside one: the
caller blocks there while foreground work is in flight, or raises ``EncodeAbandoned`` to drop
the encode. A click then shares the cores with at most the one layer that is running (see
``Family.encoder_blocks``, the family's fact of where the blocks are). A backend without such
blocks runs whole.

The hooks are installed once per loaded model and then stay: adding and removing hooks while
another thread runs the same model would change what torch iterates. They do nothing outside a
``pausing`` block of the calling thread (a thread-local), so a person's encode on the same
model runs as before (one attribute lookup per block).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator

from .families import get_family

_local = threading.local()
_install_lock = threading.Lock()
_HOOKED = "_samwb_pause_point"  # attribute set on a block once its hook is installed


class EncodeAbandoned(Exception):
    """A background encode was dropped at a pause point (nobody wants that image any more)."""


def encoder_blocks(backend: Any) -> list[Any]:
    """The image encoder's blocks of ``backend`` (the family's ``encoder_blocks`` path from
    ``backend.model``); empty when the family names none or the model lacks them."""
    spec = getattr(backend, "spec", None)
    model = getattr(backend, "model", None)
    if spec is None or model is None:
        return []
    path = get_family(spec.family).encoder_blocks
    if not path:
        return []
    found: Any = model
    for name in path.split("."):
        found = getattr(found, name, None)
        if found is None:
            return []
    return list(found)


def _pause_point(module: Any, args: Any) -> None:
    """Forward pre-hook: in a thread inside ``pausing``, call its ``wait``; else nothing."""
    wait = getattr(_local, "wait", None)
    if wait is not None:
        wait()


def install_pause_points(backend: Any) -> int:
    """Hook every encoder block of ``backend`` once (idempotent), and every leaf module inside
    it (linear layers, norms, convolutions): a click then waits for one layer of a paused
    encode, tens of milliseconds, not for a whole block. Returns the number of pause points
    (0: the family names no blocks)."""
    blocks = encoder_blocks(backend)
    points = 0
    with _install_lock:
        for block in blocks:
            for module in (block, *_leaves(block)):
                if not getattr(module, _HOOKED, False):
                    module.register_forward_pre_hook(_pause_point)
                    setattr(module, _HOOKED, True)
                points += 1
    return points


def _leaves(block: Any) -> list[Any]:
    modules = getattr(block, "modules", None)
    if modules is None:
        return []
    return [m for m in modules() if m is not block and not any(True for _ in m.children())]


@contextlib.contextmanager
def pausing(backend: Any, wait: Callable[[], None]) -> Iterator[int]:
    """Within the ``with`` body, in this thread only, call ``wait()`` before each encoder block
    of ``backend``; yields the number of pause points (0: the encoder runs whole).

    ``wait`` may block (the encode pauses) or raise (``EncodeAbandoned``: the encode stops and
    the exception leaves ``backend.encode``).
    """
    count = install_pause_points(backend)
    previous = getattr(_local, "wait", None)
    _local.wait = wait
    try:
        yield count
    finally:
        _local.wait = previous
