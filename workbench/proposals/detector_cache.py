"""A bounded, thread-safe cache of loaded detectors: the type behind ``ctx.services.detector``.

The detector is the same for every user (weights only; its image-feature cache is bounded and
thread-safe, like the backend pool's models) and loading it takes seconds and ~600 MB, so each
app keeps one ``BoundedDetectorCache`` in its ``workbench.services.Services``, keyed by what
decides the loaded model, never by user or session:

    (checkpoint folder, device, precision)  ->  Owlv2Detector

At most ``max_entries`` are held (least recently used dropped first). ``clear()`` frees them
(``AppContext.close``). No module-level instance: two apps in one process share nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable


class BoundedDetectorCache:
    """Least-recently-used map of loaded detectors, at most ``max_entries`` long.

    ``get(key, load)`` returns the cached detector or calls ``load()`` once (concurrent callers
    of the same key wait for that one load instead of loading twice; a failed load is not
    cached, so the next call retries and gets the same clear error).
    """

    def __init__(self, max_entries: int = 2) -> None:
        if int(max_entries) < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries!r}")
        self.max_entries = int(max_entries)
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one load per key; others wait for it
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    return self._entries[key]
            try:
                value = load()
            except BaseException:
                with self._lock:
                    self._loading.pop(key, None)
                raise
            with self._lock:  # stored and unmarked at once: no second load can slip in
                self._loading.pop(key, None)
                self._entries[key] = value
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
            return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

