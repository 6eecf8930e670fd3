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


@dataclass(slots=True)
class Hit:
    """One search result. `score` is the true cosine similarity of query and
    document, in nearest and in farthest mode alike."""

    id: str
    score: float
    text: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    variants: list[VariantSpec]
    default_variant: str
    documents: int
    #: why the collection is out of service ('' = it is available); see Indexer._state
    unavailable: str = ""
