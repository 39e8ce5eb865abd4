"""``GET /metrics``: the app's numbers in Prometheus's text format, for an operator to scrape.

What is there (every name starts with ``samwb_``): the process's resident memory and the
memory budget's shares (``workbench.memory``), the loaded models' weights, the embedding cache
(bytes, entries, bound, hits, misses, evictions, trims), page sessions (count, bytes, bound,
history drops, releases, refusals), every lane's running and waiting work and its refusals,
refused HTTP answers by status and route family (413, 429, 503, 504, 507; counted by the guard
middleware), click, encode and track latency histograms per model
(``workbench.observe``), and REST jobs by status.

Who may read it (``--metrics``): "loopback" by default, clients on this machine only, and not
when the request came through a proxy (an ``X-Forwarded-For``/``Forwarded`` header) or the app
runs with ``--share`` (the share tunnel connects from loopback); "key": a REST API key with the
``metrics`` scope (``Authorization: Bearer samwb_...``, the REST API's own checks and limits);
"off": no route. Refusals are the REST API's error shape with 403/401.

Each app has its own ``CollectorRegistry`` holding one collector that reads the app's objects
at scrape time: nothing is registered in prometheus_client's global default registry, so two
apps in one process (tests) never share or clash.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from server.security.auth import AuthError
from workbench.context import AppContext
from workbench.memory import loaded_weights_bytes, resident_bytes
from workbench.observe import LATENCY_BUCKETS, LATENCY_KINDS

METRICS_ROUTE = "/metrics"
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


class AppCollector:
    """Reads one app's numbers at each scrape (a prometheus_client custom collector)."""

    def __init__(self, ctx: AppContext, jobs: Any = None) -> None:
        self.ctx = ctx
        self.jobs = jobs

    def collect(self) -> Iterable[Metric]:
        yield from self._memory()
        yield from self._cache()
        yield from self._sessions()
        yield from self._lanes()
        yield from self._refusals()
        yield from self._latencies()
        yield from self._jobs()

    def _memory(self) -> Iterable[Metric]:
        rss = resident_bytes()
        if rss is not None:
            yield GaugeMetricFamily("samwb_process_resident_memory_bytes",
                                    "Resident memory of the app's process.", value=rss)
        plan = self.ctx.memory
        if plan.budget is not None:
            yield GaugeMetricFamily("samwb_memory_budget_bytes",
                                    "The --memory-budget the app was started with.",
                                    value=plan.budget)
            shares = GaugeMetricFamily("samwb_memory_share_bytes",
                                       "The budget's shares (workbench.memory).",
                                       labels=["holder"])
            for holder, value in (("base", plan.base), ("weights", plan.weights),
                                  ("work", plan.work), ("cache", plan.cache_bytes),
                                  ("sessions", plan.session_bytes),
                                  ("rest_images", plan.store_bytes)):
                shares.add_metric([holder], value or 0)
            yield shares
        weights = GaugeMetricFamily("samwb_model_weights_bytes",
                                    "Parameters and buffers of each loaded model.",
                                    labels=["model"])
        for model_id, backend in self.ctx.pool.loaded().items():
            weights.add_metric([model_id], loaded_weights_bytes(backend))
        yield weights

    def _cache(self) -> Iterable[Metric]:
        stats = self.ctx.cache.stats()
        for name, text, value in (
                ("bytes", "Bytes the embedding cache holds (every storage of its tensors).",
                 stats.bytes),
                ("entries", "Embeddings in the cache.", stats.entries),
                ("max_bytes", "The cache's bound.", stats.max_bytes)):
            yield GaugeMetricFamily(f"samwb_embedding_cache_{name}", text, value=value)
        for name, text, value in (
                ("hits", "Lookups answered from the cache.", stats.hits),
                ("misses", "Lookups that computed.", stats.misses),
                ("evictions", "Entries evicted to stay under the bound.", stats.evictions),
                ("evicted_bytes", "Bytes evicted.", stats.evicted_bytes),
                ("trims", "Times malloc was asked to return evicted memory.", stats.trims)):
            yield CounterMetricFamily(f"samwb_embedding_cache_{name}", text, value=value)

    def _sessions(self) -> Iterable[Metric]:
        registry = self.ctx.sessions
        registry.enforce_budget()  # measures every session (and applies the bound)
        stats = registry.stats()
        yield GaugeMetricFamily("samwb_sessions", "Open page sessions.", value=stats.sessions)
        yield GaugeMetricFamily("samwb_session_bytes",
                                "Bytes the page sessions hold (images, masks, undo history).",
                                value=stats.bytes)
        if stats.max_bytes is not None:
            yield GaugeMetricFamily("samwb_session_max_bytes", "The sessions' byte bound.",
                                    value=stats.max_bytes)
        for name, text, value in (
                ("history_drops", "Undo histories dropped for the byte bound.",
                 stats.history_drops),
                ("budget_releases", "Idle sessions released for the byte bound.",
                 stats.budget_releases),
                ("refused", "New sessions refused (registry full of active ones, or rate).",
                 stats.refused)):
            yield CounterMetricFamily(f"samwb_session_{name}", text, value=value)

    def _lanes(self) -> Iterable[Metric]:
        running = GaugeMetricFamily("samwb_lane_running", "Work running in each lane.",
                                    labels=["lane"])
        waiting = GaugeMetricFamily("samwb_lane_waiting", "Work waiting in each lane.",
                                    labels=["lane"])
        refused = CounterMetricFamily("samwb_lane_refused", "Work each lane refused (busy).",
                                      labels=["lane"])
        for name, lane in self.ctx.lanes().items():
            running.add_metric([name], lane.running)
            waiting.add_metric([name], lane.waiting)
            refused.add_metric([name], lane.refused)
        yield from (running, waiting, refused)

    def _refusals(self) -> Iterable[Metric]:
        family = CounterMetricFamily("samwb_http_refusals",
                                     "Answers with 413, 429, 503, 504 or 507, by route family.",
                                     labels=["status", "route"])
        for (status, route), count in sorted(self.ctx.observe.statuses().items()):
            family.add_metric([str(status), route], count)
        yield family

    def _latencies(self) -> Iterable[Metric]:
        families = {kind: HistogramMetricFamily(
            f"samwb_{kind}_seconds", f"Wall time of a {kind}, per model.", labels=["model"])
            for kind in LATENCY_KINDS}
        for series in self.ctx.observe.latencies():
            cumulative, buckets = 0, []
            for bound, count in zip(LATENCY_BUCKETS, series.counts):
                cumulative += count
                buckets.append((repr(float(bound)), cumulative))
            buckets.append(("+Inf", series.count))
            families[series.kind].add_metric([series.model_id], buckets, series.total_s)
        yield from families.values()

    def _jobs(self) -> Iterable[Metric]:
        if self.jobs is None:
            return
        family = GaugeMetricFamily("samwb_jobs", "REST jobs held, by status.",
                                   labels=["status"])
        counts = self.jobs.counts()
        for status in ("starting", "processing", "succeeded", "failed", "canceled"):
            family.add_metric([status], counts.get(status, 0))
        yield family


