"""The search request: one frozen value that travels from the gRPC handler (or the
CLI, or a direct caller) through the service core to the indexer's search.

One home for the search rules. A ``SearchRequest`` (and its ``HybridParams``) checks
its own fields when it is constructed: mode, k, offset, min_score, filter, index
knobs and the hybrid parameters. A value that exists is valid in itself; what
depends on the server's configuration (``max_k``, ``max_offset``,
``max_filter_keys``) is checked by :meth:`SearchRequest.check_limits`, called once
where the request enters the core (the indexer calls it again for direct callers,
with its own configured bounds, as a defensive bound: the same code, not a copy).

Modes: ``nearest`` / ``farthest`` (dense, cosine), ``lexical`` (BM25 over the
collection's lexical index), ``hybrid`` (both retrievers, fused). ``mode=None``
means the collection's default mode, ``hybrid=None`` the collection's default
hybrid parameters; :meth:`SearchRequest.resolved` fills both in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

from ranksearch.errors import InvalidArgument

MODES = ("nearest", "farthest", "lexical", "hybrid")
#: modes that need a query vector / the query text
DENSE_MODES = ("nearest", "farthest", "hybrid")
LEXICAL_MODES = ("lexical", "hybrid")
FUSIONS = ("rrf", "weighted")
NORMALIZATIONS = ("minmax", "zscore")
DEFAULT_K = 10
#: candidate depth per retriever when a hybrid request sets none: max(k + offset, this)
DEFAULT_CANDIDATES = 100


def _int(value: Any, name: str, low: int, high: int | None = None) -> int:
    """An integer >= low (and <= high when given; the server's limits are checked
    by SearchRequest.check_limits)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(name, f"must be an integer, got {value!r}")
    if high is None and value < low:
        raise InvalidArgument(name, f"must be at least {low}, got {value}")
    if high is not None and not low <= value <= high:
        raise InvalidArgument(name, f"must be between {low} and {high}, got {value}")
    return value


def check_number(value: Any, name: str, low: float, low_open: bool = False, high: float = math.inf) -> float:
    """A finite number >= low (> low when low_open) and <= high."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(name, f"must be a finite number, got {value!r}")
    if value < low or (low_open and value == low):
        raise InvalidArgument(name, f"must be {'>' if low_open else '>='} {low}, got {value}")
    if value > high:
        raise InvalidArgument(name, f"must be <= {high}, got {value}")
    return float(value)


@dataclass(frozen=True)
class HybridParams:
    """How a HYBRID search fuses its dense and its lexical run. A field left None
    takes the collection's default (SearchDefaults.hybrid, itself completed from
    BUILTIN_HYBRID).

    fusion ``rrf``: score = sum over retrievers of weight / (rrf_k + rank), rank
    1-based within that retriever's candidates (Cormack et al. 2009). fusion
    ``weighted``: each run's scores are normalised (``minmax`` to [0, 1], or
    ``zscore``: (s - mean) / std) and summed with the weights; a document absent from
    a run gets nothing from it. Candidates: how many hits each retriever
    contributes; 0 = max(k + offset, DEFAULT_CANDIDATES).
    """

    fusion: str | None = None
    rrf_k: float | None = None
    dense_weight: float | None = None
    lexical_weight: float | None = None
    normalization: str | None = None
    dense_candidates: int | None = None
    lexical_candidates: int | None = None

    def __post_init__(self) -> None:
        if self.fusion is not None and self.fusion not in FUSIONS:
            raise InvalidArgument("hybrid.fusion", f"must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        if self.normalization is not None and self.normalization not in NORMALIZATIONS:
            raise InvalidArgument("hybrid.normalization",
                                  f"must be one of {', '.join(NORMALIZATIONS)}, got {self.normalization!r}")
        if self.rrf_k is not None:
            check_number(self.rrf_k, "hybrid.rrf_k", 0.0, low_open=True)
        for name in ("dense_weight", "lexical_weight"):
            if getattr(self, name) is not None:
                check_number(getattr(self, name), f"hybrid.{name}", 0.0)
        if self.dense_weight == 0 and self.lexical_weight == 0:
            raise InvalidArgument("hybrid.dense_weight", "and hybrid.lexical_weight are both 0")
        for name in ("dense_candidates", "lexical_candidates"):
            if getattr(self, name) is not None:
                _int(getattr(self, name), f"hybrid.{name}", 0)

    def over(self, base: "HybridParams") -> "HybridParams":
        """These parameters, with the ones left None taken from `base`."""
        return HybridParams(**{f: getattr(base, f) if getattr(self, f) is None else getattr(self, f)
                               for f in self.__dataclass_fields__})

    def depths(self, window: int) -> tuple[int, int]:
        """(dense, lexical) candidate depth for a request needing ``window`` = k + offset hits."""
        default = max(window, DEFAULT_CANDIDATES)
        return self.dense_candidates or default, self.lexical_candidates or default

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__ if getattr(self, f) is not None}


#: what a collection that sets no hybrid default fuses with
BUILTIN_HYBRID = HybridParams(fusion="rrf", rrf_k=60.0, dense_weight=1.0, lexical_weight=1.0,
                              normalization="minmax", dense_candidates=0, lexical_candidates=0)


@dataclass(frozen=True)
class SearchDefaults:
    """A collection's defaults for requests that leave mode / hybrid unset."""

    mode: str = "nearest"
    hybrid: HybridParams = field(default_factory=HybridParams)

    def __post_init__(self) -> None:
        if self.mode not in MODES or self.mode == "farthest":
            raise InvalidArgument("default_mode", f"must be one of nearest, lexical, hybrid, got {self.mode!r}")
        if not isinstance(self.hybrid, HybridParams):
            raise InvalidArgument("default_hybrid", f"must be HybridParams, got {type(self.hybrid).__name__}")
        object.__setattr__(self, "hybrid", self.hybrid.over(BUILTIN_HYBRID))


