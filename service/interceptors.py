"""Cross-cutting concerns as grpc.ServerInterceptors, outermost first:

RequestIdInterceptor  x-request-id from the client or a fresh one; echoed back in
                      the initial metadata and carried by every log line
AccessLogInterceptor  one JSON log line and the Prometheus counters/histogram per RPC
AuthInterceptor       bearer token -> principal -> role check (UNAUTHENTICATED /
                      PERMISSION_DENIED)
LimitInterceptor      at most N RPCs in flight, RESOURCE_EXHAUSTED beyond

Each wraps the method handler's behaviour; health and reflection pass the request-id
and logging interceptors but need no token and do not count against the limit.
"""
from __future__ import annotations

import contextvars
import logging
import threading
import time
import uuid
from typing import Callable

import grpc

from ranksearch.service import errors as service_errors
from ranksearch.service.auth import SERVICE_PREFIX, Authenticator
from ranksearch.service.logs import get_logger, request_id
from ranksearch.service.metrics import Metrics
from ranksearch.errors import ResourceExhausted, RanksearchError

#: the variant that answered, set by a handler for the access log and the latency metric
answered_variant: contextvars.ContextVar[str] = contextvars.ContextVar("answered_variant", default="")
#: who called: the token's name when auth is on, else the peer address (audit log)
caller: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="")

Around = Callable[[Callable, object, grpc.ServicerContext], object]


def _wrap(handler, around: Around):
    """Return ``handler`` with each behaviour run through ``around(behaviour, req, ctx)``."""
    if handler is None:
        return None
    for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        behaviour = getattr(handler, kind)
        if behaviour is not None:
            return handler._replace(**{kind: lambda req, ctx, b=behaviour: around(b, req, ctx)})
    return handler


def _is_service(method: str) -> bool:
    return method.startswith(SERVICE_PREFIX)


class RequestIdInterceptor(grpc.ServerInterceptor):
    def intercept_service(self, continuation, details):
        metadata = dict(details.invocation_metadata or ())
        rid = metadata.get("x-request-id", "")[:128] or uuid.uuid4().hex

        def around(behaviour, req, ctx):
            token = request_id.set(rid)
            try:
                ctx.send_initial_metadata((("x-request-id", rid),))
                return behaviour(req, ctx)
            finally:
                request_id.reset(token)
        return _wrap(continuation(details), around)


class AccessLogInterceptor(grpc.ServerInterceptor):
    def __init__(self, metrics: Metrics):
        self.metrics = metrics
        self.log = get_logger()
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def intercept_service(self, continuation, details):
        method = details.method
        short = method.rsplit("/", 1)[-1]

        def around(behaviour, req, ctx):
            started = time.perf_counter()
            token = answered_variant.set("")
            code = grpc.StatusCode.OK
            try:
                return behaviour(req, ctx)
            except BaseException:
                code = ctx.code() or grpc.StatusCode.UNKNOWN
                raise
            finally:
                elapsed = time.perf_counter() - started
                code = ctx.code() or code
                code_name = code.name if isinstance(code, grpc.StatusCode) else str(code)
                variant = answered_variant.get()
                answered_variant.reset(token)
                self.metrics.requests.labels(short, code_name).inc()
                if code_name != "OK":
                    self.metrics.errors.labels(short, code_name).inc()
                self.metrics.latency.labels(short, variant).observe(elapsed)
                if _is_service(method):
                    with self._lock:
                        self.counts[short] = self.counts.get(short, 0) + 1
                # health probes arrive every few seconds: keep them out of the INFO log
                level = logging.DEBUG if method.startswith("/grpc.health.") and code_name == "OK" \
                    else logging.INFO
                self.log.log(level, "rpc", extra={"method": method, "code": code_name,
                                            "ms": round(elapsed * 1000, 3), "variant": variant,
                                            "peer": ctx.peer()})
        return _wrap(continuation(details), around)


class AuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, authenticator: Authenticator):
        self.auth = authenticator

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if not self.auth.enabled or not _is_service(details.method):
            return handler

        def around(behaviour, req, ctx):
            try:
                principal = self.auth.authenticate(ctx.invocation_metadata())
                self.auth.authorize(principal, details.method)
            except RanksearchError as exc:
                service_errors.abort(ctx, exc)
            if principal is not None:
                caller.set(f"token:{principal.name}")
            return behaviour(req, ctx)
        return _wrap(handler, around)


class LimitInterceptor(grpc.ServerInterceptor):
    def __init__(self, max_in_flight: int, metrics: Metrics):
        self.max_in_flight = max_in_flight
        self.metrics = metrics
        self.in_flight = 0
        self._lock = threading.Lock()

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if not _is_service(details.method):
            return handler

        def around(behaviour, req, ctx):
            with self._lock:
                admitted = self.in_flight < self.max_in_flight
                if admitted:
                    self.in_flight += 1
            if not admitted:
                service_errors.abort(ctx, ResourceExhausted(
                    "", f"{self.max_in_flight} requests already in flight "
                    "(limits.max_concurrent_requests); retry later"))
            self.metrics.in_flight.inc()
            try:
                return behaviour(req, ctx)
            finally:
                self.metrics.in_flight.dec()
                with self._lock:
                    self.in_flight -= 1
        return _wrap(handler, around)
