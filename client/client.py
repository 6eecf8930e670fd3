"""Python client of the ranksearch gRPC API.

Typed methods over ``ranksearch.v1.SearchService``; a per-call deadline (``timeout``)
on every call; retries with exponential backoff and jitter on UNAVAILABLE (server
starting, restarting or unreachable) as long as the deadline allows; optional TLS,
mutual TLS and a bearer token. Failures raise :class:`RpcFailed`, which carries the
status code, the message and the offending field from the server's BadRequest detail.

    with SearchClient("127.0.0.1:50051") as client:
        client.upsert("notes", [Document("a", "read a file line by line")])
        for hit in client.search("open a file", collection="notes").hits:
            print(hit.id, hit.score)
"""
from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import grpc
import numpy as np

from ranksearch.proto.v1 import search_pb2 as pb
from ranksearch.proto.v1 import search_pb2_grpc as pb_grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"


@dataclass
class Document:
    id: str
    text: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Upserted:
    """Outcome of one acknowledged upsert batch: `count` documents durably stored as
    sent, of which `unchanged` were stored already with the same text and metadata
    (the server skipped encoding and rewriting them)."""

    count: int
    unchanged: int = 0


@dataclass
class Hit:
    id: str
    score: float
    text: str
    metadata: dict[str, str]


@dataclass
class SearchResult:
    hits: list[Hit]
    variant: str


@dataclass
class Variant:
    """A variant to create; empty model / index_kind = the server's defaults."""

    name: str = "default"
    model: str = ""
    index_kind: str = ""
    index_params: dict[str, int] = field(default_factory=dict)
    weight: float = 0.0


class RpcFailed(Exception):
    """A call ended with a non-OK status."""

    def __init__(self, code: grpc.StatusCode, message: str, field: str = "", request_id: str = ""):
        self.code, self.message, self.field, self.request_id = code, message, field, request_id
        super().__init__(f"{code.name}: {message}")


def _field_of(error: grpc.RpcError) -> str:
    try:
        from grpc_status import rpc_status
        from google.rpc import error_details_pb2

        status = rpc_status.from_call(error)
        for detail in status.details if status else []:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                if bad.field_violations:
                    return bad.field_violations[0].field
    except Exception:  # details are a convenience; the code and message stand alone
        return ""
    return ""


def _check_k(k: int) -> None:
    """On the wire k = 0 means "unset" (the server's default, 10): a caller who asks
    for 0 hits would silently get 10, so 0 is refused here, as the server refuses
    other values below 1 (it also knows the upper limit, limits.max_k)."""
    if k == 0:
        raise RpcFailed(grpc.StatusCode.INVALID_ARGUMENT,
                        "k: must be at least 1, got 0 (0 would mean the server's default)", "k")


