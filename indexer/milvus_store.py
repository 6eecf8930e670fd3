"""MilvusStore: the storage port (ranksearch.indexer.port.StoragePort) over a Milvus
server or cluster. The ranksearch process holds no documents: any number of replicas
share one Milvus. Data model: ranksearch.indexer.milvus_schema.

Every input is checked with the embedded store's own checks
(ranksearch.indexer.validation) plus Milvus's bounds (VARCHAR and JSON sizes,
filter literals) before pymilvus sees it. Every call to Milvus goes through
``_call``, which turns "cannot reach Milvus" into Unavailable (gRPC UNAVAILABLE with
a retry hint), "no such collection" into NotFound and anything else Milvus refuses
into FailedPrecondition: never an INTERNAL.

Writes: ``upsert`` returns after Milvus acknowledged the write (it is in Milvus's
write-ahead log, durable); what a reader sees next depends on consistency_level
(docs/SCALE_OUT.md). Reads that decide what to write (the version of a replaced
document, which ids a delete removes) always use Strong.

Threading: one pymilvus client, shared by all handler threads (pymilvus is
thread-safe); the definition cache is replaced, never mutated.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable

import numpy as np

from ranksearch import fusion
from ranksearch.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from ranksearch.indexer import lexical
from ranksearch.indexer import milvus_lexical as ml
from ranksearch.indexer import milvus_schema as ms
from ranksearch.indexer import validation as v
from ranksearch.indexer.config import IndexerConfig
from ranksearch.indexer.milvus_filter import expression, ids_expression, literal
from ranksearch.indexer.request import DENSE_MODES, LEXICAL_MODES, SearchDefaults, SearchRequest
from ranksearch.indexer.search import explainer  # one home for explain
from ranksearch.indexer.store import content_hash
from ranksearch.indexer.types import CollectionInfo, Document, Explain, Hit, VariantSpec

log = logging.getLogger("ranksearch.indexer.milvus")

# pymilvus / Milvus status codes
_CONNECT_FAILED = 2
_COLLECTION_NOT_FOUND = 100
_NOT_LOADED = 101
_UNREACHABLE_WORDS = ("unavailable", "connect", "deadline", "timeout", "timed out", "closed", "socket")
RETRY_AFTER_S = 2.0
MAX_VARIANTS = 16  # Milvus allows few vector fields per collection (proxy.maxVectorFieldNum)
IDS_PER_QUERY = 1000  # ids per `id in [...]` expression
QUERY_PAGE = 16384  # rows per Milvus query (its default maxQueryResultWindow); more: a query iterator
WRITE_CHUNK_BYTES = 32 << 20  # rows per Milvus upsert call: well under its 64 MiB message limit


class _NotLoaded(FailedPrecondition):
    """Milvus released the collection (a restart does); _loaded_call loads it."""


class MilvusStore:
    def __init__(self, uri: str, *, token: str = "", db_name: str = "default",
                 collection_prefix: str = "ranksearch_", shards_num: int = 1, replica_number: int = 1,
                 consistency_level: str = "Strong", timeout_s: float = 10.0, ca_file: str = "",
                 server_name: str = "", config: IndexerConfig | None = None):
        self.uri = uri
        self.config = config or IndexerConfig()
        self.prefix = collection_prefix
        self.shards_num = shards_num
        self.replica_number = replica_number
        self.consistency = consistency_level
        self.timeout = timeout_s
        # dedicated: this store's own channel, closed by close() (pymilvus otherwise keeps a
        # process-wide shared one open forever); no keepalive pings while no call is in
        # flight: a gRPC server's default policy (milvus-lite's) answers idle pings every
        # 10 s with GOAWAY "too_many_pings", and the channel then fails to reconnect
        self._connect_args = {"uri": uri, "token": token, "db_name": db_name, "timeout": timeout_s,
                              "dedicated": True,
                              "grpc_options": {"grpc.keepalive_permit_without_calls": False}}
        if ca_file:
            self._connect_args["server_pem_path"] = ca_file
        if server_name:
            self._connect_args["server_name"] = server_name
        self._client = None
        self._client_lock = threading.Lock()
        self._defs: dict[str, ms.Definition] = {}  # replaced, never mutated

    # ------------------------------------------------------------ connection

    def open(self) -> None:
        client = self._connected()
        meta = ms.meta_name(self.prefix)
        if not self._call("has_collection", lambda: client.has_collection(meta, timeout=self.timeout)):
            schema, indexes = ms.meta_schema(type(client))
            self._call("create_collection", lambda: client.create_collection(
                meta, schema=schema, index_params=indexes, consistency_level="Strong",
                timeout=self.timeout))
        self._load_definitions()

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def ping(self) -> str:
        client = self._connected()
        return str(self._call("get_server_version",
                              lambda: client.get_server_version(timeout=min(self.timeout, 3.0))))

    def _connected(self):
        with self._client_lock:
            if self._client is None:
                from pymilvus import MilvusClient

                self._client = self._call("connect", lambda: MilvusClient(**self._connect_args))
            return self._client

    def _call(self, what: str, fn: Callable[[], Any], collection: str = "") -> Any:
        """Run one pymilvus call; map its failures onto ranksearch errors."""
        import grpc
        from pymilvus.exceptions import MilvusException

        try:
            return fn()
        except MilvusException as exc:
            code, message = getattr(exc, "code", None), str(getattr(exc, "message", exc))
            if code == _COLLECTION_NOT_FOUND and collection:
                self._forget(collection)
                raise NotFound("collection", f"collection {collection!r} does not exist in Milvus") from None
            if code == _NOT_LOADED:
                raise _NotLoaded("store", f"Milvus has not loaded the collection ({what}: {message})") from None
            if code == _CONNECT_FAILED or any(w in message.lower() for w in _UNREACHABLE_WORDS):
                raise self._unavailable(what, message) from None
            raise FailedPrecondition("store", f"Milvus refused {what}: {message}") from None
        except (ConnectionError, OSError, TimeoutError, grpc.RpcError) as exc:  # a channel that broke mid-call
            raise self._unavailable(what, str(exc)) from None

    def _unavailable(self, what: str, message: str) -> Unavailable:
        return Unavailable("store", f"Milvus at {self.uri} cannot be reached ({what}: {message[:200]}); "
                           f"retry in {RETRY_AFTER_S:g} s", retry_after_s=RETRY_AFTER_S)

    def _loaded_call(self, what: str, definition: ms.Definition, fn: Callable[[], Any]) -> Any:
        """A read that needs the collection loaded: load it once if Milvus released it
        (a restarted milvus-lite does)."""
        try:
            return self._call(what, fn, definition.name)
        except _NotLoaded:
            pass
        client = self._connected()
        self._call("load_collection", lambda: client.load_collection(
            definition.physical, replica_number=self.replica_number, timeout=self.timeout), definition.name)
        return self._call(what, fn, definition.name)

    # ------------------------------------------------------------ definitions

    def _load_definitions(self) -> dict[str, ms.Definition]:
        client = self._connected()
        meta = ms.meta_name(self.prefix)
        rows = self._call("query meta", lambda: client.query(
            meta, filter='name != ""', output_fields=["name", "definition"],
            consistency_level="Strong", timeout=self.timeout))
        self._defs = {r["name"]: ms.Definition.from_json(r["name"], r["definition"]) for r in rows}
        return self._defs

    def _forget(self, name: str) -> None:
        self._defs = {k: d for k, d in self._defs.items() if k != name}

    def _definition(self, name: Any, field: str = "collection") -> ms.Definition:
        if not isinstance(name, str):
            raise InvalidArgument(field, f"must be a string, got {type(name).__name__}")
        found = self._defs.get(name) or self._load_definitions().get(name)
        if found is None:
            raise NotFound(field, f"collection {name!r} does not exist "
                           f"(have: {', '.join(sorted(self._defs)) or 'none'})")
        return found

    def _variant(self, definition: ms.Definition, variant: str | None) -> ms.VariantFields:
        name = variant or definition.default_variant
        if name not in definition.variants:
            raise NotFound("variant", f"variant {name!r} does not exist in collection {definition.name!r} "
                           f"(have: {', '.join(definition.variants)})")
        return definition.variants[name]

    def _count(self, definition: ms.Definition) -> int:
        client = self._connected()
        rows = self._loaded_call("count", definition, lambda: client.query(
            definition.physical, filter="", output_fields=["count(*)"], consistency_level="Strong",
            timeout=self.timeout))
        return int(rows[0]["count(*)"])

    def _count_where(self, definition: ms.Definition, expr: str) -> int:
        client = self._connected()
        rows = self._loaded_call("count", definition, lambda: client.query(
            definition.physical, filter=expr, output_fields=["count(*)"], consistency_level=self.consistency,
            timeout=self.timeout))
        return int(rows[0]["count(*)"])

    def _query_all(self, definition: ms.Definition, expr: str, fields: list[str]) -> list[dict]:
        """Every row matching `expr` (one query, or pages of a query iterator past QUERY_PAGE)."""
        client = self._connected()
        rows = self._loaded_call("query", definition, lambda: client.query(
            definition.physical, filter=expr, output_fields=fields, limit=QUERY_PAGE,
            consistency_level=self.consistency, timeout=self.timeout))
        if len(rows) < QUERY_PAGE:
            return rows

        def all_pages() -> list[dict]:
            it = client.query_iterator(definition.physical, batch_size=QUERY_PAGE, filter=expr,
                                       output_fields=fields, consistency_level=self.consistency,
                                       timeout=self.timeout)
            out: list[dict] = []
            try:
                while page := it.next():
                    out.extend(page)
            finally:
                it.close()
            return out
        return self._loaded_call("query iterator", definition, all_pages)

    def _info(self, definition: ms.Definition) -> CollectionInfo:
        return CollectionInfo(definition.name, [f.spec for f in definition.variants.values()],
                              definition.default_variant, self._count(definition), lexical=definition.lexical,
                              defaults=definition.defaults)

    # ------------------------------------------------------------ collections

    def create_collection(self, name: str, variants: list[VariantSpec],
                          default_variant: str | None = None, lexical_config: lexical.LexicalConfig | None = None,
                          defaults: SearchDefaults | None = None) -> CollectionInfo:
        """`lexical_config`: the lexical index's analyzer and BM25 settings (fixed from
        now on); `defaults`: mode and hybrid parameters of requests that set none."""
        lex, defaults = v.check_collection_settings(name, lexical_config, defaults)
        if not variants or len(variants) > MAX_VARIANTS:
            raise InvalidArgument("variants", f"needs 1 to {MAX_VARIANTS} variants, got {len(variants)}")
        for i, spec in enumerate(variants):
            v.check_name(spec.name, f"variants[{i}].name")
            if not isinstance(spec.encoder, str) or len(spec.encoder) > 4096:
                raise InvalidArgument(f"variants[{i}].encoder", "must be a string of at most 4096 characters")
            if isinstance(spec.dim, bool) or not isinstance(spec.dim, int) or not 2 <= spec.dim <= 32768:
                raise InvalidArgument(f"variants[{i}].dim", f"must be an integer in 2..32768, got {spec.dim!r}")
        if len({s.name for s in variants}) != len(variants):
            raise InvalidArgument("variants", "variant names must be unique")
        default = default_variant or variants[0].name
        if default not in {s.name for s in variants}:
            raise NotFound("default_variant", f"{default!r} is not one of the variants")
        definition = ms.Definition.new(self.prefix, name, list(variants), default, lex, defaults)
        if name in self._load_definitions():
            raise AlreadyExists("name", f"collection {name!r} already exists")
        client = self._connected()
        schema, indexes = ms.data_schema(type(client), definition, self.config.max_id_length)
        if self._call("has_collection", lambda: client.has_collection(definition.physical, timeout=self.timeout)):
            # left by a create that failed before its definition was written, or being
            # created by another replica right now: use it only if it is empty and has
            # exactly these fields (never drop what may hold someone's documents)
            self._check_reusable(definition)
        else:
            self._call("create_collection", lambda: client.create_collection(
                definition.physical, schema=schema, index_params=indexes, shards_num=self.shards_num,
                consistency_level=self.consistency, timeout=self.timeout))
        self._call("load_collection", lambda: client.load_collection(
            definition.physical, replica_number=self.replica_number, timeout=self.timeout))
        # the definition is written last: a collection is visible once it is usable
        self._call("upsert meta", lambda: client.upsert(ms.meta_name(self.prefix), [
            {"name": name, "definition": definition.to_json(), "_unused": [1.0] + [0.0] * (ms.META_DIM - 1)}],
            timeout=self.timeout))
        self._defs = {**self._defs, name: definition}
        return CollectionInfo(name, list(variants), default, 0, lexical=lex, defaults=defaults)

    def _check_reusable(self, definition: ms.Definition) -> None:
        client = self._connected()
        described = self._call("describe_collection", lambda: client.describe_collection(
            definition.physical, timeout=self.timeout))
        have = {f["name"] for f in described["fields"]}
        if have != definition.field_names() or self._count(definition):
            raise AlreadyExists("name", f"Milvus collection {definition.physical} exists without a ranksearch "
                                "definition and is not an empty collection of these variants; drop it in "
                                "Milvus or choose another name")

    def list_collections(self) -> list[CollectionInfo]:
        infos = []
        for name, definition in sorted(self._load_definitions().items()):
            try:
                infos.append(self._info(definition))
            except NotFound:  # dropped by another replica meanwhile
                continue
        return infos

    def get_collection(self, name: str) -> CollectionInfo:
        return self._info(self._definition(name))

    def delete_collection(self, name: str) -> None:
        definition = self._definition(name, "name")
        client = self._connected()
        # the data goes first: if the definition's delete then fails, a retry of this
        # call finds the definition and completes (dropping a missing collection is a no-op)
        self._call("drop_collection", lambda: client.drop_collection(definition.physical, timeout=self.timeout))
        self._call("delete meta", lambda: client.delete(
            ms.meta_name(self.prefix), filter=f"name == {literal(name, 'name')}", timeout=self.timeout))
        self._forget(name)

    # ------------------------------------------------------------ documents

    def _rows(self, definition: ms.Definition, ids: list[str], fields: list[str],
              consistency: str = "Strong") -> dict[str, dict]:
        """id -> row (with `fields`) of the ids that exist, IDS_PER_QUERY ids per query
        (bounded expressions and result sets)."""
        client = self._connected()
        found: dict[str, dict] = {}
        for start in range(0, len(ids), IDS_PER_QUERY):
            expr = ids_expression(ids[start:start + IDS_PER_QUERY])
            rows = self._loaded_call("query ids", definition, lambda: client.query(
                definition.physical, filter=expr, output_fields=["id", *fields],
                consistency_level=consistency, timeout=self.timeout))
            found.update((r["id"], r) for r in rows)
        return found

    def unchanged(self, collection: str, docs: list[Document]) -> set[str]:
        """Ids of `docs` stored already with the same text and metadata (content hash,
        the embedded store's rule): the core skips encoding and writing them."""
        definition = self._definition(collection)
        stored = self._rows(definition, [d.id for d in docs], ["content_sha256"])
        return {d.id for d in docs
                if stored.get(d.id, {}).get("content_sha256") == content_hash(d.text, dict(d.metadata))}

    def upsert(self, collection: str, docs: list[Document], vectors: dict[str, np.ndarray]) -> int:
        cfg = self.config
        definition = self._definition(collection)
        docs = v.check_documents(docs, cfg.max_id_length, cfg.max_batch)
        specs = {name: f.spec for name, f in definition.variants.items()}
        unit = v.check_vectors(vectors, specs, len(docs), collection)  # name -> (n, dim) unit rows
        metas = []
        for i, doc in enumerate(docs):
            literal(doc.id, f"documents[{i}].id")
            size = len(doc.text.encode("utf-8"))
            if size > ms.TEXT_MAX_BYTES:
                raise InvalidArgument(f"documents[{i}].text", f"is {size} bytes of UTF-8; the Milvus store "
                                      f"holds at most {ms.TEXT_MAX_BYTES} (a Milvus VARCHAR)")
            meta = json.dumps(dict(doc.metadata), ensure_ascii=False)
            if len(meta.encode("utf-8")) > ms.METADATA_MAX_BYTES:
                raise InvalidArgument(f"documents[{i}].metadata", f"is {len(meta.encode('utf-8'))} bytes as "
                                      f"JSON; the Milvus store holds at most {ms.METADATA_MAX_BYTES}")
            metas.append(dict(doc.metadata))
        if not docs:
            return 0
        lexical_rows = ([ml.row_fields(definition.lexical, doc.text, metas[i], f"documents[{i}]")
                         for i, doc in enumerate(docs)] if definition.lexical else [{}] * len(docs))
        versions = self._rows(definition, [d.id for d in docs], ["version"])
        rows = []
        for i, doc in enumerate(docs):
            row = {"id": doc.id, "text": doc.text, "metadata": metas[i],
                   "content_sha256": content_hash(doc.text, metas[i]),
                   "version": int(versions.get(doc.id, {}).get("version", 0)) + 1, **lexical_rows[i]}
            for name, fields in definition.variants.items():
                vec = unit[name][i].tolist()
                row[fields.field] = vec
                if fields.approximate:
                    row[fields.exact_field] = vec
            rows.append(row)
        client = self._connected()
        row_bytes = 4 * sum(f.spec.dim * (2 if f.approximate else 1) for f in definition.variants.values()) \
            + (8 if definition.lexical else 4) * ms.TEXT_MAX_BYTES // 16
        step = max(1, WRITE_CHUNK_BYTES // row_bytes)
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            self._call("upsert", lambda: client.upsert(definition.physical, chunk, timeout=self.timeout),
                       definition.name)
        return len(rows)

    def delete(self, collection: str, ids: list[str]) -> int:
        definition = self._definition(collection)
        ids = v.check_ids(ids, "ids", self.config.max_id_length, self.config.max_batch)
        found = self._rows(definition, ids, [])
        existing = [i for i in ids if i in found]
        client = self._connected()
        for start in range(0, len(existing), IDS_PER_QUERY):
            expr = ids_expression(existing[start:start + IDS_PER_QUERY])
            self._call("delete", lambda: client.delete(definition.physical, filter=expr, timeout=self.timeout),
                       definition.name)
        return len(existing)

    def get(self, collection: str, ids: list[str]) -> list[Document]:
        definition = self._definition(collection)
        ids = v.check_ids(ids, "ids", self.config.max_id_length, self.config.max_batch)
        rows = self._rows(definition, ids, ["text", "metadata", "version"], self.consistency)
        return [Document(i, rows[i]["text"], dict(rows[i]["metadata"] or {}), int(rows[i]["version"]))
                for i in ids if i in rows]

    # ------------------------------------------------------------ search

    def search(self, collection: str, request: SearchRequest, vectors: np.ndarray | None = None,
               texts=None) -> list[list[Hit]]:
        """Every mode of the embedded store, with its rules (indexer/search.py): rank,
        skip `offset`, keep `k`, then drop hits beyond `min_score` on the score the mode
        returns (cosine, BM25 or fused); filters restrict each retriever before fusion.
        Lexical scoring: ranksearch.indexer.milvus_lexical."""
        cfg = self.config
        if not isinstance(request, SearchRequest):
            raise InvalidArgument("request", f"must be a SearchRequest, got {type(request).__name__}")
        request.check_limits(cfg.max_k, cfg.max_offset, where="indexer")
        definition = self._definition(collection)
        request = request.resolved(definition.defaults)
        fields = self._variant(definition, request.variant or None)
        mode = request.mode
        unit = terms = None
        if mode in DENSE_MODES:
            if vectors is None:
                raise InvalidArgument("queries", f"mode {mode} needs query vectors")
            arr = np.asarray(vectors, dtype=np.float32)
            arr = arr[None, :] if arr.ndim == 1 else arr
            if len(arr) > cfg.max_queries:
                raise InvalidArgument("queries", f"has {len(arr)} rows, the limit is {cfg.max_queries}")
            unit = v.unit_rows(arr, "queries", fields.spec.dim, None)  # (q, dim)
        if mode in LEXICAL_MODES:
            if definition.lexical is None:
                raise FailedPrecondition("mode", f"collection {definition.name!r} was created in Milvus before "
                                         "the Milvus store had a lexical index, so it has no lexical fields; "
                                         "lexical and hybrid searches need it re-created and its documents "
                                         "upserted again (docs/SCALE_OUT.md); dense searches work")
            texts = v.check_texts(texts, "texts", cfg.max_queries, None if unit is None else len(unit))
            terms = ml.query_terms(definition.lexical, texts)
        expr = expression(dict(request.filter))
        if mode in ("nearest", "farthest"):
            return self._dense_page(definition, fields, request, unit, expr)
        dense_depth, lexical_depth = (request.hybrid.depths(request.window) if mode == "hybrid"
                                      else (request.window, request.window))
        dense = (self._dense_runs(definition, fields, request, unit, expr, dense_depth)
                 if unit is not None else [None] * len(terms))

        def fetch(e: str, out: list[str]) -> list[dict]:
            return self._query_all(definition, e, out)
        stats = ml.corpus_stats(lambda e: self._count_where(definition, e), fetch)
        lex = [ml.ranking(definition.lexical, stats, t, fetch, expr, lexical_depth) for t in terms]
        return self._fused_page(definition, request, dense, lex)

    def _dense_runs(self, definition: ms.Definition, fields: ms.VariantFields, request: SearchRequest,
                    unit: np.ndarray, expr: str, depth: int, output: tuple[str, ...] = ()) -> list[list]:
        """One Milvus search for all (q, dim) query rows: per query [(id, cosine, entity)],
        best first (farthest: smallest cosine first)."""
        farthest = request.farthest
        if farthest:  # the smallest cosines are the largest of the negated query, exact field
            field, sparams, unit = fields.exact_field, {"metric_type": "IP", "params": {}}, -unit
        else:
            field, sparams = ms.search_params(fields, bool(request.params.get("exact")), dict(request.params),
                                              depth)
        client = self._connected()
        results = self._loaded_call("search", definition, lambda: client.search(
            definition.physical, data=unit.tolist(), anns_field=field, limit=depth, filter=expr,
            output_fields=list(output), search_params=sparams, consistency_level=self.consistency,
            timeout=self.timeout))
        sign = -1.0 if farthest else 1.0
        return [[(str(h["id"]), sign * float(h["distance"]), h["entity"]) for h in per_query]
                for per_query in results]

    def _dense_page(self, definition, fields, request: SearchRequest, unit: np.ndarray, expr: str) -> list[list[Hit]]:
        """nearest / farthest: the page comes with its metadata (and text) from the search."""
        output = ("metadata", "text") if request.include_text else ("metadata",)
        out = []
        for run in self._dense_runs(definition, fields, request, unit, expr, request.window, output):
            hits = []
            for rank, (doc_id, score, entity) in enumerate(run[request.offset:], start=request.offset + 1):
                if not self._within(request, score):
                    continue
                hits.append(Hit(doc_id, score, entity.get("text", "") if request.include_text else "",
                                dict(entity.get("metadata") or {}),
                                Explain(rank, score, 0, 0.0) if request.explain else None))
            out.append(hits)
        return out

    @staticmethod
    def _within(request: SearchRequest, score: float) -> bool:
        low = request.min_score
        return low is None or (score <= low if request.farthest else score >= low)

    def _fused_page(self, definition: ms.Definition, request: SearchRequest, dense: list, lex: list) -> list[list[Hit]]:
        """lexical / hybrid: rank (fuse with ranksearch.fusion in hybrid mode), page, cut,
        then fetch the page's metadata (and text) by id."""
        pages = []
        for d_run, l_run in zip(dense, lex):
            d = None if d_run is None else [(doc_id, score) for doc_id, score, _ in d_run]
            if request.mode == "hybrid":
                h = request.hybrid
                ranked = fusion.fuse([d, l_run], [h.dense_weight, h.lexical_weight], h.fusion, h.rrf_k,
                                     h.normalization)
            else:
                ranked = l_run
            page = [(doc_id, score) for doc_id, score in ranked[request.offset:request.window]
                    if self._within(request, score)]
            pages.append((page, explainer(d, l_run) if request.explain else None))
        wanted = sorted({doc_id for page, _ in pages for doc_id, _ in page})
        fields = ["metadata", "text"] if request.include_text else ["metadata"]
        rows = self._rows(definition, wanted, fields, self.consistency) if wanted else {}
        # a hit deleted between its ranking and this read is left out
        return [[Hit(doc_id, score, rows[doc_id].get("text", "") if request.include_text else "",
                     dict(rows[doc_id].get("metadata") or {}), explain(doc_id) if explain else None)
                 for doc_id, score in page if doc_id in rows] for page, explain in pages]

    # ------------------------------------------------------------ operations

    def _load_state(self, definition: ms.Definition) -> str:
        client = self._connected()
        state = self._call("get_load_state", lambda: client.get_load_state(
            definition.physical, timeout=self.timeout), definition.name)
        return getattr(state.get("state"), "name", str(state.get("state")))

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"store": "milvus", "uri": self.uri, "collections": {}}
        for name, definition in sorted(self._load_definitions().items()):
            try:
                documents = self._count(definition)
                load_state = self._load_state(definition)
            except NotFound:
                continue
            variants = {}
            for vname, fields in definition.variants.items():
                kind = ms.INDEX_KINDS[fields.spec.index.kind.lower()][0]
                variants[vname] = {"vectors": documents, "dim": fields.spec.dim,
                                   "index_type": f"milvus {kind}" + (" + FLAT exact copy" if fields.approximate else ""),
                                   "rebuilding": None, "load_state": load_state,
                                   "milvus_fields": [fields.field] + ([fields.exact_field] if fields.approximate else [])}
            lex = definition.lexical
            out["collections"][name] = {
                "documents": documents, "default_variant": definition.default_variant,
                "physical": definition.physical, "variants": variants,
                "lexical": {"analyzer": lex.analyzer if lex else "none (created before the Milvus lexical index)",
                            "documents": documents if lex else 0, "ready": True,
                            "default_mode": definition.defaults.mode}}
        return out

    def verify(self) -> dict[str, Any]:
        """Every defined collection exists in Milvus, is loaded and has an index on each
        of its vector fields."""
        problems: list[str] = []
        report: dict[str, Any] = {}
        client = self._connected()
        for name, definition in sorted(self._load_definitions().items()):
            if not self._call("has_collection", lambda: client.has_collection(definition.physical,
                                                                             timeout=self.timeout)):
                problems.append(f"{name}: Milvus collection {definition.physical} is missing")
                continue
            state = self._load_state(definition)
            if state != "Loaded":
                problems.append(f"{name}: Milvus collection {definition.physical} is {state}, not Loaded")
            indexed = set(self._call("list_indexes", lambda: client.list_indexes(definition.physical,
                                                                               timeout=self.timeout)))
            for fields in definition.variants.values():
                for f in {fields.field, fields.exact_field}:
                    if f not in indexed:
                        problems.append(f"{name}/{fields.spec.name}: no index on Milvus field {f}")
            report[name] = {"documents": self._count(definition), "load_state": state}
        return {"ok": not problems, "problems": problems, "collections": report}

    def rebuild(self, collection: str | None = None) -> None:
        """Milvus builds and merges its own indexes; this asks it to compact (purge
        deleted rows, merge small segments) and to load what is not loaded."""
        names = [self._definition(collection).name] if collection else sorted(self._load_definitions())
        client = self._connected()
        for name in names:
            definition = self._defs[name]
            self._call("compact", lambda: client.compact(definition.physical, timeout=self.timeout), name)
            if self._load_state(definition) != "Loaded":
                self._call("load_collection", lambda: client.load_collection(
                    definition.physical, replica_number=self.replica_number, timeout=self.timeout), name)

    def wait_until_reachable(self, timeout_s: float) -> str:
        """ping() until it answers or `timeout_s` passes (then raise its Unavailable)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.ping()
            except Unavailable:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)

