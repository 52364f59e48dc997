"""Prometheus metrics of the memory server: one registry per process, served at `/metrics`.

Names are the contract of the Helm chart's alerts and dashboard (deploy/helm/mnemo), which a
test checks against a live `/metrics`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

disable_created_metrics()  # the *_created series only double what a scrape has to carry
REGISTRY = CollectorRegistry()
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "mnemo_http_requests",
    "HTTP requests by method, route template and status code",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "mnemo_http_request_duration_seconds",
    "HTTP request latency by method and route template",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
OPERATIONS = Counter(
    "mnemo_memory_operations",
    "Memory operations by kind (passage_insert, passage_search, block_update, ...)",
    ["operation"],
    registry=REGISTRY,
)
EMBED_SECONDS = Histogram(
    "mnemo_embedding_duration_seconds",
    "Time to embed a batch of texts (cache misses only), by embedding handle",
    ["handle"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
SEARCH_SECONDS = Histogram(
    "mnemo_search_duration_seconds",
    "Archival search latency inside the server (embedding included), by mode",
    ["mode"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
REDACTIONS = Counter(
    "mnemo_redactions",
    "Secrets replaced by [REDACTED] before storage",
    registry=REGISTRY,
)
DB_ERRORS = Counter(
    "mnemo_db_errors",
    "Requests that failed because the database did not answer (503)",
    registry=REGISTRY,
)


class StoreCollector(Collector):
    """Gauges read from the store at scrape time: pool use and row counts. Counting is cached
    for ten times as long as it took (at most a minute): fresh on a small database, and never a
    noticeable load from frequent scrapes of a large one."""

    def __init__(
        self, stats: Callable[[], dict[str, int]], counts: Callable[[], dict[str, int]]
    ) -> None:
        self._stats = stats
        self._counts = counts
        self._cached: tuple[float, dict[str, int]] | None = None  # (valid until, counts)

    def collect(self) -> Iterator[Any]:
        stats = _safely(self._stats)
        size = stats.get("pool_size", 0)
        in_use = max(0, size - stats.get("pool_available", 0)) if "pool_size" in stats else 0
        yield _gauge("mnemo_db_pool_size", "Open database connections in the pool", size)
        yield _gauge("mnemo_db_pool_max", "Configured maximum pool size", stats.get("pool_max", 0))
        yield _gauge("mnemo_db_pool_in_use", "Pool connections lent to requests", in_use)
        yield _gauge(
            "mnemo_db_pool_waiting",
            "Requests waiting for a pool connection",
            stats.get("requests_waiting", 0),
        )
        now = time.monotonic()
        if self._cached is None or now > self._cached[0]:
            counts = _safely(self._counts)
            took = time.monotonic() - now
            self._cached = (now + min(60.0, took * 10), counts)
        counts = self._cached[1]
        for name in ("agents", "blocks", "passages", "messages"):
            if name in counts:
                yield _gauge(f"mnemo_{name}", f"Stored {name}", counts[name])


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _safely(read: Callable[[], dict[str, int]]) -> dict[str, int]:
    """A scrape during a database outage still answers (the counts are just absent)."""
    try:
        return dict(read())
    except Exception:
        return {}


_collector: StoreCollector | None = None


def watch_store(stats: Callable[[], dict[str, int]], counts: Callable[[], dict[str, int]]) -> None:
    """Point the store gauges at this process's store (the last one opened wins)."""
    global _collector
    if _collector is not None:
        REGISTRY.unregister(_collector)
    _collector = StoreCollector(stats, counts)
    REGISTRY.register(_collector)