def _read(value: str | Path | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


class SearchClient:
    def __init__(self, address: str = DEFAULT_ADDRESS, *, token: str | None = None,
                 tls: bool = False, root_certificates: str | Path | bytes | None = None,
                 client_cert: str | Path | bytes | None = None,
                 client_key: str | Path | bytes | None = None,
                 server_name: str | None = None, timeout: float = 30.0, retries: int = 4,
                 backoff: float = 0.1, max_backoff: float = 2.0,
                 max_message_bytes: int = 64 * 1024 * 1024):
        self.address = address
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._token = token
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        if tls or root_certificates or client_cert:
            creds = grpc.ssl_channel_credentials(
                root_certificates=_read(root_certificates), private_key=_read(client_key),
                certificate_chain=_read(client_cert))
            self.channel = grpc.secure_channel(address, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(address, options=options)
        self.stub = pb_grpc.SearchServiceStub(self.channel)

    # ------------------------------------------------------------ plumbing

    def __enter__(self) -> "SearchClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _metadata(self, request_id: str | None) -> list[tuple[str, str]]:
        md = [("x-request-id", request_id or uuid.uuid4().hex)]
        if self._token:
            md.append(("authorization", f"Bearer {self._token}"))
        return md

    def _call(self, method: str, request: Any, timeout: float | None = None,
              request_id: str | None = None, retry: bool = True):
        """Call with a deadline; UNAVAILABLE is retried with backoff within it. For a
        client stream, `request` is a function returning a fresh request iterator, so
        each attempt sends the whole stream again."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        metadata = self._metadata(request_id)
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RpcFailed(grpc.StatusCode.DEADLINE_EXCEEDED,
                                f"deadline of {timeout}s passed before the call was sent",
                                request_id=dict(metadata)["x-request-id"])
            try:
                sent = request() if callable(request) else request
                return getattr(self.stub, method)(sent, timeout=remaining, metadata=metadata)
            except grpc.RpcError as exc:
                code = exc.code()
                delay = min(self.max_backoff, self.backoff * 2 ** attempt) * (0.5 + random.random() / 2)
                if (retry and code == grpc.StatusCode.UNAVAILABLE and attempt < self.retries
                        and time.monotonic() + delay < deadline):
                    attempt += 1
                    time.sleep(delay)
                    continue
                raise RpcFailed(code, exc.details() or "", _field_of(exc), dict(metadata)["x-request-id"]) from None

    # ------------------------------------------------------------ collections

    def create_collection(self, name: str, variants: Sequence[Variant] = (),
                          default_variant: str = "", timeout: float | None = None) -> pb.CollectionInfo:
        request = pb.CreateCollectionRequest(name=name, default_variant=default_variant, variants=[
            pb.VariantConfig(name=v.name, model=v.model, weight=v.weight,
                             index=pb.IndexConfig(kind=v.index_kind, params=v.index_params))
            for v in variants])
        return self._call("CreateCollection", request, timeout, retry=False).collection

    def list_collections(self, timeout: float | None = None) -> pb.ListCollectionsResponse:
        return self._call("ListCollections", pb.ListCollectionsRequest(), timeout)

    def delete_collection(self, name: str, timeout: float | None = None) -> bool:
        return self._call("DeleteCollection", pb.DeleteCollectionRequest(name=name), timeout,
                          retry=False).deleted

    # ------------------------------------------------------------ documents

    @staticmethod
    def _doc(d: Document | Mapping) -> pb.Document:
        if isinstance(d, Mapping):
            return pb.Document(id=d.get("id", ""), text=d.get("text", ""),
                               metadata=d.get("metadata") or {})
        return pb.Document(id=d.id, text=d.text, metadata=d.metadata)

    def upsert(self, collection: str, documents: Sequence[Document | Mapping],
               timeout: float | None = None) -> int:
        """Insert or replace; idempotent by id, so UNAVAILABLE is retried."""
        request = pb.UpsertRequest(collection=collection, documents=[self._doc(d) for d in documents])
        return self._call("Upsert", request, timeout).count

    def upsert_batches(self, collection: str, documents: Iterable[Document | Mapping],
                       batch_size: int = 64, timeout: float | None = None) -> Iterator[Upserted]:
        """Bulk load of any size: one Upsert call per batch of at most `batch_size`
        documents, each with its own deadline (`timeout`, seconds) and its own retries
        on UNAVAILABLE (upsert is idempotent by id). Yields each batch's outcome once
        it is durable, so a caller can show progress of acknowledged documents, in
        the order of `documents`. A batch that runs out of its deadline is sent again
        in halves, and later batches stay at that size (a slow or busy server); a
        single document that does not fit the deadline raises. On a failure the
        outcomes yielded before are written and nothing after them. Documents the
        server holds already with the same text and metadata come back as
        `unchanged` without being encoded again, so re-running an interrupted load
        resumes quickly (and a batch retried after a late commit costs little)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        source = iter(documents)
        pending: list[pb.Document] = []
        size, exhausted = batch_size, False
        while True:
            while not exhausted and len(pending) < size:
                try:
                    pending.append(self._doc(next(source)))
                except StopIteration:
                    exhausted = True
            if not pending:
                return
            batch, pending = pending[:size], pending[size:]
            try:
                done = self._upsert_batch(collection, batch, timeout)
            except RpcFailed as exc:
                if exc.code != grpc.StatusCode.DEADLINE_EXCEEDED or len(batch) == 1:
                    raise
                size, pending = max(1, len(batch) // 2), batch + pending
                continue
            yield done

    def _upsert_batch(self, collection: str, batch: list[pb.Document], timeout: float | None) -> Upserted:
        response = self._call("Upsert", pb.UpsertRequest(collection=collection, documents=batch), timeout)
        return Upserted(response.count, response.unchanged)

    def upsert_stream(self, collection: str, documents: Iterable[Document | Mapping],
                      batch_size: int = 128, timeout: float | None = None) -> int:
        """Stream documents in batches over one call. Its deadline (`timeout`) covers
        the whole stream: for large loads prefer :meth:`upsert_batches` (a deadline
        per batch). Upsert is idempotent by id, so when `documents` is a sequence
        (replayable) the whole stream is retried on UNAVAILABLE; a one-shot iterator
        is not retried, since it is consumed. An exception raised while reading
        `documents` is raised as itself (gRPC alone would report it as UNKNOWN
        "Exception iterating requests!"); the batches sent before it are written."""
        raised: list[BaseException] = []

        def requests() -> Iterator[pb.UpsertRequest]:
            batch: list[pb.Document] = []
            try:
                for d in documents:
                    batch.append(self._doc(d))
                    if len(batch) >= batch_size:
                        yield pb.UpsertRequest(collection=collection, documents=batch)
                        batch = []
            except Exception as exc:
                raised.append(exc)
                raise
            if batch:
                yield pb.UpsertRequest(collection=collection, documents=batch)
        replayable = isinstance(documents, Sequence)
        try:
            return self._call("UpsertStream", requests if replayable else requests(), timeout,
                              retry=replayable).count
        except RpcFailed:
            if raised:
                raise raised[0] from None
            raise

    def delete(self, collection: str, ids: Sequence[str], timeout: float | None = None) -> int:
        return self._call("Delete", pb.DeleteRequest(collection=collection, ids=list(ids)), timeout).count

    def get(self, collection: str, ids: Sequence[str], timeout: float | None = None) -> list[Document]:
        response = self._call("Get", pb.GetRequest(collection=collection, ids=list(ids)), timeout)
        return [Document(d.id, d.text, dict(d.metadata)) for d in response.documents]

    # ------------------------------------------------------------ search

    @staticmethod
    def _hits(hits) -> list[Hit]:
        return [Hit(h.id, h.score, h.text, dict(h.metadata)) for h in hits]

    def search(self, query: str, collection: str = "", k: int = 10, farthest: bool = False,
               variant: str = "", filter: Mapping[str, str] | None = None,
               include_text: bool = False, min_score: float | None = None, offset: int = 0,
               routing_key: str = "", timeout: float | None = None) -> SearchResult:
        _check_k(k)
        request = pb.SearchRequest(collection=collection, query=query, k=k,
                                   mode=pb.FARTHEST if farthest else pb.NEAREST, variant=variant,
                                   filter=dict(filter or {}), include_text=include_text,
                                   offset=offset, routing_key=routing_key)
        if min_score is not None:
            request.min_score = min_score
        response = self._call("Search", request, timeout)
        return SearchResult(self._hits(response.hits), response.variant)

    def batch_search(self, queries: Sequence[str], collection: str = "", k: int = 10,
                     farthest: bool = False, variant: str = "",
                     filter: Mapping[str, str] | None = None, include_text: bool = False,
                     min_score: float | None = None, offset: int = 0,
                     timeout: float | None = None) -> list[SearchResult]:
        _check_k(k)
        request = pb.BatchSearchRequest(collection=collection, queries=list(queries), k=k,
                                        mode=pb.FARTHEST if farthest else pb.NEAREST,
                                        variant=variant, filter=dict(filter or {}),
                                        include_text=include_text, offset=offset)
        if min_score is not None:
            request.min_score = min_score
        response = self._call("BatchSearch", request, timeout)
        return [SearchResult(self._hits(r.hits), response.variant) for r in response.results]

    def embed(self, texts: Sequence[str], collection: str = "", variant: str = "",
              timeout: float | None = None) -> tuple[np.ndarray, str]:
        """(n, dim) float32 vectors and the variant that produced them."""
        response = self._call("Embed", pb.EmbedRequest(collection=collection, variant=variant,
                                                       texts=list(texts)), timeout)
        vectors = np.array([list(v.values) for v in response.vectors], dtype=np.float32)
        return vectors, response.variant

    def verify(self, timeout: float | None = None) -> pb.VerifyResponse:
        """Ask the running server to check its indexes against SQLite (admin)."""
        return self._call("Verify", pb.VerifyRequest(), timeout)

    def rebuild(self, collection: str = "", timeout: float | None = None) -> pb.RebuildResponse:
        """Rebuild one collection's indexes (all when empty) on the running server
        (admin). Not retried: a rebuild may take minutes, give it a long timeout."""
        return self._call("Rebuild", pb.RebuildRequest(collection=collection), timeout, retry=False)

    def stats(self, collection: str = "", timeout: float | None = None) -> pb.StatsResponse:
        return self._call("Stats", pb.StatsRequest(collection=collection), timeout)

    def health(self, service: str = "", timeout: float | None = None) -> str:
        """'SERVING' / 'NOT_SERVING' / ... from grpc.health.v1 (no retries)."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self.channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service),
                                  timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as exc:
            raise RpcFailed(exc.code(), exc.details() or "") from None
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    def wait_until_serving(self, timeout: float = 300.0, poll: float = 0.2) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                last = self.health(timeout=min(5.0, max(deadline - time.monotonic(), 0.01)))
                if last == "SERVING":
                    return
            except RpcFailed as exc:
                last = exc.code.name
            time.sleep(poll)
        raise RpcFailed(grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"server at {self.address} not SERVING after {timeout}s (last: {last})")
