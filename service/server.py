"""The gRPC server: listener (TLS optional), interceptors, health, reflection,
metrics endpoint, start-up recovery in the background, graceful shutdown.

Start-up order: bind the port and serve health (NOT_SERVING) at once; in a
background thread open the store (embedded Indexer: recovery; Milvus: connect),
convert the default encoder if missing, bootstrap an empty data dir, create
configured collections, load every variant's encoder; then flip health to SERVING.
SearchService calls before that answer UNAVAILABLE. With a networked store (Milvus)
health then follows its reachability.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Callable

import grpc
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection

from ranksearch.errors import ConfigError, RanksearchError, Unavailable
from ranksearch.indexer.port import Reachable
from ranksearch.service import bootstrap as first_start
from ranksearch.service.auth import Authenticator
from ranksearch.service.config import ServiceConfig
from ranksearch.service.core import SearchCore, VariantRequest
from ranksearch.service import wire
from ranksearch.service.handlers import SERVICE, SearchServicer, generic_handler, health_handler
from ranksearch.service.interceptors import (AccessLogInterceptor, AuthInterceptor,
                                             LimitInterceptor, RequestIdInterceptor)
from ranksearch.service.logs import get_logger
from ranksearch.service.metrics import Metrics
from ranksearch.service.storage import make_store

SERVICE_NAME = SERVICE.full_name  # "ranksearch.v1.SearchService"
STORE_HEALTH_INTERVAL_S = 1.0  # how often a networked store (Milvus) is pinged for health


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError("tls", f"cannot read {path}: {exc.strerror}") from None


class Server:
    def __init__(self, config: ServiceConfig, *, load_encoder: Callable | None = None,
                 before_recovery: Callable[[], None] | None = None):
        self.config = config
        self.log = get_logger()
        self.warnings = config.check_security()  # raises on an unsafe listener
        self._load_encoder = load_encoder
        self._before_recovery = before_recovery  # test hook: hold start-up at NOT_SERVING
        self.metrics = Metrics()
        self.ready = threading.Event()
        self.failed: BaseException | None = None
        self.indexer = None
        self.core: SearchCore | None = None
        self.live = None  # LiveExperiments
        self.port = 0
        self.metrics_port: int | None = None
        self.startup_seconds: float | None = None
        self._stopped = threading.Event()
        self._grpc: grpc.Server | None = None

    # ------------------------------------------------------------ start

    def start(self) -> "Server":
        cfg = self.config
        for warning in self.warnings:
            self.log.warning(warning)
        self._started_at = time.perf_counter()
        transport_limit = wire.transport_limit(cfg.limits.max_message_bytes)
        self.access = AccessLogInterceptor(self.metrics)
        self.limiter = LimitInterceptor(cfg.limits.max_concurrent_requests, self.metrics)
        interceptors = [RequestIdInterceptor(), self.access,
                        AuthInterceptor(Authenticator(cfg.auth)), self.limiter]
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=cfg.threads, thread_name_prefix="grpc"),
            interceptors=interceptors,
            options=[("grpc.max_receive_message_length", transport_limit),
                     ("grpc.max_send_message_length", transport_limit),
                     ("grpc.so_reuseport", 0)])
        self.servicer = SearchServicer(None, self.ready, self.access.counts, max_response_bytes=transport_limit)
        server.add_generic_rpc_handlers((generic_handler(self.servicer, cfg.limits.max_message_bytes),))
        self.health = health.HealthServicer()
        server.add_generic_rpc_handlers((health_handler(self.health, cfg.limits.max_message_bytes),))
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME), server)
        if cfg.tls.enabled:
            ca = _read(cfg.tls.client_ca_file) if cfg.tls.client_ca_file else None
            creds = grpc.ssl_server_credentials(
                [(_read(cfg.tls.key_file), _read(cfg.tls.cert_file))],
                root_certificates=ca, require_client_auth=ca is not None)
            self.port = server.add_secure_port(cfg.listen, creds)
        else:
            self.port = server.add_insecure_port(cfg.listen)
        if not self.port:
            raise ConfigError("listen", f"cannot listen on {cfg.listen}")
        server.start()
        self._grpc = server
        if cfg.metrics.port is not None:
            self.metrics.bind(lambda: self.core.queue_depth() if self.core else 0,
                              lambda: self.core.stats() if self.core else [])
            self.metrics.bind_experiments(lambda: self.live)
            try:
                self.metrics_port = self.metrics.serve(cfg.metrics.host, cfg.metrics.port)
            except OSError as exc:  # e.g. a second server on this host, same metrics port
                server.stop(0)
                raise ConfigError("metrics.port", f"cannot listen on {cfg.metrics.host}:{cfg.metrics.port}"
                                  f" for metrics: {exc.strerror or exc}; is another server running "
                                  "on this host? Give each its own port (metrics.port, or "
                                  "`serve --metrics-listen HOST:PORT`; `--metrics-listen off` "
                                  "disables it)") from None
        self.log.info("listening", extra={"listen": cfg.listen, "port": self.port,
                                          "tls": cfg.tls.enabled, "mtls": bool(cfg.tls.client_ca_file),
                                          "auth": cfg.auth.enabled, "metrics_port": self.metrics_port})
        threading.Thread(target=self._recover, name="recovery", daemon=True).start()
        return self

    def _set_health(self, status) -> None:
        for name in ("", SERVICE_NAME):
            self.health.set(name, status)

    def _recover(self) -> None:
        cfg = self.config
        try:
            if self._before_recovery:
                self._before_recovery()
            import torch

            torch.set_num_threads(cfg.torch_threads)
            data = cfg.data_path
            data.mkdir(parents=True, exist_ok=True)
            self.indexer = make_store(cfg)
            self.indexer.open()
            first_start.ensure_model(cfg)
            self.core = SearchCore(self.indexer, data, limits=cfg.limits, batching=cfg.batching,
                                   default_model=cfg.default_model, default_index=cfg.default_index,
                                   default_collection=cfg.default_collection,
                                   load_encoder=self._load_encoder, on_batch=self.metrics.on_batch,
                                   device=cfg.device, long_text=cfg.long_text,
                                   encoder_workers=cfg.encoder_workers)
            if first_start.needs_bootstrap(cfg, self.core):
                first_start.bootstrap(cfg, self.core)
            self._ensure_configured_collections()
            self.core.warm_up()
            if self._stopped.is_set():  # stop() came while we were starting: close here
                self.core.close()
                self.indexer.close()
                return
            from ranksearch.service.ab import LiveExperiments
            from ranksearch.service.experiments import ExperimentLog

            ex = cfg.experiments
            self.live = LiveExperiments(self.core, ExperimentLog(
                data / "service" / "experiments.sqlite", flush_ms=ex.impression_flush_ms,
                shadow_rows=ex.shadow_log_rows), ex)
            self.live.start()
            self.servicer.live = self.live
            self.servicer.core = self.core
            self.startup_seconds = time.perf_counter() - self._started_at
            self.ready.set()
            self._set_health(health_pb2.HealthCheckResponse.SERVING)
            if isinstance(self.indexer, Reachable):
                threading.Thread(target=self._watch_store, name="store-health", daemon=True).start()
            self.log.info("serving", extra={"startup_seconds": round(self.startup_seconds, 2),
                                            "collections": sorted(c.name for c in
                                                                  self.core.list_collections())})
        except BaseException as exc:  # NOT_SERVING; `serve` exits 1, embedders check .failed
            self.failed = exc
            self.log.exception("start-up failed; health stays NOT_SERVING")

    def _watch_store(self) -> None:
        """Health follows the store's reachability (Milvus): NOT_SERVING while it cannot
        be reached, so a load balancer sends traffic elsewhere; calls meanwhile answer
        UNAVAILABLE with a retry hint."""
        serving = True
        while not self._stopped.wait(STORE_HEALTH_INTERVAL_S):
            try:
                self.indexer.ping()
                ok = True
            except Unavailable as exc:
                ok, reason = False, exc.message
            if ok != serving and not self._stopped.is_set():
                serving = ok
                self._set_health(health_pb2.HealthCheckResponse.SERVING if ok
                                 else health_pb2.HealthCheckResponse.NOT_SERVING)
                if ok:
                    self.log.info("store reachable again: SERVING")
                else:
                    self.log.warning("store unreachable: NOT_SERVING", extra={"error": reason})

    def _ensure_configured_collections(self) -> None:
        existing = {c.name for c in self.core.list_collections()}
        for c in self.config.collections:
            variants = [VariantRequest(name=v.name, model=v.model, index_kind=v.index.kind,
                                       index_params=dict(v.index.params), weight=v.weight,
                                       precision=v.precision)
                        for v in c.variants]
            if c.name not in existing:
                try:
                    lexical, defaults = c.search_settings()
                    self.core.create_collection(c.name, variants, c.default_variant, lexical, defaults)
                except RanksearchError as exc:  # one bad collection must not stop the start
                    self.log.error("configured collection %r was not created: %s", c.name, exc)
            elif variants:
                self.core.routing.set_weights(c.name, {v.name: v.weight for v in variants})

    def wait_ready(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if self.failed is not None:
                raise RuntimeError(f"server start-up failed: {self.failed!r}") from self.failed
            if deadline is not None and time.monotonic() > deadline:
                return False
        return True

    # ------------------------------------------------------------ stop

    def stop(self, grace: float | None = None) -> None:
        """Drain in-flight RPCs (up to ``grace`` seconds), then snapshot and close."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        grace = self.config.shutdown_grace_s if grace is None else grace
        self.log.info("shutting down", extra={"grace_s": grace})
        if self._grpc is not None:
            self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
            self._grpc.stop(grace).wait()
        if self.live is not None:
            self.live.close()  # stops variant builds (resumed on the next start)
        if self.core is not None:
            self.core.close()
        if self.indexer is not None:
            self.indexer.close()  # final snapshot
        self.metrics.close()
        self.log.info("stopped")

    def serve_forever(self) -> int:
        """Block until SIGTERM/SIGINT, then shut down gracefully (0); 1 if start-up failed."""
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(0.5):
            if self.failed is not None:  # exit non-zero so a supervisor sees it and restarts
                self.log.error("exiting: start-up failed", extra={"error": repr(self.failed)})
                self.stop(grace=0)
                return 1
        self.stop()
        return 0


def serve(config: ServiceConfig) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    server = Server(config).start()
    return server.serve_forever()
