"""SearchCore: collections, upsert, delete, get, search and embed over the Indexer
and one Embedder per model folder. It knows nothing of gRPC: it takes plain values,
raises ranksearch.errors, and is told through ``alive()`` whether its caller still
waits (so it can stop work when a client gives up).

Threading: called from many handler threads at once. Encoding goes through one
MicroBatcher (worker thread) per model folder; the Indexer does its own locking.
"""
from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ranksearch.encoder.precision import PRECISIONS
from ranksearch.errors import FailedPrecondition, InvalidArgument, NotFound
from ranksearch.service.batcher import MicroBatcher, estimate_tokens
from ranksearch.service.config import BatchingSection, IndexSection, LimitsSection
from ranksearch.service.errors import DeadlineExceeded
from ranksearch.service.routing import RoutingTable

Alive = Callable[[], bool]
_always: Alive = lambda: True  # noqa: E731
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MODES = ("nearest", "farthest")
DEFAULT_K = 10


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


@dataclass
class SearchParams:
    k: int = DEFAULT_K
    mode: str = "nearest"
    variant: str = ""
    filter: dict[str, str] = field(default_factory=dict)
    include_text: bool = False
    min_score: float | None = None
    offset: int = 0
    routing_key: str = ""


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
    def __init__(self, indexer, data_dir: Path, *, limits: LimitsSection | None = None,
                 batching: BatchingSection | None = None, default_model: str = "default",
                 default_index: IndexSection | None = None, default_collection: str = "",
                 load_encoder: Callable[..., Any] | None = None,
                 on_batch: Callable[[int, int], None] | None = None, device: str = "cpu"):
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
        self.routing = RoutingTable(self.data_dir / "service" / "routing.json")
        self._models: dict[str, tuple[Any, MicroBatcher]] = {}
        self._models_lock = threading.Lock()
        self._collections: dict[str, Any] = {}
        self._admin_lock = threading.Lock()
        self._latency: dict[tuple[str, str], LatencyWindow] = {}
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
                if not path.is_dir():
                    raise FailedPrecondition("model", f"model folder {path} does not exist")
                embedder = self._load_encoder(path, precision=precision, device=self.device)
                b = self.batching
                batcher = MicroBatcher(
                    lambda texts: embedder.encode(texts, batch_size=b.max_batch_texts),
                    enabled=b.enabled, max_wait_ms=b.max_wait_ms,
                    max_batch_texts=b.max_batch_texts, max_batch_tokens=b.max_batch_tokens,
                    measure=getattr(embedder, "token_counts", estimate_tokens),
                    name=path.name, on_batch=self._on_batch)
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
        """Load every variant's encoder now, so the first request does not pay for it."""
        for info in self._collections.values():
            for spec in info.variants:
                self.encoder(spec.encoder)

    def close(self) -> None:
        for _, batcher in self._models.values():
            batcher.close()

    # ------------------------------------------------------------ collections

    def refresh(self) -> None:
        self._collections = {c.name: c for c in self.indexer.list_collections()}

    def collection(self, name: str, field_name: str = "collection"):
        name = name or self.default_collection
        if not name:
            raise InvalidArgument(field_name, "is empty and the server has no default collection")
        info = self._collections.get(name)
        if info is None:
            raise NotFound(field_name, f"collection {name!r} does not exist "
                           f"(have: {', '.join(sorted(self._collections)) or 'none'})")
        return info

    def variant(self, info, name: str, field_name: str = "variant"):
        for spec in info.variants:
            if spec.name == name:
                return spec
        raise NotFound(field_name, f"variant {name!r} does not exist in collection {info.name!r} "
                       f"(have: {', '.join(v.name for v in info.variants)})")

    def create_collection(self, name: str, variants: Sequence[VariantRequest] = (),
                          default_variant: str = ""):
        from ranksearch.indexer.types import IndexSpec, VariantSpec

        if not _NAME.match(name or ""):
            raise InvalidArgument("name", f"{name!r} is not a valid collection name "
                                  "(1-64 of letters, digits, '_', '-', '.')")
        variants = list(variants) or [VariantRequest()]
        specs, seen = [], set()
        for i, v in enumerate(variants):
            where = f"variants[{i}]"
            if not _NAME.match(v.name or ""):
                raise InvalidArgument(f"{where}.name", f"{v.name!r} is not a valid variant name")
            if v.name in seen:
                raise InvalidArgument(f"{where}.name", f"duplicate variant name {v.name!r}")
            if v.weight < 0:
                raise InvalidArgument(f"{where}.weight", f"must be >= 0, got {v.weight}")
            seen.add(v.name)
            if v.precision not in PRECISIONS:
                raise InvalidArgument(f"{where}.precision", f"must be one of {', '.join(PRECISIONS)}, "
                                      f"got {v.precision!r}")
            if PRECISION_TAG in v.model:
                raise InvalidArgument(f"{where}.model", f"must not contain {PRECISION_TAG!r}")
            model = encoder_ref(v.model or self.default_model, v.precision)
            try:
                embedder, _ = self.encoder(model)
            except FailedPrecondition as exc:
                raise NotFound(f"{where}.model", exc.message) from None
            kind = v.index_kind or self.default_index.kind
            params = dict(v.index_params) if v.index_kind else dict(self.default_index.params)
            specs.append(VariantSpec(name=v.name, dim=int(embedder.dim),
                                     index=IndexSpec(kind=kind, params=params), encoder=model))
        default = default_variant or variants[0].name
        if default not in seen:
            raise NotFound("default_variant", f"{default!r} is not one of the variants {sorted(seen)}")
        with self._admin_lock:
            self.indexer.create_collection(name, specs, default_variant=default)
            self.routing.set_weights(name, {v.name: v.weight for v in variants})
            self.refresh()
        return self._collections[name]

    def delete_collection(self, name: str) -> None:
        info = self.collection(name, "name") if name else None
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
        names = ([self.collection(collection, "collection").name] if collection
                 else [c.name for c in self.list_collections()])
        t0 = time.monotonic()
        with self._admin_lock:
            self.indexer.rebuild(names[0] if collection else None)  # all at once: one snapshot pass
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

    def _check_search(self, p: SearchParams) -> SearchParams:
        k = p.k or DEFAULT_K
        if k < 0 or k > self.limits.max_k:
            raise InvalidArgument("k", f"must be between 1 and {self.limits.max_k} "
                                  f"(limits.max_k), got {p.k}")
        if p.mode not in MODES:
            raise InvalidArgument("mode", f"unknown mode {p.mode!r}; expected NEAREST or FARTHEST")
        if p.offset < 0 or p.offset > self.limits.max_offset:
            raise InvalidArgument("offset", f"must be between 0 and {self.limits.max_offset} "
                                  f"(limits.max_offset), got {p.offset}")
        if len(p.filter) > self.limits.max_filter_keys:
            raise InvalidArgument("filter", f"has {len(p.filter)} keys; the limit is "
                                  f"{self.limits.max_filter_keys} (limits.max_filter_keys)")
        for key in p.filter:
            if not key:
                raise InvalidArgument("filter", "has an empty key")
        if p.min_score is not None and not np.isfinite(p.min_score):
            raise InvalidArgument("min_score", f"must be a finite number, got {p.min_score}")
        p.k = k
        return p

    # ------------------------------------------------------------ documents

    def _encode(self, model: str, texts: list[str], alive: Alive, timeout: float | None) -> np.ndarray:
        _, batcher = self.encoder(model)
        if not alive():
            raise DeadlineExceeded("", "client gave up before encoding")
        return batcher.encode(texts, alive=alive, timeout=timeout)

    def upsert(self, collection: str, docs: Sequence, alive: Alive = _always,
               timeout: float | None = None) -> int:
        """docs: ranksearch.indexer.Document-like (id, text, metadata). Durable on return."""
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
        texts = [d.text for d in docs]
        by_model: dict[str, np.ndarray] = {}
        vectors = {}
        for spec in info.variants:  # one encoder pass per distinct model
            if spec.encoder not in by_model:
                by_model[spec.encoder] = self._encode(spec.encoder, texts, alive, timeout)
            vectors[spec.name] = by_model[spec.encoder]  # (n, dim)
        if not alive():
            raise DeadlineExceeded("", "client gave up before the write; nothing was written")
        docs = [Document(id=d.id, text=d.text, metadata=dict(d.metadata)) for d in docs]
        return int(self.indexer.upsert(info.name, docs, vectors))

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
        if requested:
            return self.variant(info, requested)
        name = self.routing.choose(info.name, info.default_variant, routing_key)
        return self.variant(info, name)

    def search(self, collection: str, queries: Sequence[str], params: SearchParams,
               alive: Alive = _always, timeout: float | None = None,
               query_field: str = "queries") -> tuple[str, list[list]]:
        """Returns (variant name, hits per query)."""
        started = time.perf_counter()
        info = self.collection(collection)
        params = self._check_search(params)
        self._check_count(len(queries), query_field)
        for i, q in enumerate(queries):
            self._check_text(q, query_field if query_field == "query" else f"{query_field}[{i}]")
        spec = self.choose_variant(info, params.variant, params.routing_key)
        vectors = self._encode(spec.encoder, list(queries), alive, timeout)  # (q, dim)
        if not alive():
            raise DeadlineExceeded("", "client gave up before the index search")
        hits = self.indexer.search(info.name, spec.name, vectors, params.k, mode=params.mode,
                                   filter=params.filter or None, offset=params.offset,
                                   min_score=params.min_score, include_text=params.include_text)
        window = self._latency.get((info.name, spec.name))
        if window is None:  # first search of this variant (setdefault keeps one under races)
            window = self._latency.setdefault((info.name, spec.name), LatencyWindow())
        window.add((time.perf_counter() - started) * 1000.0)
        return spec.name, hits

    def embed(self, collection: str, variant: str, texts: Sequence[str],
              alive: Alive = _always, timeout: float | None = None) -> tuple[str, np.ndarray]:
        info = self.collection(collection)
        spec = self.variant(info, variant or info.default_variant)
        self._check_count(len(texts), "texts")
        for i, t in enumerate(texts):
            self._check_text(t, f"texts[{i}]")
        return spec.name, self._encode(spec.encoder, list(texts), alive, timeout)

    # ------------------------------------------------------------ stats

    def stats(self, collection: str = "") -> list[dict]:
        self.refresh()
        infos = [self.collection(collection)] if collection else \
            [self._collections[n] for n in sorted(self._collections)]
        index_stats = _index_stats(self.indexer.stats())
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
            out.append({"name": info.name, "documents": info.documents, "variants": variants})
        return out


def _index_stats(stats: dict) -> dict[tuple[str, str], dict]:
    """(collection, variant) -> its entry of Indexer.stats()."""
    return {(cname, vname): vstats
            for cname, cstats in stats["collections"].items()
            for vname, vstats in cstats["variants"].items()}
