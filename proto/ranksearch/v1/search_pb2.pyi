from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NEAREST: _ClassVar[SearchMode]
    FARTHEST: _ClassVar[SearchMode]
    LEXICAL: _ClassVar[SearchMode]
    HYBRID: _ClassVar[SearchMode]

class HybridFusion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HYBRID_FUSION_UNSPECIFIED: _ClassVar[HybridFusion]
    HYBRID_FUSION_RRF: _ClassVar[HybridFusion]
    HYBRID_FUSION_WEIGHTED: _ClassVar[HybridFusion]

class HybridNormalization(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HYBRID_NORMALIZATION_UNSPECIFIED: _ClassVar[HybridNormalization]
    HYBRID_NORMALIZATION_MIN_MAX: _ClassVar[HybridNormalization]
    HYBRID_NORMALIZATION_Z_SCORE: _ClassVar[HybridNormalization]

class EmbedRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EMBED_ROLE_UNSPECIFIED: _ClassVar[EmbedRole]
    EMBED_ROLE_QUERY: _ClassVar[EmbedRole]
    EMBED_ROLE_DOCUMENT: _ClassVar[EmbedRole]
NEAREST: SearchMode
FARTHEST: SearchMode
LEXICAL: SearchMode
HYBRID: SearchMode
HYBRID_FUSION_UNSPECIFIED: HybridFusion
HYBRID_FUSION_RRF: HybridFusion
HYBRID_FUSION_WEIGHTED: HybridFusion
HYBRID_NORMALIZATION_UNSPECIFIED: HybridNormalization
HYBRID_NORMALIZATION_MIN_MAX: HybridNormalization
HYBRID_NORMALIZATION_Z_SCORE: HybridNormalization
EMBED_ROLE_UNSPECIFIED: EmbedRole
EMBED_ROLE_QUERY: EmbedRole
EMBED_ROLE_DOCUMENT: EmbedRole

class HybridParams(_message.Message):
    __slots__ = ("fusion", "rrf_k", "dense_weight", "lexical_weight", "normalization", "dense_candidates", "lexical_candidates")
    FUSION_FIELD_NUMBER: _ClassVar[int]
    RRF_K_FIELD_NUMBER: _ClassVar[int]
    DENSE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    NORMALIZATION_FIELD_NUMBER: _ClassVar[int]
    DENSE_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    fusion: HybridFusion
    rrf_k: float
    dense_weight: float
    lexical_weight: float
    normalization: HybridNormalization
    dense_candidates: int
    lexical_candidates: int
    def __init__(self, fusion: _Optional[_Union[HybridFusion, str]] = ..., rrf_k: _Optional[float] = ..., dense_weight: _Optional[float] = ..., lexical_weight: _Optional[float] = ..., normalization: _Optional[_Union[HybridNormalization, str]] = ..., dense_candidates: _Optional[int] = ..., lexical_candidates: _Optional[int] = ...) -> None: ...

class HybridExplain(_message.Message):
    __slots__ = ("dense_rank", "dense_score", "lexical_rank", "lexical_score")
    DENSE_RANK_FIELD_NUMBER: _ClassVar[int]
    DENSE_SCORE_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_RANK_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    dense_rank: int
    dense_score: float
    lexical_rank: int
    lexical_score: float
    def __init__(self, dense_rank: _Optional[int] = ..., dense_score: _Optional[float] = ..., lexical_rank: _Optional[int] = ..., lexical_score: _Optional[float] = ...) -> None: ...

class LexicalConfig(_message.Message):
    __slots__ = ("analyzer", "language", "k1", "b", "title_field", "title_weight", "text_weight")
    ANALYZER_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    K1_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_FIELD_NUMBER: _ClassVar[int]
    TITLE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    TEXT_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    analyzer: str
    language: str
    k1: float
    b: float
    title_field: str
    title_weight: float
    text_weight: float
    def __init__(self, analyzer: _Optional[str] = ..., language: _Optional[str] = ..., k1: _Optional[float] = ..., b: _Optional[float] = ..., title_field: _Optional[str] = ..., title_weight: _Optional[float] = ..., text_weight: _Optional[float] = ...) -> None: ...

class LexicalStats(_message.Message):
    __slots__ = ("analyzer", "documents", "ready", "state")
    ANALYZER_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    analyzer: str
    documents: int
    ready: bool
    state: str
    def __init__(self, analyzer: _Optional[str] = ..., documents: _Optional[int] = ..., ready: _Optional[bool] = ..., state: _Optional[str] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("id", "text", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class IndexConfig(_message.Message):
    __slots__ = ("kind", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    params: _containers.ScalarMap[str, int]
    def __init__(self, kind: _Optional[str] = ..., params: _Optional[_Mapping[str, int]] = ...) -> None: ...

class VariantConfig(_message.Message):
    __slots__ = ("name", "model", "index", "weight", "precision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    model: str
    index: IndexConfig
    weight: float
    precision: str
    def __init__(self, name: _Optional[str] = ..., model: _Optional[str] = ..., index: _Optional[_Union[IndexConfig, _Mapping]] = ..., weight: _Optional[float] = ..., precision: _Optional[str] = ...) -> None: ...

class CreateCollectionRequest(_message.Message):
    __slots__ = ("name", "variants", "default_variant", "lexical", "default_mode", "default_hybrid")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VARIANT_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_HYBRID_FIELD_NUMBER: _ClassVar[int]
    name: str
    variants: _containers.RepeatedCompositeFieldContainer[VariantConfig]
    default_variant: str
    lexical: LexicalConfig
    default_mode: SearchMode
    default_hybrid: HybridParams
    def __init__(self, name: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[VariantConfig, _Mapping]]] = ..., default_variant: _Optional[str] = ..., lexical: _Optional[_Union[LexicalConfig, _Mapping]] = ..., default_mode: _Optional[_Union[SearchMode, str]] = ..., default_hybrid: _Optional[_Union[HybridParams, _Mapping]] = ...) -> None: ...

class VariantInfo(_message.Message):
    __slots__ = ("name", "model", "index", "dim", "weight", "is_default", "precision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    model: str
    index: IndexConfig
    dim: int
    weight: float
    is_default: bool
    precision: str
    def __init__(self, name: _Optional[str] = ..., model: _Optional[str] = ..., index: _Optional[_Union[IndexConfig, _Mapping]] = ..., dim: _Optional[int] = ..., weight: _Optional[float] = ..., is_default: _Optional[bool] = ..., precision: _Optional[str] = ...) -> None: ...

class CollectionInfo(_message.Message):
    __slots__ = ("name", "variants", "default_variant", "documents", "unavailable_reason", "lexical", "default_mode", "default_hybrid")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VARIANT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_HYBRID_FIELD_NUMBER: _ClassVar[int]
    name: str
    variants: _containers.RepeatedCompositeFieldContainer[VariantInfo]
    default_variant: str
    documents: int
    unavailable_reason: str
    lexical: LexicalConfig
    default_mode: SearchMode
    default_hybrid: HybridParams
    def __init__(self, name: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[VariantInfo, _Mapping]]] = ..., default_variant: _Optional[str] = ..., documents: _Optional[int] = ..., unavailable_reason: _Optional[str] = ..., lexical: _Optional[_Union[LexicalConfig, _Mapping]] = ..., default_mode: _Optional[_Union[SearchMode, str]] = ..., default_hybrid: _Optional[_Union[HybridParams, _Mapping]] = ...) -> None: ...

class CreateCollectionResponse(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: CollectionInfo
    def __init__(self, collection: _Optional[_Union[CollectionInfo, _Mapping]] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections", "default_collection")
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[CollectionInfo]
    default_collection: str
    def __init__(self, collections: _Optional[_Iterable[_Union[CollectionInfo, _Mapping]]] = ..., default_collection: _Optional[str] = ...) -> None: ...

class DeleteCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteCollectionResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class UpsertRequest(_message.Message):
    __slots__ = ("collection", "documents")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    def __init__(self, collection: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ...) -> None: ...

class UpsertResponse(_message.Message):
    __slots__ = ("count", "unchanged")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    count: int
    unchanged: int
    def __init__(self, count: _Optional[int] = ..., unchanged: _Optional[int] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("collection", "ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("collection", "ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("documents",)
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    def __init__(self, documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("collection", "query", "k", "mode", "variant", "filter", "include_text", "min_score", "offset", "routing_key", "explicit_mode", "hybrid", "explain", "interleave")
    class FilterEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TEXT_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    ROUTING_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPLICIT_MODE_FIELD_NUMBER: _ClassVar[int]
    HYBRID_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    INTERLEAVE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    query: str
    k: int
    mode: SearchMode
    variant: str
    filter: _containers.ScalarMap[str, str]
    include_text: bool
    min_score: float
    offset: int
    routing_key: str
    explicit_mode: bool
    hybrid: HybridParams
    explain: bool
    interleave: bool
    def __init__(self, collection: _Optional[str] = ..., query: _Optional[str] = ..., k: _Optional[int] = ..., mode: _Optional[_Union[SearchMode, str]] = ..., variant: _Optional[str] = ..., filter: _Optional[_Mapping[str, str]] = ..., include_text: _Optional[bool] = ..., min_score: _Optional[float] = ..., offset: _Optional[int] = ..., routing_key: _Optional[str] = ..., explicit_mode: _Optional[bool] = ..., hybrid: _Optional[_Union[HybridParams, _Mapping]] = ..., explain: _Optional[bool] = ..., interleave: _Optional[bool] = ...) -> None: ...

class Hit(_message.Message):
    __slots__ = ("id", "score", "text", "metadata", "explain", "team")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    id: str
    score: float
    text: str
    metadata: _containers.ScalarMap[str, str]
    explain: HybridExplain
    team: str
    def __init__(self, id: _Optional[str] = ..., score: _Optional[float] = ..., text: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., explain: _Optional[_Union[HybridExplain, _Mapping]] = ..., team: _Optional[str] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("hits", "variant", "mode", "query_id")
    HITS_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    variant: str
    mode: SearchMode
    query_id: str
    def __init__(self, hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ..., variant: _Optional[str] = ..., mode: _Optional[_Union[SearchMode, str]] = ..., query_id: _Optional[str] = ...) -> None: ...

class BatchSearchRequest(_message.Message):
    __slots__ = ("collection", "queries", "k", "mode", "variant", "filter", "include_text", "min_score", "offset", "routing_key", "explicit_mode", "hybrid", "explain")
    class FilterEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TEXT_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    ROUTING_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPLICIT_MODE_FIELD_NUMBER: _ClassVar[int]
    HYBRID_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    collection: str
    queries: _containers.RepeatedScalarFieldContainer[str]
    k: int
    mode: SearchMode
    variant: str
    filter: _containers.ScalarMap[str, str]
    include_text: bool
    min_score: float
    offset: int
    routing_key: str
    explicit_mode: bool
    hybrid: HybridParams
    explain: bool
    def __init__(self, collection: _Optional[str] = ..., queries: _Optional[_Iterable[str]] = ..., k: _Optional[int] = ..., mode: _Optional[_Union[SearchMode, str]] = ..., variant: _Optional[str] = ..., filter: _Optional[_Mapping[str, str]] = ..., include_text: _Optional[bool] = ..., min_score: _Optional[float] = ..., offset: _Optional[int] = ..., routing_key: _Optional[str] = ..., explicit_mode: _Optional[bool] = ..., hybrid: _Optional[_Union[HybridParams, _Mapping]] = ..., explain: _Optional[bool] = ...) -> None: ...

class SearchResult(_message.Message):
    __slots__ = ("hits",)
    HITS_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    def __init__(self, hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ...) -> None: ...

class BatchSearchResponse(_message.Message):
    __slots__ = ("results", "variant", "mode")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SearchResult]
    variant: str
    mode: SearchMode
    def __init__(self, results: _Optional[_Iterable[_Union[SearchResult, _Mapping]]] = ..., variant: _Optional[str] = ..., mode: _Optional[_Union[SearchMode, str]] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("collection", "variant", "texts", "role")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    variant: str
    texts: _containers.RepeatedScalarFieldContainer[str]
    role: EmbedRole
    def __init__(self, collection: _Optional[str] = ..., variant: _Optional[str] = ..., texts: _Optional[_Iterable[str]] = ..., role: _Optional[_Union[EmbedRole, str]] = ...) -> None: ...

class Vector(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("vectors", "variant", "prompt")
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    vectors: _containers.RepeatedCompositeFieldContainer[Vector]
    variant: str
    prompt: str
    def __init__(self, vectors: _Optional[_Iterable[_Union[Vector, _Mapping]]] = ..., variant: _Optional[str] = ..., prompt: _Optional[str] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class VariantStats(_message.Message):
    __slots__ = ("name", "index_kind", "index_size", "dim", "model", "rank", "parameters", "requests", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "is_default", "weight", "index_state", "rebuilding", "precision", "effective_precision", "engine", "build_state", "build_done", "build_total", "not_ready")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INDEX_KIND_FIELD_NUMBER: _ClassVar[int]
    INDEX_SIZE_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P99_MS_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    INDEX_STATE_FIELD_NUMBER: _ClassVar[int]
    REBUILDING_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_PRECISION_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    BUILD_STATE_FIELD_NUMBER: _ClassVar[int]
    BUILD_DONE_FIELD_NUMBER: _ClassVar[int]
    BUILD_TOTAL_FIELD_NUMBER: _ClassVar[int]
    NOT_READY_FIELD_NUMBER: _ClassVar[int]
    name: str
    index_kind: str
    index_size: int
    dim: int
    model: str
    rank: _containers.RepeatedScalarFieldContainer[int]
    parameters: int
    requests: int
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    is_default: bool
    weight: float
    index_state: str
    rebuilding: str
    precision: str
    effective_precision: str
    engine: str
    build_state: str
    build_done: int
    build_total: int
    not_ready: str
    def __init__(self, name: _Optional[str] = ..., index_kind: _Optional[str] = ..., index_size: _Optional[int] = ..., dim: _Optional[int] = ..., model: _Optional[str] = ..., rank: _Optional[_Iterable[int]] = ..., parameters: _Optional[int] = ..., requests: _Optional[int] = ..., latency_p50_ms: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ..., latency_p99_ms: _Optional[float] = ..., is_default: _Optional[bool] = ..., weight: _Optional[float] = ..., index_state: _Optional[str] = ..., rebuilding: _Optional[str] = ..., precision: _Optional[str] = ..., effective_precision: _Optional[str] = ..., engine: _Optional[str] = ..., build_state: _Optional[str] = ..., build_done: _Optional[int] = ..., build_total: _Optional[int] = ..., not_ready: _Optional[str] = ...) -> None: ...

class CollectionStats(_message.Message):
    __slots__ = ("name", "documents", "variants", "unavailable_reason", "lexical", "experiments_json", "shadow_done", "shadow_dropped", "shadow_failed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENTS_JSON_FIELD_NUMBER: _ClassVar[int]
    SHADOW_DONE_FIELD_NUMBER: _ClassVar[int]
    SHADOW_DROPPED_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FAILED_FIELD_NUMBER: _ClassVar[int]
    name: str
    documents: int
    variants: _containers.RepeatedCompositeFieldContainer[VariantStats]
    unavailable_reason: str
    lexical: LexicalStats
    experiments_json: str
    shadow_done: int
    shadow_dropped: int
    shadow_failed: int
    def __init__(self, name: _Optional[str] = ..., documents: _Optional[int] = ..., variants: _Optional[_Iterable[_Union[VariantStats, _Mapping]]] = ..., unavailable_reason: _Optional[str] = ..., lexical: _Optional[_Union[LexicalStats, _Mapping]] = ..., experiments_json: _Optional[str] = ..., shadow_done: _Optional[int] = ..., shadow_dropped: _Optional[int] = ..., shadow_failed: _Optional[int] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("collections", "requests")
    class RequestsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[CollectionStats]
    requests: _containers.ScalarMap[str, int]
    def __init__(self, collections: _Optional[_Iterable[_Union[CollectionStats, _Mapping]]] = ..., requests: _Optional[_Mapping[str, int]] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("ok", "problems", "report_json")
    OK_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    problems: _containers.RepeatedScalarFieldContainer[str]
    report_json: str
    def __init__(self, ok: _Optional[bool] = ..., problems: _Optional[_Iterable[str]] = ..., report_json: _Optional[str] = ...) -> None: ...

class RebuildRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class RebuildResponse(_message.Message):
    __slots__ = ("collections", "seconds", "ok", "problems")
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedScalarFieldContainer[str]
    seconds: float
    ok: bool
    problems: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collections: _Optional[_Iterable[str]] = ..., seconds: _Optional[float] = ..., ok: _Optional[bool] = ..., problems: _Optional[_Iterable[str]] = ...) -> None: ...

class AddVariantRequest(_message.Message):
    __slots__ = ("collection", "variant")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    variant: VariantConfig
    def __init__(self, collection: _Optional[str] = ..., variant: _Optional[_Union[VariantConfig, _Mapping]] = ...) -> None: ...

class AddVariantResponse(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: CollectionInfo
    def __init__(self, collection: _Optional[_Union[CollectionInfo, _Mapping]] = ...) -> None: ...

class RemoveVariantRequest(_message.Message):
    __slots__ = ("collection", "variant")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    variant: str
    def __init__(self, collection: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class RemoveVariantResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: bool
    def __init__(self, removed: _Optional[bool] = ...) -> None: ...

class SetTrafficRequest(_message.Message):
    __slots__ = ("collection", "weights")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    weights: _containers.ScalarMap[str, float]
    def __init__(self, collection: _Optional[str] = ..., weights: _Optional[_Mapping[str, float]] = ...) -> None: ...

class SetTrafficResponse(_message.Message):
    __slots__ = ("weights",)
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    weights: _containers.ScalarMap[str, float]
    def __init__(self, weights: _Optional[_Mapping[str, float]] = ...) -> None: ...

class SetShadowRequest(_message.Message):
    __slots__ = ("collection", "variant", "fraction")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    variant: str
    fraction: float
    def __init__(self, collection: _Optional[str] = ..., variant: _Optional[str] = ..., fraction: _Optional[float] = ...) -> None: ...

class SetShadowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetInterleaveRequest(_message.Message):
    __slots__ = ("collection", "variant_a", "variant_b", "fraction")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_A_FIELD_NUMBER: _ClassVar[int]
    VARIANT_B_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    variant_a: str
    variant_b: str
    fraction: float
    def __init__(self, collection: _Optional[str] = ..., variant_a: _Optional[str] = ..., variant_b: _Optional[str] = ..., fraction: _Optional[float] = ...) -> None: ...

class SetInterleaveResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PromoteVariantRequest(_message.Message):
    __slots__ = ("collection", "variant")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    variant: str
    def __init__(self, collection: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class PromoteVariantResponse(_message.Message):
    __slots__ = ("previous",)
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    previous: str
    def __init__(self, previous: _Optional[str] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("query_id", "clicked_ids", "dwell_ms")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    CLICKED_IDS_FIELD_NUMBER: _ClassVar[int]
    DWELL_MS_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    clicked_ids: _containers.RepeatedScalarFieldContainer[str]
    dwell_ms: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, query_id: _Optional[str] = ..., clicked_ids: _Optional[_Iterable[str]] = ..., dwell_ms: _Optional[_Iterable[float]] = ...) -> None: ...

class FeedbackResponse(_message.Message):
    __slots__ = ("recorded",)
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    recorded: int
    def __init__(self, recorded: _Optional[int] = ...) -> None: ...

class ExperimentReportRequest(_message.Message):
    __slots__ = ("collection", "since")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    since: float
    def __init__(self, collection: _Optional[str] = ..., since: _Optional[float] = ...) -> None: ...

class ExperimentReportResponse(_message.Message):
    __slots__ = ("report_json",)
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    report_json: str
    def __init__(self, report_json: _Optional[str] = ...) -> None: ...
