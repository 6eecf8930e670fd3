"""Plain value types of the indexer's public API."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """A client document. `version` is set by the store (1 on first write, +1 on each
    replace); it is ignored on input."""

    id: str
    text: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    version: int = 0


@dataclass(frozen=True)
class IndexSpec:
    """How one variant's vectors are indexed.

    kind: "flat" (exact, default) | "hnsw" | "ivf" | any FAISS factory string
    (built with the inner-product metric). params: build knobs (``M``,
    ``efConstruction``, ``nlist``, ``train_min``) and default search knobs
    (``efSearch``, ``nprobe``), which a search call may override.
    """

    kind: str = "flat"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VariantSpec:
    """One encoder plus one index configuration inside a collection.

    `encoder` is opaque here (e.g. a model folder): stored, never interpreted."""

    name: str
    dim: int
    index: IndexSpec = field(default_factory=IndexSpec)
    encoder: str = ""


@dataclass(frozen=True, slots=True)
class Explain:
    """Where a hit stood in each retriever (``explain=True``): 1-based rank and score
    among that retriever's candidates; rank 0 (score 0.0) = not among them."""

    dense_rank: int = 0
    dense_score: float = 0.0
    lexical_rank: int = 0
    lexical_score: float = 0.0


@dataclass(slots=True)
class Hit:
    """One search result. `score` is what the mode ranks by: the true cosine
    similarity of query and document (nearest, farthest), BM25 (lexical), the fused
    score (hybrid). `explain` is set when the request asked for it."""

    id: str
    score: float
    text: str
    metadata: dict[str, str]
    explain: Explain | None = None


@dataclass(frozen=True)
class CollectionInfo:
    """`lexical`: the lexical index's config (LexicalConfig); `defaults`: the mode and
    hybrid parameters of requests that set none (SearchDefaults)."""

    name: str
    variants: list[VariantSpec]
    default_variant: str
    documents: int
    lexical: Any = None
    defaults: Any = None
    #: why the collection is out of service ('' = it is available); see Indexer._state
    unavailable: str = ""
