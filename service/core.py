"""SearchCore: collections, upsert, delete, get, search and embed over the store
(ranksearch.indexer.port.StoragePort: the embedded Indexer or Milvus) and one
Embedder per model folder. It knows nothing of gRPC: it takes plain values, raises
ranksearch.errors, and is told through ``alive()`` whether its caller still waits
(so it can stop work when a client gives up).

Threading: called from many handler threads at once. Encoding goes through one
MicroBatcher (worker thread) per model folder; the Indexer does its own locking.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ranksearch.encoder.precision import PRECISIONS
from ranksearch.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, NotFound, RanksearchError
from ranksearch.indexer.port import StoragePort
from ranksearch.indexer.request import DENSE_MODES, SearchRequest
from ranksearch.indexer.validation import check_name
from ranksearch.service.batcher import MicroBatcher, estimate_tokens
from ranksearch.service.config import BatchingSection, IndexSection, LimitsSection
from ranksearch.service.logs import get_logger
from ranksearch.service.routing import RoutingTable

Alive = Callable[[], bool]
_always: Alive = lambda: True  # noqa: E731


@dataclass
class VariantRequest:
    """A variant to create: model '' = the default model, index None = the default index."""

    name: str = "default"
    model: str = ""
    index_kind: str = ""
    index_params: dict[str, Any] = field(default_factory=dict)
    weight: float = 0.0
    precision: str = "fp32"


#: A variant's stored encoder string is its model, plus this tag and the precision when
#: that is not fp32 ("default#precision=bf16"); collections written before precision
#: existed read as fp32. The indexer stores the string without interpreting it.
PRECISION_TAG = "#precision="


def encoder_ref(model: str, precision: str = "fp32") -> str:
    return model if precision == "fp32" else f"{model}{PRECISION_TAG}{precision}"


def split_encoder_ref(ref: str) -> tuple[str, str]:
    """(model, precision) of a stored encoder string."""
    model, _, precision = ref.partition(PRECISION_TAG)
    return model, precision or "fp32"


@dataclass(frozen=True)
class Upserted:
    """Outcome of an upsert: `count` documents acknowledged (durable), of which
    `unchanged` were stored already with the same text and metadata and not rewritten."""

    count: int
    unchanged: int = 0


class LatencyWindow:
    """Count and recent latencies (ms) of one (collection, variant)."""

    def __init__(self, size: int = 2048):
        self.count = 0
        self._recent: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, ms: float) -> None:
        with self._lock:
            self.count += 1
            self._recent.append(ms)

    def percentiles(self) -> tuple[float, float, float]:
        with self._lock:
            data = np.array(self._recent, dtype=np.float64)
        if data.size == 0:
            return (0.0, 0.0, 0.0)
        p50, p95, p99 = np.percentile(data, [50, 95, 99])
        return float(p50), float(p95), float(p99)


class SearchCore:
    def __init__(self, indexer: StoragePort, data_dir: Path, *, limits: LimitsSection | None = None,
                 batching: BatchingSection | None = None, default_model: str = "default",
                 default_index: IndexSection | None = None, default_collection: str = "",
                 load_encoder: Callable[..., Any] | None = None,
                 on_batch: Callable[[int, int], None] | None = None, device: str = "cpu",
                 long_text: str = "truncate", encoder_workers: int = 1):
        self.indexer = indexer
        self.data_dir = Path(data_dir)
        self.limits = limits or LimitsSection()
        self.batching = batching or BatchingSection()
        self.default_model = default_model
        self.default_index = default_index or IndexSection()
        self.default_collection = default_collection
        if load_encoder is None:
            from ranksearch.encoder import load_encoder as _load  # heavy: torch
            load_encoder = _load
        self._load_encoder = load_encoder
        self._on_batch = on_batch
        self.device = device
        self.long_text = long_text  # how documents over max_seq_length are encoded
        self.encoder_workers = encoder_workers  # forward passes of one encoder at once
        self.routing = RoutingTable(self.data_dir / "service" / "routing.json")
        self._models: dict[str, tuple[Any, MicroBatcher]] = {}
        self._models_lock = threading.Lock()
        self._collections: dict[str, Any] = {}
        self._admin_lock = threading.Lock()
        self._latency: dict[tuple[str, str], LatencyWindow] = {}
        #: (collection, variant) -> why it takes no traffic yet (a live build in progress)
        self.not_ready: dict[tuple[str, str], str] = {}
        self.refresh()

    # ------------------------------------------------------------ models

    def model_path(self, model: str) -> Path:
        model = model or self.default_model
        path = Path(model)
        return path if path.is_absolute() else self.data_dir / "models" / model

    def encoder(self, ref: str) -> tuple[Any, MicroBatcher]:
        """(Embedder, its MicroBatcher) for a variant's encoder string (model name, and
        precision: see encoder_ref), loaded once per model folder and precision."""
        model, precision = split_encoder_ref(ref)
        path = self.model_path(model)
        key = encoder_ref(str(path), precision)
        with self._models_lock:
            if key not in self._models:
                try:
                    exists = path.is_dir()
                except OSError as exc:  # e.g. ENAMETOOLONG: a name no folder can have
                    raise InvalidArgument("model", f"{model!r} cannot name a model folder: {exc.strerror}") from None
                if not exists:
                    raise FailedPrecondition("model", f"model folder {path} does not exist"
                                             + _builtin_hint(model))
                embedder = self._load_encoder(path, precision=precision, device=self.device,
                                              long_text=self.long_text)
                b = self.batching
                batcher = MicroBatcher(
                    lambda texts, role: embedder.encode(texts, batch_size=b.max_batch_texts, role=role),
                    enabled=b.enabled, max_wait_ms=b.max_wait_ms,
                    max_batch_texts=b.max_batch_texts, max_batch_tokens=b.max_batch_tokens,
                    measure=getattr(embedder, "token_counts", estimate_tokens),
                    name=path.name, on_batch=self._on_batch, workers=self.encoder_workers,
                    min_parallel_tokens=b.min_parallel_tokens)
                self._models[key] = (embedder, batcher)
            return self._models[key]

    def set_batching(self, enabled: bool) -> None:
        """Switch micro-batching of every loaded encoder (benchmarks compare both)."""
        self.batching.enabled = enabled
        for _, batcher in self._models.values():
            batcher.enabled = enabled

    def queue_depth(self) -> int:
        return sum(b.depth for _, b in list(self._models.values()))

    def warm_up(self) -> None:
        """Load every variant's encoder now, so the first request does not pay for it.
        A collection whose model cannot be loaded does not stop the start: its calls
        answer the same error (FAILED_PRECONDITION naming the model) later."""
        for info in self._collections.values():
            for spec in info.variants if not info.unavailable else ():
                try:
                    self.encoder(spec.encoder)
                except RanksearchError as exc:
                    get_logger().error("collection %r: cannot load the model of variant %r: %s",
                                       info.name, spec.name, exc)

    def close(self) -> None:
        for _, batcher in self._models.values():
            batcher.close()

    # ------------------------------------------------------------ collections

    def refresh(self) -> None:
        self._collections = {c.name: c for c in self.indexer.list_collections()}

    def collection(self, name: str, field_name: str = "collection", unavailable_ok: bool = False):
        """The CollectionInfo `name` (or the default collection) names. A collection
        the indexer took out of service answers FAILED_PRECONDITION with the reason,
        except for the admin calls that repair it (`unavailable_ok`)."""
        name = name or self.default_collection
        if not name:
            raise InvalidArgument(field_name, "is empty and the server has no default collection")
        info = self._collections.get(name)
        if info is None:  # a shared store (Milvus): another replica may have created it
            self.refresh()
            info = self._collections.get(name)
        if info is None:
            raise NotFound(field_name, f"collection {name!r} does not exist "
                           f"(have: {', '.join(sorted(self._collections)) or 'none'})")
        if info.unavailable and not unavailable_ok:
            raise FailedPrecondition(field_name, f"collection {name!r} is unavailable: {info.unavailable}; "
                                     "an admin can Rebuild it (from SQLite) or DeleteCollection it")
        return info

    def variant(self, info, name: str, field_name: str = "variant"):
        for spec in info.variants:
            if spec.name == name:
                return spec
        raise NotFound(field_name, f"variant {name!r} does not exist in collection {info.name!r} "
                       f"(have: {', '.join(v.name for v in info.variants)})")

    def create_collection(self, name: str, variants: Sequence[VariantRequest] = (),
                          default_variant: str = "", lexical=None, defaults=None):
        """`lexical` (LexicalConfig) and `defaults` (SearchDefaults): the collection's
        lexical index settings and its search defaults; None = the built-in ones."""
        check_name(name, "name")
        variants = list(variants) or [VariantRequest()]
        specs, seen = [], set()
        for i, v in enumerate(variants):
            specs.append(self.variant_spec(v, f"variants[{i}]", seen))
            seen.add(v.name)
        default = default_variant or variants[0].name
        if default not in seen:
            raise NotFound("default_variant", f"{default!r} is not one of the variants {sorted(seen)}")
        with self._admin_lock:
            self.indexer.create_collection(name, specs, default_variant=default, lexical_config=lexical,
                                           defaults=defaults)
            self.routing.set_weights(name, {v.name: v.weight for v in variants})
            self.refresh()
        return self._collections[name]

    def variant_spec(self, v: VariantRequest, where: str, taken: set[str]):
        """Validate one variant request (``where`` names it in errors) into a VariantSpec
        (CreateCollection, AddVariant); ``taken``: variant names already in use."""
        from ranksearch.indexer.types import IndexSpec, VariantSpec

        check_name(v.name, f"{where}.name")
        if v.name in taken:
            raise InvalidArgument(f"{where}.name", f"duplicate variant name {v.name!r}")
        if not (math.isfinite(v.weight) and v.weight >= 0):
            raise InvalidArgument(f"{where}.weight", f"must be a finite number >= 0, got {v.weight}")
        if v.index_params and not v.index_kind:
            raise InvalidArgument(f"{where}.index.kind", "is empty while params are set: name the "
                                  "kind the params are for")
        if v.precision not in PRECISIONS:
            raise InvalidArgument(f"{where}.precision", f"must be one of {', '.join(PRECISIONS)}, "
                                  f"got {v.precision!r}")
        if PRECISION_TAG in v.model:
            raise InvalidArgument(f"{where}.model", f"must not contain {PRECISION_TAG!r}")
        model = encoder_ref(v.model or self.default_model, v.precision)
        try:
            embedder, _ = self.encoder(model)
        except (FailedPrecondition, NotFound) as exc:
            raise NotFound(f"{where}.model", exc.message) from None
        except InvalidArgument as exc:
            raise InvalidArgument(f"{where}.model", exc.message) from None
        kind = v.index_kind or self.default_index.kind
        params = dict(v.index_params) if v.index_kind else dict(self.default_index.params)
        return VariantSpec(name=v.name, dim=int(embedder.dim),
                           index=IndexSpec(kind=kind, params=params), encoder=model)

    def delete_collection(self, name: str) -> None:
        info = self.collection(name, "name", unavailable_ok=True) if name else None
        if info is None:
            raise InvalidArgument("name", "is empty")
        with self._admin_lock:
            self.indexer.delete_collection(info.name)
            self.routing.drop(info.name)
            self.refresh()

    def list_collections(self) -> list:
        self.refresh()
        return [self._collections[n] for n in sorted(self._collections)]

    def verify(self) -> dict:
        """Indexer.verify() on the live indexes: {"ok", "problems", "collections"}."""
        return self.indexer.verify()

    def rebuild(self, collection: str = "") -> tuple[list[str], float, dict]:
        """Rebuild one collection's indexes (all when empty) from SQLite, live; then
        verify. Returns (collections rebuilt, seconds, verify report)."""
        names = ([self.collection(collection, "collection", unavailable_ok=True).name] if collection
                 else [c.name for c in self.list_collections()])
        t0 = time.monotonic()
        with self._admin_lock:
            try:
                self.indexer.rebuild(names[0] if collection else None)  # all at once: one snapshot pass
            finally:
                self.refresh()  # an unavailable collection may be back in service
        return names, time.monotonic() - t0, self.indexer.verify()

    # ------------------------------------------------------------ validation

    def _check_text(self, text: str, field_name: str) -> None:
        if not text:
            raise InvalidArgument(field_name, "is empty")
        if len(text) > self.limits.max_text_chars:
            raise InvalidArgument(field_name, f"has {len(text)} characters; the limit is "
                                  f"{self.limits.max_text_chars} (limits.max_text_chars)")

    def _check_id(self, doc_id: str, field_name: str) -> None:
        if not doc_id:
            raise InvalidArgument(field_name, "is empty")
        size = len(doc_id.encode("utf-8"))
        if size > self.limits.max_id_bytes:
            raise InvalidArgument(field_name, f"is {size} bytes long; the limit is "
                                  f"{self.limits.max_id_bytes} (limits.max_id_bytes)")

    def _check_count(self, n: int, field_name: str, allow_empty: bool = False) -> None:
        if n == 0 and not allow_empty:
            raise InvalidArgument(field_name, "is empty")
        if n > self.limits.max_texts_per_request:
            raise InvalidArgument(field_name, f"has {n} entries; the limit is "
                                  f"{self.limits.max_texts_per_request} (limits.max_texts_per_request)")

    def _check_ids(self, ids: Sequence[str]) -> None:
        self._check_count(len(ids), "ids")
        for i, doc_id in enumerate(ids):
            self._check_id(doc_id, f"ids[{i}]")

    # ------------------------------------------------------------ documents

    def _encode(self, model: str, texts: list[str], alive: Alive, timeout: float | None,
                role: str) -> np.ndarray:
        """role: "query" or "document" (the model's prompt for it is prepended)."""
        _, batcher = self.encoder(model)
        if not alive():
            raise DeadlineExceeded("", "client gave up before encoding")
        return batcher.encode(texts, alive=alive, timeout=timeout, role=role)

    def upsert(self, collection: str, docs: Sequence, alive: Alive = _always,
               timeout: float | None = None) -> Upserted:
        """docs: ranksearch.indexer.Document-like (id, text, metadata). Durable on return.
        Documents stored already with the same text and metadata are neither encoded
        nor written again (content hash); they count as acknowledged and unchanged."""
        from ranksearch.indexer.types import Document

        info = self.collection(collection)
        self._check_count(len(docs), "documents")
        seen: dict[str, int] = {}
        for i, d in enumerate(docs):
            self._check_id(d.id, f"documents[{i}].id")
            if d.id in seen:
                raise InvalidArgument(f"documents[{i}].id",
                                      f"duplicates documents[{seen[d.id]}].id ({d.id!r})")
            seen[d.id] = i
            self._check_text(d.text, f"documents[{i}].text")
            for key in d.metadata:
                if not key:
                    raise InvalidArgument(f"documents[{i}].metadata", "has an empty key")
        docs = [Document(id=d.id, text=d.text, metadata=dict(d.metadata)) for d in docs]
        unchanged = self.indexer.unchanged(info.name, docs)
        docs = [d for d in docs if d.id not in unchanged]
        if not docs:
            return Upserted(len(unchanged), len(unchanged))
        texts = [d.text for d in docs]
        by_model: dict[str, np.ndarray] = {}
        vectors = {}
        for spec in info.variants:  # one encoder pass per distinct model
            if spec.encoder not in by_model:
                by_model[spec.encoder] = self._encode(spec.encoder, texts, alive, timeout, "document")
            vectors[spec.name] = by_model[spec.encoder]  # (n, dim)
        if not alive():
            raise DeadlineExceeded("", "client gave up before the write; nothing was written")
        written = int(self.indexer.upsert(info.name, docs, vectors))
        return Upserted(written + len(unchanged), len(unchanged))

    def delete(self, collection: str, ids: Sequence[str]) -> int:
        info = self.collection(collection)
        self._check_ids(ids)
        return int(self.indexer.delete(info.name, list(ids)))

    def get(self, collection: str, ids: Sequence[str]) -> list:
        info = self.collection(collection)
        self._check_ids(ids)
        return self.indexer.get(info.name, list(ids))

    # ------------------------------------------------------------ search

    def choose_variant(self, info, requested: str, routing_key: str) -> Any:
        name = requested or self.routing.choose(info.name, info.default_variant, routing_key)
        spec = self.variant(info, name)
        reason = self.not_ready.get((info.name, name))
        if reason:
            if not requested:  # a split never routes to an unfinished variant
                return self.variant(info, info.default_variant)
            raise FailedPrecondition("variant", f"variant {name!r} of {info.name!r} takes no "
                                     f"traffic yet: {reason}")
        return spec

    def encode_documents(self, model: str, texts: list[str]) -> np.ndarray:
        """Encode documents with a model outside any request (background builds)."""
        return self._encode(model, texts, _always, None, "document")

    def serving_p95(self, collection: str) -> float:
        """Highest recent search p95 (ms) among the collection's variants."""
        return max((w.percentiles()[1] for (c, _), w in list(self._latency.items()) if c == collection),
                   default=0.0)

    def search(self, collection: str, queries: Sequence[str], request: SearchRequest,
               routing_key: str = "", alive: Alive = _always, timeout: float | None = None,
               query_field: str = "queries") -> tuple[str, str, list[list]]:
        """Returns (variant name ('' for lexical), mode that answered, hits per query).
        `request` validated itself when it was built; here: the server's limits, the
        collection's defaults for what it left unset, the query texts."""
        started = time.perf_counter()
        info = self.collection(collection)
        limits = self.limits
        request = request.check_limits(limits.max_k, limits.max_offset, limits.max_filter_keys)
        request = request.resolved(info.defaults)
        self._check_count(len(queries), query_field)
        for i, q in enumerate(queries):
            self._check_text(q, query_field if query_field == "query" else f"{query_field}[{i}]")
        vectors, variant = None, ""
        if request.mode in DENSE_MODES:
            spec = self.choose_variant(info, request.variant, routing_key)
            variant = spec.name
            vectors = self._encode(spec.encoder, list(queries), alive, timeout, "query")  # (q, dim)
            if not alive():
                raise DeadlineExceeded("", "client gave up before the index search")
        hits = self.indexer.search(info.name, replace(request, variant=variant), vectors, list(queries))
        window = self._latency.get((info.name, variant))
        if window is None:  # first search of this variant (setdefault keeps one under races)
            window = self._latency.setdefault((info.name, variant), LatencyWindow())
        window.add((time.perf_counter() - started) * 1000.0)
        return variant, request.mode, hits

    def embed(self, collection: str, variant: str, texts: Sequence[str],
              alive: Alive = _always, timeout: float | None = None,
              role: str = "query") -> tuple[str, np.ndarray, str]:
        """(variant, (n, dim) vectors, the prompt prepended for ``role``)."""
        info = self.collection(collection)
        spec = self.choose_variant(info, variant or info.default_variant, "")
        self._check_count(len(texts), "texts")
        for i, t in enumerate(texts):
            self._check_text(t, f"texts[{i}]")
        vectors = self._encode(spec.encoder, list(texts), alive, timeout, role)
        return spec.name, vectors, self.encoder(spec.encoder)[0].prompts[role]

    # ------------------------------------------------------------ stats

    def stats(self, collection: str = "") -> list[dict]:
        self.refresh()
        infos = [self.collection(collection, unavailable_ok=True)] if collection else \
            [self._collections[n] for n in sorted(self._collections)]
        raw = self.indexer.stats()
        index_stats = _index_stats(raw)
        lexical_stats = {name: c.get("lexical", {}) for name, c in raw["collections"].items()}
        weights_all = {i.name: self.routing.weights(i.name) for i in infos}
        out = []
        for info in infos:
            variants = []
            for spec in info.variants:
                desc = {}
                model, precision = split_encoder_ref(spec.encoder)
                key = encoder_ref(str(self.model_path(model)), precision)
                if key in self._models:
                    desc = self._models[key][0].describe()
                window = self._latency.get((info.name, spec.name), LatencyWindow())
                p50, p95, p99 = window.percentiles()
                ix = index_stats.get((info.name, spec.name), {})
                variants.append({
                    "name": spec.name, "index_kind": spec.index.kind, "dim": spec.dim,
                    "index_size": ix.get("vectors", info.documents),
                    "index_state": ix.get("index_type", ""), "rebuilding": ix.get("rebuilding") or "",
                    "model": model, "rank": list(desc.get("rank", [])),
                    "precision": precision, "effective_precision": desc.get("precision", ""),
                    "engine": desc.get("engine", ""),
                    "parameters": int(desc.get("parameters", 0)), "requests": window.count,
                    "latency_ms": (p50, p95, p99), "is_default": spec.name == info.default_variant,
                    "weight": weights_all[info.name].get(spec.name, 0.0),
                })
            out.append({"name": info.name, "documents": info.documents, "variants": variants,
                        "unavailable": info.unavailable,
                        "lexical": lexical_stats.get(info.name, {})})
        return out


def _index_stats(stats: dict) -> dict[tuple[str, str], dict]:
    """(collection, variant) -> its entry of Indexer.stats()."""
    return {(cname, vname): vstats
            for cname, cstats in stats["collections"].items()
            for vname, vstats in cstats["variants"].items()}


def _builtin_hint(model: str) -> str:
    """How to get a built-in model that this data dir has not built yet."""
    from ranksearch.encoder.default_model import BUILTIN_MODELS  # imports torch: only here

    if model not in BUILTIN_MODELS:
        return ""
    return (f"; the built-in model {model!r} is built when the server starts with it as its "
            f"default: `ranksearch serve --model {model}` (`make run MODEL={model}`), then "
            f"create collections with --model {model}")
