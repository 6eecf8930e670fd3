"""Prometheus metrics on a separate HTTP port (prometheus_client), one registry per
server so several servers can live in one process (tests)."""
from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _CollectionCollector:
    """Documents per collection, vectors per index and collections out of service,
    read at scrape time."""

    def __init__(self, source: Callable[[], list[dict]]):
        self._source = source

    def collect(self):
        docs = GaugeMetricFamily("ranksearch_documents", "documents stored", labels=["collection"])
        size = GaugeMetricFamily("ranksearch_index_size", "vectors in the index",
                                 labels=["collection", "variant"])
        down = GaugeMetricFamily("ranksearch_collection_unavailable",
                                 "1 while a collection is out of service (could not be opened or "
                                 "rebuilt; see Stats unavailable_reason), else 0", labels=["collection"])
        try:
            stats = self._source()
        except Exception:  # not ready yet (bootstrap) or shutting down
            stats = []
        for c in stats:
            docs.add_metric([c["name"]], c["documents"])
            down.add_metric([c["name"]], 1 if c.get("unavailable") else 0)
            for v in c["variants"]:
                size.add_metric([c["name"], v["name"]], v["index_size"])
        yield docs
        yield size
        yield down


class _ExperimentCollector:
    """Shadow searches by outcome and variant builds in progress, read at scrape time."""

    def __init__(self, source: Callable[[], object]):
        self._source = source  # -> LiveExperiments or None (not ready yet)

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        shadow = CounterMetricFamily("ranksearch_shadow_searches", "shadow searches by outcome "
                                     "(done, dropped: queue full, failed)", labels=["outcome"])
        building = GaugeMetricFamily("ranksearch_variant_build_remaining",
                                     "documents a live variant build still has to encode",
                                     labels=["collection", "variant"])
        live = self._source()
        if live is not None:
            for outcome, n in live.shadow.counts.items():
                shadow.add_metric([outcome], n)
            for (collection, variant), b in live.log.builds().items():
                if b["state"] == "building":
                    building.add_metric([collection, variant], max(0, b["total"] - b["done"]))
        yield shadow
        yield building


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("ranksearch_requests_total", "RPCs by method and status code",
                                ["method", "code"], registry=self.registry)
        self.errors = Counter("ranksearch_errors_total", "RPCs that did not end OK, by code",
                              ["method", "code"], registry=self.registry)
        self.latency = Histogram("ranksearch_request_latency_seconds", "RPC latency",
                                 ["method", "variant"], buckets=_LATENCY_BUCKETS,
                                 registry=self.registry)
        self.in_flight = Gauge("ranksearch_in_flight_requests", "RPCs being served",
                               registry=self.registry)
        self.queue_depth = Gauge("ranksearch_encode_queue_depth", "encode jobs waiting",
                                 registry=self.registry)
        self.batch_texts = Histogram("ranksearch_encode_batch_texts", "texts per forward pass",
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
                                     registry=self.registry)
        self.batch_jobs = Histogram("ranksearch_encode_batch_requests", "requests per forward pass",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry)
        # changes() of this gauge counts restarts (deploy/alerts.yml, RanksearchRestarting)
        self.start_time = Gauge("ranksearch_start_time_seconds", "Unix time this server started",
                                registry=self.registry)
        self.start_time.set_to_current_time()
        self._http = None

    def on_batch(self, jobs: int, texts: int) -> None:
        self.batch_jobs.observe(jobs)
        self.batch_texts.observe(texts)

    def bind(self, queue_depth: Callable[[], int], collection_stats: Callable[[], list[dict]]) -> None:
        self.queue_depth.set_function(queue_depth)
        self.registry.register(_CollectionCollector(collection_stats))

    def bind_experiments(self, live: Callable[[], object]) -> None:
        self.registry.register(_ExperimentCollector(live))

    def serve(self, host: str, port: int) -> int:
        """Start the HTTP endpoint; returns the bound port."""
        self._http, _ = start_http_server(port, addr=host, registry=self.registry)
        return self._http.server_port

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
