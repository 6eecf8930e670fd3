"""Thin gRPC handlers: proto -> plain values -> SearchCore -> proto.

Each handler is wrapped by :func:`_rpc`, which answers UNAVAILABLE until the server
is ready (recovery / first-start bootstrap done), turns an undecodable request into
INVALID_ARGUMENT, maps ranksearch errors through ``service.errors``, answers
INVALID_ARGUMENT for a response larger than the server may send, reports a client
that went away mid-call (cancelled, deadline) as DEADLINE_EXCEEDED without an error
log, and any other exception as INTERNAL with the request id (the traceback goes to
the log).
"""
from __future__ import annotations

import functools
import json
import threading

import grpc

from grpc_health.v1 import health_pb2

from ranksearch.errors import InvalidArgument, RanksearchError, Unavailable
from ranksearch.proto.v1 import search_pb2 as pb
from ranksearch.service import errors as service_errors
from ranksearch.service.errors import DeadlineExceeded
from ranksearch.indexer.lexical import LexicalConfig
from ranksearch.indexer.request import SearchDefaults
from ranksearch.service import search_wire
from ranksearch.service.core import SearchCore, VariantRequest, split_encoder_ref
from ranksearch.service.interceptors import answered_variant, caller
from ranksearch.service.logs import get_logger, request_id
from ranksearch.service.wire import Undecodable, deserializer, transport_limit

SERVICE = pb.DESCRIPTOR.services_by_name["SearchService"]
#: the request field that sizes each RPC's response (named when it is too large)
_SIZED_BY = {"Search": "k", "BatchSearch": "queries", "Get": "ids", "Embed": "texts",
             "Stats": "collection"}


class _Doc:
    """Plain document handed to the core (id, text, metadata)."""

    __slots__ = ("id", "text", "metadata")

    def __init__(self, doc: pb.Document):
        self.id, self.text, self.metadata = doc.id, doc.text, dict(doc.metadata)


def _alive(context: grpc.ServicerContext):
    def alive() -> bool:
        if not context.is_active():
            return False
        remaining = context.time_remaining()
        return remaining is None or remaining > 0
    return alive


_EMBED_ROLES = {pb.EMBED_ROLE_UNSPECIFIED: "query", pb.EMBED_ROLE_QUERY: "query",
                pb.EMBED_ROLE_DOCUMENT: "document"}


def _embed_role(value: int) -> str:
    if value not in _EMBED_ROLES:
        raise InvalidArgument("role", f"unknown role {value}; expected EMBED_ROLE_QUERY (1) "
                              "or EMBED_ROLE_DOCUMENT (2)")
    return _EMBED_ROLES[value]


