"""Prometheus metrics of the service (prometheus-client), in a registry of the application's own.

Exposed at ``GET /metrics`` in the Prometheus text format:

- ``domainfit_requests_total{endpoint, method, status}``: every HTTP request
  answered, refused ones (401, 413, 422) included; ``endpoint`` is the route
  path, or ``other`` for a path the service does not have.
- ``domainfit_request_duration_seconds{endpoint}``: a histogram of the time to
  answer, from the first byte of the request to the end of the response.
- ``domainfit_searches_total{mode, version}``: searches answered.
- ``domainfit_search_empty_results_total{mode, version}``: searches that
  returned nothing (after ``min_score``).
- ``domainfit_search_results{mode}``: a histogram of the number of hits returned.
- ``domainfit_embed_inputs_total``: texts embedded through ``/embed``.
- ``domainfit_index_documents``: documents in the index the service reads.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Latency buckets in seconds: sub-millisecond to several seconds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """The service's counters and histograms, registered in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "domainfit_requests", "HTTP requests answered", ["endpoint", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "domainfit_request_duration_seconds", "time to answer a request", ["endpoint"], buckets=_BUCKETS, registry=r
        )
        self.searches = Counter("domainfit_searches", "searches answered", ["mode", "version"], registry=r)
        self.empty = Counter(
            "domainfit_search_empty_results", "searches that returned no result", ["mode", "version"], registry=r
        )
        self.hits = Histogram(
            "domainfit_search_results",
            "results returned per search",
            ["mode"],
            buckets=(0, 1, 2, 5, 10, 20, 50, 100, 1000),
            registry=r,
        )
        self.embedded = Counter("domainfit_embed_inputs", "texts embedded through /embed", registry=r)
        self.documents = Gauge("domainfit_index_documents", "documents in the served index", registry=r)

    def observe_search(self, mode: str, version: str, n_hits: int) -> None:
        """Count one answered search and whether it came back empty."""
        self.searches.labels(mode, version).inc()
        self.hits.labels(mode).observe(n_hits)
        if n_hits == 0:
            self.empty.labels(mode, version).inc()

    def exposition(self) -> tuple[bytes, str]:
        """Return the metrics in the Prometheus text format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RequestMetrics:
    """ASGI middleware counting every HTTP request and timing it, by endpoint, method and status.

    ``endpoints`` are the service's paths; any other path is counted as
    ``other`` (so unknown paths cannot grow the label set).
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, endpoints: Iterable[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoints = frozenset(endpoints)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and count it with the status the response started with (500 if none)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = scope.get("path", "")
        endpoint = path if path in self.endpoints else "other"
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.requests.labels(endpoint, scope.get("method", ""), str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
