"""What the app counts for its operator: latencies per model and refused requests.

Plain counters, no exporter: ``server.metrics_route`` reads them at scrape time and writes them
in Prometheus's text format, so the application layer stays free of HTTP and of any metrics
library. One ``Observations`` per app (``AppContext.observe``), bounded: at most
``MAX_SERIES`` (kind, model) latency series and ``MAX_SERIES`` (status, route) counters; a
label pair beyond that is counted under ``"other"``, so a stream of odd model ids or paths
cannot grow the process.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

# Seconds: a hover's decode (tens of ms) up to a long track (minutes).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                   300.0, 600.0)
MAX_SERIES = 64
OTHER = "other"
LATENCY_KINDS = ("click", "encode", "track")
REFUSAL_STATUSES = (413, 429, 503, 504, 507)


@dataclass(frozen=True)
class LatencySeries:
    """One histogram: ``counts[i]`` observations <= ``LATENCY_BUCKETS[i]`` (not cumulative;
    the last entry counts those above every bucket), their ``total_s`` and ``count``."""

    kind: str
    model_id: str
    counts: tuple[int, ...]
    total_s: float
    count: int


class Observations:
    """See the module docstring; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latency: dict[tuple[str, str], list[float]] = {}  # bucket counts + [sum, count]
        self._statuses: dict[tuple[int, str], int] = {}
        self._events = 0

    @property
    def events(self) -> int:
        """Latencies recorded so far, all kinds: a number that grows with the app's work."""
        with self._lock:
            return self._events

    def latency(self, kind: str, model_id: str, seconds: float) -> None:
        """Record one ``kind`` ("click", "encode" or "track") on ``model_id``."""
        if kind not in LATENCY_KINDS:
            raise ValueError(f"Unknown latency kind {kind!r}; use one of {LATENCY_KINDS}.")
        with self._lock:
            key = (kind, model_id)
            if key not in self._latency and len(self._latency) >= MAX_SERIES:
                key = (kind, OTHER)
            row = self._latency.setdefault(key, [0.0] * (len(LATENCY_BUCKETS) + 3))
            row[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            row[-2] += float(seconds)
            row[-1] += 1
            self._events += 1

    def status(self, status: int, route: str) -> None:
        """Count a refusal answered with ``status`` on ``route`` (a route family, not a path)."""
        with self._lock:
            key = (int(status), route)
            if key not in self._statuses and len(self._statuses) >= MAX_SERIES:
                key = (int(status), OTHER)
            self._statuses[key] = self._statuses.get(key, 0) + 1

    def latencies(self) -> list[LatencySeries]:
        with self._lock:
            rows = sorted(self._latency.items())
        return [LatencySeries(kind, model, tuple(int(c) for c in row[:-2]), row[-2], int(row[-1]))
                for (kind, model), row in rows]

    def statuses(self) -> dict[tuple[int, str], int]:
        with self._lock:
            return dict(self._statuses)


def route_family(path: str) -> str:
    """The label of a request path: a few fixed families, never the path itself."""
    for prefix, name in (("/v1/jobs", "rest_jobs"), ("/v1", "rest"),
                         ("/samwb/segment", "click"), ("/gradio_api", "gradio"),
                         ("/metrics", "metrics")):
        if path.startswith(prefix):
            return name
    return "page"
