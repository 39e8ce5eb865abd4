"""The REST API's two limiters (requests per key, failed authentications per address), and the
token bucket that also bounds the canvas's click route per address (``server.live_route``).

Both are bounded tables (at most ``max_entries`` keys or addresses; the least recently seen are
forgotten first), guarded by a lock, with an injectable clock so tests need no sleeping. Each
``RestSecurity`` owns its own pair: there is no module-level state.

Why two: a per-key limit protects the server from one client's loop; a per-address limit on
failures makes guessing keys slow (and logs who tries), and it applies before the key is even
looked at, so a blocked address learns nothing more about any key.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable

WINDOW_S = 60.0
MAX_ENTRIES = 10_000


def address_key(host: str | None) -> str:
    """The unit an address is limited by: an IPv4 address, or an IPv6 address's /64 network
    (one host usually owns a whole /64, so limiting single IPv6 addresses would limit nothing).
    """
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per key: ``per_min`` requests a minute, with bursts of up to ``burst``
    (default ``per_min``).

    ``per_min == 0`` turns the limit off.
    """

    def __init__(self, per_min: float, *, burst: int | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 max_entries: int = MAX_ENTRIES) -> None:
        if per_min < 0 or max_entries < 1 or (burst is not None and burst < 1):
            raise ValueError(f"a rate limit needs per_min >= 0 (0: off) and a burst >= 1, got "
                             f"{per_min} and {burst}")
        self.per_min = per_min
        self.burst = float(burst if burst is not None else per_min)
        self._rate = per_min / WINDOW_S  # tokens per second
        self._clock = clock
        self._max = max_entries
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> int | None:
        """Spend one request of ``key``: None when allowed, else seconds (>= 1) to wait."""
        if self.per_min == 0:
            return None
        now = self._clock()
        with self._lock:
            bucket = self._buckets.pop(key, None) or _Bucket(self.burst, now)
            bucket.tokens = min(self.burst,
                                bucket.tokens + max(0.0, now - bucket.at) * self._rate)
            bucket.at = now
            self._buckets[key] = bucket
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return max(1, math.ceil((1.0 - bucket.tokens) / self._rate))

    @classmethod
    def per_second(cls, rate: float, burst: int, **kwargs: Any) -> RateLimiter:
        """``rate`` requests a second sustained, bursts of up to ``burst`` (rate 0: off)."""
        return cls(rate * WINDOW_S, burst=burst, **kwargs)

    def __len__(self) -> int:
        return len(self._buckets)


class FailureLimiter:
    """Failed authentications per address: after ``per_min`` failures within a minute, the
    address is refused (even with a correct key) until the oldest of them is a minute old.

    ``per_min == 0`` turns the limit off.
    """

    def __init__(self, per_min: int, *, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = MAX_ENTRIES) -> None:
        if per_min < 0 or max_entries < 1:
            raise ValueError(f"a failure limit needs per_min >= 0 (0: off), got {per_min}")
        self.per_min = per_min
        self._clock = clock
        self._max = max_entries
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def blocked(self, address: str) -> int | None:
        """None when ``address`` may try, else seconds (>= 1) until it may."""
        if self.per_min == 0:
            return None
        now = self._clock()
        with self._lock:
            times = self._failures.get(address)
            if times is None:
                return None
            while times and now - times[0] >= WINDOW_S:
                times.popleft()
            if not times:
                del self._failures[address]
                return None
            if len(times) < self.per_min:
                return None
            return max(1, math.ceil(times[0] + WINDOW_S - now))

    def record_failure(self, address: str) -> bool:
        """Count one failure; True when this one reached the limit (worth a log line)."""
        if self.per_min == 0:
            return False
        now = self._clock()
        with self._lock:
            times = self._failures.pop(address, None)
            if times is None:
                times = deque(maxlen=self.per_min)
            times.append(now)
            self._failures[address] = times
            if len(self._failures) > self._max:
                self._failures.popitem(last=False)
            return len(times) == self.per_min and now - times[0] < WINDOW_S

    def __len__(self) -> int:
        return len(self._failures)