def jobs_in(routes: Iterable[BaseRoute]) -> Any:
    """The REST API's ``JobManager`` among ``rest_routes``'s routes (None without one)."""
    for route in routes:
        if isinstance(route, Mount) and route.path == "/v1":
            return getattr(route.app.state, "jobs", None)
    return None


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refused(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "field": None},
                         "detail": message}, status_code=status)


def metrics_routes(ctx: AppContext, security: Any, rest: Iterable[BaseRoute] = ()
                   ) -> list[Route]:
    """``GET /metrics`` for ``FastAPI(routes=...)`` (none with ``--metrics off``)."""
    access = ctx.config.metrics_access
    if access == "off":
        return []
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AppCollector(ctx, jobs_in(rest)))

    def allowed(request: Request) -> Response | None:
        if access == "key":
            try:
                security.check(request, "metrics")
            except AuthError as exc:
                response = _refused(exc.status, exc.code, exc.message)
                response.headers.update(exc.headers)
                return response
            return None
        proxied = any(name in request.headers for name in PROXY_HEADERS)
        host = request.client.host if request.client else None
        if ctx.config.share or proxied or not _loopback(host):
            return _refused(403, "forbidden", "/metrics answers clients on the server's own "
                            "machine only (--metrics loopback). To scrape it from elsewhere, "
                            "start the app with --metrics key and send a REST API key with the "
                            "'metrics' scope.")
        return None

    async def metrics(request: Request) -> Response:
        refusal = allowed(request)
        if refusal is not None:
            return refusal
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST,
                        headers={"Cache-Control": "no-store"})

    return [Route(METRICS_ROUTE, metrics, methods=["GET"])]
