"""Thin gRPC handlers: proto -> plain values -> SearchCore -> proto.

Each handler is wrapped by :func:`_rpc`, which answers UNAVAILABLE until the server
is ready (recovery / first-start bootstrap done), turns an undecodable request into
INVALID_ARGUMENT, maps ranksearch errors through ``service.errors`` and reports any
other exception as INTERNAL with the request id (the traceback goes to the log).
"""
from __future__ import annotations

import functools
import json
import threading

import grpc

from ranksearch.errors import InvalidArgument, RanksearchError, Unavailable
from ranksearch.proto.v1 import search_pb2 as pb
from ranksearch.service import errors as service_errors
from ranksearch.service.core import SearchCore, SearchParams, VariantRequest, split_encoder_ref
from ranksearch.service.interceptors import answered_variant
from ranksearch.service.logs import get_logger, request_id
from ranksearch.service.wire import Undecodable, deserializer

SERVICE = pb.DESCRIPTOR.services_by_name["SearchService"]
_MODES = {pb.NEAREST: "nearest", pb.FARTHEST: "farthest"}


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
                return method(self, request, context)
            _check(request)
        except RanksearchError as exc:
            service_errors.abort(context, exc)
        except Exception:
            if context.code() is not None:  # already aborted deliberately
                raise
            get_logger().exception("unhandled error in %s", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL,
                          f"internal error (request id {request_id.get()}); see the server log")
    return handler


def _hit(h) -> pb.Hit:
    return pb.Hit(id=h.id, score=float(h.score), text=h.text or "", metadata=h.metadata or {})


def _index(spec) -> pb.IndexConfig:
    params = {k: int(v) for k, v in (spec.index.params or {}).items()
              if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return pb.IndexConfig(kind=spec.index.kind, params=params)


def _search_params(request, context) -> SearchParams:
    if request.mode not in _MODES:
        raise InvalidArgument("mode", f"unknown mode {request.mode}; expected NEAREST (0) or FARTHEST (1)")
    return SearchParams(
        k=request.k, mode=_MODES[request.mode], variant=request.variant,
        filter=dict(request.filter), include_text=request.include_text,
        min_score=request.min_score if request.HasField("min_score") else None,
        offset=request.offset, routing_key=request.routing_key or request_id.get())


class SearchServicer:
    def __init__(self, core: SearchCore | None, ready: threading.Event | None = None,
                 request_counts: dict[str, int] | None = None):
        self.core = core
        self.ready = ready or threading.Event()
        self.request_counts = request_counts if request_counts is not None else {}

    def collection_info(self, info) -> pb.CollectionInfo:
        weights = self.core.routing.weights(info.name)
        return pb.CollectionInfo(
            name=info.name, default_variant=info.default_variant, documents=int(info.documents),
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
        info = self.core.create_collection(request.name, variants, request.default_variant)
        return pb.CreateCollectionResponse(collection=self.collection_info(info))

    @_rpc
    def ListCollections(self, request, context):
        return pb.ListCollectionsResponse(
            collections=[self.collection_info(i) for i in self.core.list_collections()],
            default_collection=self.core.default_collection)

    @_rpc
    def DeleteCollection(self, request, context):
        self.core.delete_collection(request.name)
        return pb.DeleteCollectionResponse(deleted=True)

    @_rpc
    def Upsert(self, request, context):
        docs = [_Doc(d) for d in request.documents]
        n = self.core.upsert(request.collection, docs, _alive(context), _timeout(context))
        return pb.UpsertResponse(count=n)

    @_rpc
    def UpsertStream(self, request_iterator, context):
        total = 0
        for i, request in enumerate(request_iterator):
            if isinstance(request, Undecodable):
                raise InvalidArgument(f"stream[{i}].{request.field}", request.message
                                      + f" ({total} documents of earlier messages were written)")
            docs = [_Doc(d) for d in request.documents]
            try:
                total += self.core.upsert(request.collection, docs, _alive(context), _timeout(context))
            except RanksearchError as exc:
                exc.message += f" (message {i} of the stream; {total} documents before it were written)"
                raise type(exc)(exc.field, exc.message) from None
        return pb.UpsertResponse(count=total)

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
        params = _search_params(request, context)
        variant, hits = self.core.search(request.collection, [request.query], params,
                                         _alive(context), _timeout(context), query_field="query")
        answered_variant.set(variant)
        return pb.SearchResponse(hits=[_hit(h) for h in hits[0]], variant=variant)

    @_rpc
    def BatchSearch(self, request, context):
        params = _search_params(request, context)
        variant, hits = self.core.search(request.collection, list(request.queries), params,
                                         _alive(context), _timeout(context))
        answered_variant.set(variant)
        return pb.BatchSearchResponse(
            results=[pb.SearchResult(hits=[_hit(h) for h in row]) for row in hits], variant=variant)

    @_rpc
    def Embed(self, request, context):
        variant, vectors = self.core.embed(request.collection, request.variant, list(request.texts),
                                           _alive(context), _timeout(context))
        answered_variant.set(variant)
        return pb.EmbedResponse(vectors=[pb.Vector(values=row.tolist()) for row in vectors],
                                variant=variant)

    @_rpc
    def Stats(self, request, context):
        collections = []
        for c in self.core.stats(request.collection):
            variants = [pb.VariantStats(
                name=v["name"], index_kind=v["index_kind"], index_size=v["index_size"], dim=v["dim"],
                model=v["model"], rank=v["rank"], parameters=v["parameters"], requests=v["requests"],
                latency_p50_ms=v["latency_ms"][0], latency_p95_ms=v["latency_ms"][1],
                latency_p99_ms=v["latency_ms"][2], is_default=v["is_default"], weight=v["weight"],
                index_state=v["index_state"], rebuilding=v["rebuilding"], precision=v["precision"],
                effective_precision=v["effective_precision"], engine=v["engine"])
                for v in c["variants"]]
            collections.append(pb.CollectionStats(name=c["name"], documents=c["documents"],
                                                  variants=variants))
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
