"""Proto <-> plain values for search: SearchRequest / BatchSearchRequest messages to
the one SearchRequest value (ranksearch.indexer.request), and the lexical and hybrid
settings of collections both ways. Conversion only: the rules live in the dataclasses,
which raise InvalidArgument naming the field when a value is bad."""
from __future__ import annotations

from ranksearch.errors import InvalidArgument
from ranksearch.indexer.lexical import LexicalConfig
from ranksearch.indexer.request import DEFAULT_K, HybridParams, SearchDefaults, SearchRequest
from ranksearch.proto.v1 import search_pb2 as pb

MODES = {pb.NEAREST: "nearest", pb.FARTHEST: "farthest", pb.LEXICAL: "lexical", pb.HYBRID: "hybrid"}
MODE_ENUMS = {name: value for value, name in MODES.items()}
_FUSIONS = {pb.HYBRID_FUSION_RRF: "rrf", pb.HYBRID_FUSION_WEIGHTED: "weighted"}
_NORMS = {pb.HYBRID_NORMALIZATION_MIN_MAX: "minmax", pb.HYBRID_NORMALIZATION_Z_SCORE: "zscore"}


def _mode(value: int, field: str) -> str:
    if value not in MODES:
        raise InvalidArgument(field, f"unknown mode {value}; expected NEAREST (0), FARTHEST (1), "
                              "LEXICAL (2) or HYBRID (3)")
    return MODES[value]


def search_request(msg) -> SearchRequest:
    """A SearchRequest or BatchSearchRequest message -> SearchRequest. NEAREST without
    explicit_mode is left unset (mode None: the collection's default)."""
    mode = _mode(msg.mode, "mode")
    if mode == "nearest" and not msg.explicit_mode:
        mode = None
    return SearchRequest(
        mode=mode, k=msg.k or DEFAULT_K, offset=msg.offset,
        min_score=msg.min_score if msg.HasField("min_score") else None,
        filter=dict(msg.filter), variant=msg.variant, include_text=msg.include_text,
        explain=msg.explain, hybrid=hybrid_params(msg.hybrid, "hybrid") if msg.HasField("hybrid") else None)


def hybrid_params(msg: pb.HybridParams, field: str) -> HybridParams:
    for name, table in (("fusion", _FUSIONS), ("normalization", _NORMS)):
        value = getattr(msg, name)
        if value and value not in table:
            raise InvalidArgument(f"{field}.{name}", f"unknown value {value}")
    opt = lambda name: getattr(msg, name) if msg.HasField(name) else None  # noqa: E731
    return HybridParams(
        fusion=_FUSIONS.get(msg.fusion), rrf_k=opt("rrf_k"), dense_weight=opt("dense_weight"),
        lexical_weight=opt("lexical_weight"), normalization=_NORMS.get(msg.normalization),
        dense_candidates=msg.dense_candidates or None, lexical_candidates=msg.lexical_candidates or None)


def hybrid_pb(params: HybridParams) -> pb.HybridParams:
    fusions = {v: k for k, v in _FUSIONS.items()}
    norms = {v: k for k, v in _NORMS.items()}
    return pb.HybridParams(fusion=fusions.get(params.fusion, 0), rrf_k=params.rrf_k,
                           dense_weight=params.dense_weight, lexical_weight=params.lexical_weight,
                           normalization=norms.get(params.normalization, 0),
                           dense_candidates=params.dense_candidates or 0,
                           lexical_candidates=params.lexical_candidates or 0)


def lexical_config(msg: pb.LexicalConfig) -> LexicalConfig:
    if msg.analyzer and msg.language:
        raise InvalidArgument("lexical.language", "set analyzer or language, not both")
    kw = {name: getattr(msg, name) for name in ("k1", "b", "title_field", "title_weight", "text_weight")
          if msg.HasField(name)}
    if msg.language:
        return LexicalConfig.for_language(msg.language, **kw)
    return LexicalConfig(analyzer=msg.analyzer or LexicalConfig.analyzer, **kw)


def lexical_pb(cfg: LexicalConfig) -> pb.LexicalConfig:
    return pb.LexicalConfig(analyzer=cfg.analyzer, k1=cfg.k1, b=cfg.b, title_field=cfg.title_field,
                            title_weight=cfg.title_weight, text_weight=cfg.text_weight)


def collection_settings(msg: pb.CreateCollectionRequest) -> tuple[LexicalConfig, SearchDefaults]:
    """The lexical config and search defaults a CreateCollectionRequest asks for."""
    lexical = lexical_config(msg.lexical)
    mode = _mode(msg.default_mode, "default_mode")
    hybrid = hybrid_params(msg.default_hybrid, "default_hybrid") if msg.HasField("default_hybrid") \
        else HybridParams()
    return lexical, SearchDefaults(mode=mode, hybrid=hybrid)


def explain_pb(explain) -> pb.HybridExplain | None:
    if explain is None:
        return None
    return pb.HybridExplain(dense_rank=explain.dense_rank, dense_score=explain.dense_score,
                            lexical_rank=explain.lexical_rank, lexical_score=explain.lexical_score)