def _timeout(context: grpc.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None or remaining > 1e8 else max(remaining, 0.0)


def _check(request) -> None:
    if isinstance(request, Undecodable):
        raise InvalidArgument(request.field, request.message)


def _rpc(method):
    @functools.wraps(method)
    def handler(self: "SearchServicer", request, context):
        try:
            if not self.ready.is_set():
                raise Unavailable("", "server is starting (recovery / first-start indexing "
                                  "in progress); health reports NOT_SERVING until it is done")
            if not isinstance(request, Undecodable) or method.__name__ == "UpsertStream":
                return self.fits(method.__name__, method(self, request, context))
            _check(request)
        except RanksearchError as exc:
            service_errors.abort(context, exc)
        except Exception as exc:
            if context.code() is not None:  # already aborted deliberately
                raise
            if isinstance(exc, grpc.RpcError) and not context.is_active():  # e.g. a stalled stream
                get_logger().info("%s: the client cancelled or its deadline passed", method.__name__)
                service_errors.abort(context, DeadlineExceeded("", "the client cancelled or its deadline passed"))
            get_logger().exception("unhandled error in %s", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL,
                          f"internal error (request id {request_id.get()}); see the server log")
    return handler


def _hit(h, team: str = "") -> pb.Hit:
    return pb.Hit(id=h.id, score=float(h.score), text=h.text or "", metadata=h.metadata or {},
                  explain=search_wire.explain_pb(h.explain), team=team)


def _who(context: grpc.ServicerContext) -> str:
    return caller.get() or f"peer:{context.peer()}"


def _index(spec) -> pb.IndexConfig:
    params = {k: int(v) for k, v in (spec.index.params or {}).items()
              if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return pb.IndexConfig(kind=spec.index.kind, params=params)


class SearchServicer:
    def __init__(self, core: SearchCore | None, ready: threading.Event | None = None,
                 request_counts: dict[str, int] | None = None,
                 max_response_bytes: int = transport_limit(16 * 1024 * 1024)):
        self.core = core
        self.live = None  # LiveExperiments, set with the core when the server is ready
        self.ready = ready or threading.Event()
        self.request_counts = request_counts if request_counts is not None else {}
        self.max_response_bytes = max_response_bytes

    def fits(self, method: str, response):
        """`response`, unless it is larger than gRPC may send (it would fail in the
        transport as an opaque error): then INVALID_ARGUMENT naming the request
        field that sizes it. Every request within the documented limits can still ask
        for more than that (e.g. BatchSearch: queries x k hits with include_text)."""
        size = response.ByteSize()
        if size > self.max_response_bytes:
            raise InvalidArgument(_SIZED_BY.get(method, ""), (
                f"the response would be {size:,} bytes, more than the {self.max_response_bytes:,} bytes "
                "the server may send (2 x limits.max_message_bytes + 1 MiB): ask for fewer results "
                "(fewer queries, ids or texts, a smaller k, include_text=false) or split the call"))
        return response

    def collection_info(self, info) -> pb.CollectionInfo:
        defaults = info.defaults or SearchDefaults()  # a store without lexical settings (Milvus)
        weights = self.core.routing.weights(info.name)
        return pb.CollectionInfo(
            name=info.name, default_variant=info.default_variant, documents=int(info.documents),
            unavailable_reason=info.unavailable,
            lexical=search_wire.lexical_pb(info.lexical or LexicalConfig()),
            default_mode=search_wire.MODE_ENUMS[defaults.mode], default_hybrid=search_wire.hybrid_pb(defaults.hybrid),
            variants=[pb.VariantInfo(name=v.name, model=split_encoder_ref(v.encoder)[0], index=_index(v),
                                     dim=int(v.dim), weight=weights.get(v.name, 0.0),
                                     is_default=v.name == info.default_variant,
                                     precision=split_encoder_ref(v.encoder)[1])
                      for v in info.variants])

    @_rpc
    def CreateCollection(self, request, context):
        variants = [VariantRequest(name=v.name, model=v.model, index_kind=v.index.kind,
                                   index_params=dict(v.index.params), weight=v.weight,
                                   precision=v.precision or "fp32")
                    for v in request.variants]
        lexical, defaults = search_wire.collection_settings(request)
        info = self.core.create_collection(request.name, variants, request.default_variant, lexical, defaults)
        return pb.CreateCollectionResponse(collection=self.collection_info(info))

    @_rpc
    def ListCollections(self, request, context):
        return pb.ListCollectionsResponse(
            collections=[self.collection_info(i) for i in self.core.list_collections()],
            default_collection=self.core.default_collection)

    @_rpc
    def DeleteCollection(self, request, context):
        self.core.delete_collection(request.name)
        self.live.drop_collection(request.name)
        return pb.DeleteCollectionResponse(deleted=True)

    @_rpc
    def Upsert(self, request, context):
        docs = [_Doc(d) for d in request.documents]
        done = self.core.upsert(request.collection, docs, _alive(context), _timeout(context))
        return pb.UpsertResponse(count=done.count, unchanged=done.unchanged)

    @_rpc
    def UpsertStream(self, request_iterator, context):
        total = unchanged = 0
        for i, request in enumerate(request_iterator):
            if isinstance(request, Undecodable):
                raise InvalidArgument(f"stream[{i}].{request.field}", request.message
                                      + f" ({total} documents of earlier messages were written)")
            docs = [_Doc(d) for d in request.documents]
            try:
                done = self.core.upsert(request.collection, docs, _alive(context), _timeout(context))
                total, unchanged = total + done.count, unchanged + done.unchanged
            except RanksearchError as exc:
                exc.message += f" (message {i} of the stream; {total} documents before it were written)"
                raise type(exc)(exc.field, exc.message) from None
        return pb.UpsertResponse(count=total, unchanged=unchanged)

    @_rpc
    def Delete(self, request, context):
        return pb.DeleteResponse(count=self.core.delete(request.collection, list(request.ids)))

    @_rpc
    def Get(self, request, context):
        docs = self.core.get(request.collection, list(request.ids))
        return pb.GetResponse(documents=[pb.Document(id=d.id, text=d.text, metadata=d.metadata)
                                         for d in docs])

    @_rpc
    def Search(self, request, context):
        served = self.live.search(request.collection, request.query, search_wire.search_request(request),
                                  request.routing_key or request_id.get(), _alive(context),
                                  _timeout(context), interleave=request.interleave)
        answered_variant.set(served.variant)
        names = dict(zip("ab", served.variant.split("+"))) if served.teams else {}
        teams = [names[t] for t in served.teams] if served.teams else [""] * len(served.hits)
        return pb.SearchResponse(hits=[_hit(h, t) for h, t in zip(served.hits, teams)],
                                 variant=served.variant, mode=search_wire.MODE_ENUMS[served.mode],
                                 query_id=served.query_id)

    @_rpc
    def BatchSearch(self, request, context):
        variant, mode, hits = self.core.search(
            request.collection, list(request.queries), search_wire.search_request(request),
            request.routing_key or request_id.get(), _alive(context), _timeout(context))
        answered_variant.set(variant)
        return pb.BatchSearchResponse(
            results=[pb.SearchResult(hits=[_hit(h) for h in row]) for row in hits], variant=variant,
            mode=search_wire.MODE_ENUMS[mode])

    @_rpc
    def Embed(self, request, context):
        variant, vectors, prompt = self.core.embed(
            request.collection, request.variant, list(request.texts), _alive(context),
            _timeout(context), role=_embed_role(request.role))
        answered_variant.set(variant)
        return pb.EmbedResponse(vectors=[pb.Vector(values=row.tolist()) for row in vectors],
                                variant=variant, prompt=prompt)

    @_rpc
    def Stats(self, request, context):
        collections = []
        builds = self.live.log.builds()  # one read for every collection: {(collection, variant): ...}
        for c in self.core.stats(request.collection):
            variants = [pb.VariantStats(
                name=v["name"], index_kind=v["index_kind"], index_size=v["index_size"], dim=v["dim"],
                model=v["model"], rank=v["rank"], parameters=v["parameters"], requests=v["requests"],
                latency_p50_ms=v["latency_ms"][0], latency_p95_ms=v["latency_ms"][1],
                latency_p99_ms=v["latency_ms"][2], is_default=v["is_default"], weight=v["weight"],
                index_state=v["index_state"], rebuilding=v["rebuilding"], precision=v["precision"],
                effective_precision=v["effective_precision"], engine=v["engine"])
                for v in c["variants"]]
            lex = c.get("lexical") or {}
            state = "ready" if lex.get("ready", True) else \
                f"backfilling: {lex.get('documents', 0)} of {c['documents']} documents"
            for v in variants:
                b = builds.get((c["name"], v.name))
                if b:
                    v.build_state, v.build_done, v.build_total = b["state"], b["done"], b["total"]
                v.not_ready = self.core.not_ready.get((c["name"], v.name), "")
            counts = self.live.shadow.counts
            collections.append(pb.CollectionStats(
                name=c["name"], documents=c["documents"], variants=variants,
                unavailable_reason=c["unavailable"],
                lexical=pb.LexicalStats(analyzer=lex.get("analyzer", ""), documents=lex.get("documents", 0),
                                        ready=lex.get("ready", True), state=state),
                experiments_json=json.dumps(self.live.settings(c["name"]), sort_keys=True),
                shadow_done=counts["done"], shadow_dropped=counts["dropped"],
                shadow_failed=counts["failed"]))
        return pb.StatsResponse(collections=collections, requests=dict(self.request_counts))

    @_rpc
    def Verify(self, request, context):
        report = self.core.verify()
        return pb.VerifyResponse(ok=report["ok"], problems=report["problems"],
                                 report_json=json.dumps(report["collections"], sort_keys=True))

    @_rpc
    def Rebuild(self, request, context):
        names, seconds, report = self.core.rebuild(request.collection)
        return pb.RebuildResponse(collections=names, seconds=seconds, ok=report["ok"],
                                  problems=report["problems"])

    # ------------------------------------------------------------ live experiments

    @_rpc
    def AddVariant(self, request, context):
        v = request.variant
        self.live.add_variant(request.collection, VariantRequest(
            name=v.name, model=v.model, index_kind=v.index.kind, index_params=dict(v.index.params),
            precision=v.precision or "fp32"), _who(context))
        info = self.core.collection(request.collection)
        return pb.AddVariantResponse(collection=self.collection_info(info))

    @_rpc
    def RemoveVariant(self, request, context):
        self.live.remove_variant(request.collection, request.variant, _who(context))
        return pb.RemoveVariantResponse(removed=True)

    @_rpc
    def SetTraffic(self, request, context):
        self.live.set_traffic(request.collection, dict(request.weights), _who(context))
        return pb.SetTrafficResponse(weights=self.core.routing.weights(
            self.core.collection(request.collection).name))

    @_rpc
    def SetShadow(self, request, context):
        self.live.set_shadow(request.collection, request.variant, request.fraction, _who(context))
        return pb.SetShadowResponse()

    @_rpc
    def SetInterleave(self, request, context):
        self.live.set_interleave(request.collection, request.variant_a, request.variant_b,
                                 request.fraction, _who(context))
        return pb.SetInterleaveResponse()

    @_rpc
    def PromoteVariant(self, request, context):
        previous = self.live.promote(request.collection, request.variant, _who(context))
        return pb.PromoteVariantResponse(previous=previous)

    @_rpc
    def Feedback(self, request, context):
        n = self.live.feedback(request.query_id, list(request.clicked_ids), list(request.dwell_ms))
        return pb.FeedbackResponse(recorded=n)

    @_rpc
    def ExperimentReport(self, request, context):
        if not (request.since >= 0 and request.since < 1e11):
            raise InvalidArgument("since", f"must be a Unix time >= 0, got {request.since}")
        report = self.live.report(request.collection, request.since)
        return pb.ExperimentReportResponse(report_json=json.dumps(report, sort_keys=True))


def health_handler(servicer, max_message_bytes: int) -> grpc.GenericRpcHandler:
    """The standard health service (grpc.health.v1) behind the same UTF-8-aware
    deserialiser: undecodable bytes answer INVALID_ARGUMENT, not INTERNAL."""
    def guarded(behaviour):
        def run(request, context):
            if isinstance(request, Undecodable):
                service_errors.abort(context, InvalidArgument(request.field, request.message))
            return behaviour(request, context)
        return run

    parse = deserializer(health_pb2.HealthCheckRequest, max_message_bytes)
    send = health_pb2.HealthCheckResponse.SerializeToString
    return grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(guarded(servicer.Check), parse, send),
        "Watch": grpc.unary_stream_rpc_method_handler(guarded(servicer.Watch), parse, send),
    })


def generic_handler(servicer: SearchServicer, max_message_bytes: int) -> grpc.GenericRpcHandler:
    """Method handlers for every RPC of the .proto, with the UTF-8-aware deserialiser."""
    handlers = {}
    for method in SERVICE.methods:
        behaviour = getattr(servicer, method.name)
        request_cls = getattr(pb, method.input_type.name)
        response_cls = getattr(pb, method.output_type.name)
        make = (grpc.stream_unary_rpc_method_handler if method.client_streaming
                else grpc.unary_unary_rpc_method_handler)
        handlers[method.name] = make(behaviour,
                                     request_deserializer=deserializer(request_cls, max_message_bytes),
                                     response_serializer=response_cls.SerializeToString)
    return grpc.method_handlers_generic_handler(SERVICE.full_name, handlers)