@dataclass(frozen=True)
class SearchRequest:
    """One search, for one or many queries with the same settings.

    k: hits per query (1..max_k). offset: skip that many of the ranking first.
    min_score: a cutoff on the score the mode returns (cosine for nearest/farthest,
    BM25 for lexical, the fused score for hybrid); nearest, lexical and hybrid keep
    score >= min_score, farthest keeps score <= min_score. filter: metadata
    key=value pairs, all must match, applied inside each retriever (before fusion).
    variant: dense variant ('' = the collection's default). include_text: fetch hit
    texts. explain: each hit carries its dense and lexical rank and score. params:
    dense index knobs efSearch (HNSW), nprobe (IVF), exact=True.
    """

    mode: str | None = "nearest"
    k: int = DEFAULT_K
    offset: int = 0
    min_score: float | None = None
    filter: Mapping[str, str] = field(default_factory=dict)
    variant: str | None = ""
    include_text: bool = True
    explain: bool = False
    hybrid: HybridParams | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in MODES:
            raise InvalidArgument("mode", f"must be one of {', '.join(MODES)}, got {self.mode!r}")
        _int(self.k, "k", 1)
        _int(self.offset, "offset", 0)
        if self.min_score is not None:
            object.__setattr__(self, "min_score", check_number(self.min_score, "min_score", -math.inf))
        object.__setattr__(self, "filter", MappingProxyType(_check_filter(self.filter)))
        object.__setattr__(self, "params", MappingProxyType(_check_params(self.params)))
        if self.variant is not None and not isinstance(self.variant, str):
            raise InvalidArgument("variant", f"must be a string, got {type(self.variant).__name__}")
        if self.hybrid is not None and not isinstance(self.hybrid, HybridParams):
            raise InvalidArgument("hybrid", f"must be HybridParams, got {type(self.hybrid).__name__}")
        if self.hybrid is not None and self.mode not in (None, "hybrid"):
            # FARTHEST (or any single retriever) with a lexical part has no meaning
            raise InvalidArgument("hybrid", f"hybrid parameters apply to mode hybrid only, "
                                  f"not to mode {self.mode}")

    @property
    def window(self) -> int:
        """Hits a retriever must rank to serve this page: k + offset."""
        return self.k + self.offset

    @property
    def farthest(self) -> bool:
        return self.mode == "farthest"

    def check_limits(self, max_k: int, max_offset: int, max_filter_keys: int | None = None,
                     where: str = "limits") -> "SearchRequest":
        """The server's configured bounds; messages name the limit to raise."""
        if self.k > max_k:
            raise InvalidArgument("k", f"must be between 1 and {max_k}, got {self.k} ({where}.max_k)")
        if self.offset > max_offset:
            raise InvalidArgument("offset", f"must be between 0 and {max_offset}, got {self.offset} "
                                  f"({where}.max_offset)")
        if max_filter_keys is not None and len(self.filter) > max_filter_keys:
            raise InvalidArgument("filter", f"has {len(self.filter)} keys; the limit is {max_filter_keys} "
                                  f"({where}.max_filter_keys)")
        if self.hybrid is not None:
            cap = max_k + max_offset
            for name in ("dense_candidates", "lexical_candidates"):
                if (getattr(self.hybrid, name) or 0) > cap:
                    raise InvalidArgument(f"hybrid.{name}", f"must be at most {cap} "
                                          f"({where}.max_k + {where}.max_offset), got {getattr(self.hybrid, name)}")
        return self

    def resolved(self, defaults: SearchDefaults) -> "SearchRequest":
        """This request with mode and hybrid taken from the collection's defaults where unset."""
        mode = self.mode or defaults.mode
        hybrid = (self.hybrid or HybridParams()).over(defaults.hybrid) if mode == "hybrid" else None
        if mode == self.mode and hybrid is self.hybrid:
            return self
        return replace(self, mode=mode, hybrid=hybrid)


def _check_filter(flt: Any) -> dict[str, str]:
    if flt is None:
        return {}
    if not isinstance(flt, Mapping):
        raise InvalidArgument("filter", "must be a dict of metadata key -> value")
    for key, value in flt.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgument("filter", f"keys must be non-empty strings, got {key!r}")
        if not isinstance(value, str):
            raise InvalidArgument(f"filter.{key}", f"must be a string, got {type(value).__name__}")
    return dict(flt)


def _check_params(params: Any) -> dict[str, Any]:
    """Index knobs of one call: the ranges live with the index kinds (index_rules)."""
    from ranksearch.indexer.index_rules import check_search_overrides

    return check_search_overrides(params)
