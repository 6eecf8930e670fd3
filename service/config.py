"""Typed service configuration, loaded from YAML.

Every section is a dataclass; unknown keys are rejected with the dotted key named
(``ConfigError("limits.max_kk", "unknown key ...")``). Each field documents itself in
``field(metadata={"doc": ...})`` so that a configuration reference can be generated
from the classes (see :func:`describe`). Command-line flags override the file;
secrets may come from the environment (``RANKSEARCH_TOKEN_<NAME>``, see
:func:`apply_env`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ranksearch.encoder.long_text import check_long_text
from ranksearch.encoder.precision import DEVICES, PRECISIONS
from ranksearch.errors import ConfigError, InvalidArgument
from ranksearch.names import RULE, is_valid_name
from ranksearch.typed import reject_unknown

ROLES = ("read", "write", "admin")


ENCODER_THREADS_AUTO = "auto"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a container's cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _f(default: Any = dataclasses.MISSING, doc: str = "", factory: Any = dataclasses.MISSING):
    """A dataclass field with its documentation in metadata['doc']."""
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass
class IndexSection:
    """Index configuration of a variant."""

    kind: str = _f("flat", "'flat' (exact), 'hnsw', 'ivf' or one of the FAISS factory strings "
                   "listed under 'Index kinds' below; anything else is rejected")
    params: dict[str, int] = _f(doc="build/search knobs of that kind (M, efConstruction, efSearch, "
                                "nlist, nprobe, train_min), each within the range listed under "
                                "'Index kinds' below", factory=dict)

    def __post_init__(self):
        from ranksearch.indexer.index_rules import check_index_config

        check_index_config(self.kind, self.params, "")  # the same rule as CreateCollection


@dataclass
class VariantSection:
    """One variant of a configured collection."""

    name: str = _f("default", "variant name, unique within the collection")
    model: str = _f("", "model folder under <data_dir>/models or absolute path; '' = default_model")
    index: IndexSection = _f(doc="index configuration", factory=IndexSection)
    weight: float = _f(0.0, "A/B traffic share for searches that name no variant; all 0 = default only")
    precision: str = _f("fp32", "encoding precision: fp32, bf16 (CPUs with avx512_bf16/amx_bf16; "
                        "elsewhere falls back to fp32 with a warning) or int8 (see docs/PERFORMANCE.md)")

    def __post_init__(self):
        if not is_valid_name(self.name):
            raise ConfigError("name", f"{self.name!r} is not a valid variant name ({RULE})")
        if self.weight < 0:
            raise ConfigError("weight", f"must be >= 0, got {self.weight}")
        if self.precision not in PRECISIONS:
            raise ConfigError("precision", f"must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")


@dataclass
class HybridSection:
    """Hybrid search defaults of a collection (docs/HYBRID.md)."""

    fusion: str = _f("rrf", "'rrf' (reciprocal-rank fusion) or 'weighted' (normalised score sum)")
    rrf_k: float = _f(60.0, "RRF constant k")
    dense_weight: float = _f(1.0, "weight of the dense run")
    lexical_weight: float = _f(1.0, "weight of the lexical run")
    normalization: str = _f("minmax", "score normalisation of 'weighted': 'minmax' or 'zscore'")
    dense_candidates: int = _f(0, "candidates from the dense retriever; 0 = max(k + offset, 100)")
    lexical_candidates: int = _f(0, "candidates from the lexical retriever; 0 = max(k + offset, 100)")

    def __post_init__(self):
        self.params()  # validates, naming the key

    def params(self):
        from ranksearch.indexer.request import HybridParams

        try:
            return HybridParams(**dataclasses.asdict(self))
        except InvalidArgument as exc:  # HybridParams names its fields "hybrid.<key>"
            raise ConfigError(exc.field.removeprefix("hybrid."), exc.message) from None


@dataclass
class CollectionSection:
    """A collection the server creates at start if it does not exist. Its lexical
    settings and search defaults apply when it is created (an existing collection
    keeps its own)."""

    name: str = _f("", "collection name")
    variants: list[VariantSection] = _f(doc="its variants (empty: one from the defaults)", factory=list)
    default_variant: str = _f("", "name of the default variant; '' = the first")
    language: str = _f("auto", "lexical analysis: 'en' (standard), 'ja' (SudachiPy) or 'auto' (per text)")
    analyzer: str = _f("", "analyzer by name ('standard', 'ja', 'auto'); overrides language")
    default_mode: str = _f("nearest", "mode of searches that set none: 'nearest', 'lexical' or 'hybrid'")
    hybrid: HybridSection = _f(doc="hybrid parameters of searches that set none", factory=HybridSection)

    def __post_init__(self):
        if not is_valid_name(self.name):
            raise ConfigError("name", f"{self.name!r} is not a valid collection name ({RULE})")
        self.search_settings()  # validates

    def search_settings(self):
        """(LexicalConfig, SearchDefaults) of this collection."""
        from ranksearch.indexer.lexical import LexicalConfig
        from ranksearch.indexer.request import SearchDefaults

        try:
            lexical = (LexicalConfig(analyzer=self.analyzer) if self.analyzer
                       else LexicalConfig.for_language(self.language))
            return lexical, SearchDefaults(mode=self.default_mode, hybrid=self.hybrid.params())
        except ConfigError:
            raise
        except InvalidArgument as exc:
            key = {"lexical.analyzer": "analyzer", "lexical.language": "language"}.get(exc.field, exc.field)
            raise ConfigError(key, exc.message) from None


@dataclass
class LimitsSection:
    """Request limits; violations answer INVALID_ARGUMENT or RESOURCE_EXHAUSTED."""

    max_message_bytes: int = _f(16 * 1024 * 1024, "largest request message accepted (bytes)")
    max_texts_per_request: int = _f(1024, "documents / queries / texts per request")
    max_text_chars: int = _f(32768, "longest document text or query (characters)")
    max_id_bytes: int = _f(256, "longest document id (UTF-8 bytes)")
    max_k: int = _f(1000, "largest k of a search")
    max_offset: int = _f(10000, "largest pagination offset")
    max_filter_keys: int = _f(16, "most key=value pairs in a search filter")
    max_concurrent_requests: int = _f(64, "RPCs in flight at once; more answer RESOURCE_EXHAUSTED")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if getattr(self, f.name) < 1:
                raise ConfigError(f.name, f"must be >= 1, got {getattr(self, f.name)}")


@dataclass
class BatchingSection:
    """Dynamic micro-batching of concurrent encode requests."""

    enabled: bool = _f(True, "encode concurrent requests together in one forward pass")
    max_wait_ms: float = _f(0.0, "extra wait for company before a forward pass (0: none; requests "
                            "arriving during a pass form the next one)")
    max_batch_texts: int = _f(64, "most texts in one forward pass (larger requests are split)")
    max_batch_tokens: int = _f(8192, "most padded tokens (texts x longest text) in one forward pass")
    min_parallel_tokens: int = _f(128, "with several encoder workers (encoder_threads: auto), a worker "
                                  "starts a pass beside another worker's running pass only once this "
                                  "many tokens wait (~8 short queries; a one-query pass costs ~3x per "
                                  "query); with no pass running a request starts at once. 0: always at once")

    def __post_init__(self):
        if self.max_wait_ms < 0:
            raise ConfigError("max_wait_ms", f"must be >= 0, got {self.max_wait_ms}")
        if self.max_batch_texts < 1:
            raise ConfigError("max_batch_texts", f"must be >= 1, got {self.max_batch_texts}")
        if self.max_batch_tokens < 1:
            raise ConfigError("max_batch_tokens", f"must be >= 1, got {self.max_batch_tokens}")
        if self.min_parallel_tokens < 0:
            raise ConfigError("min_parallel_tokens", f"must be >= 0, got {self.min_parallel_tokens}")


@dataclass
class ExperimentsSection:
    """Live experiments: variant builds, shadow traffic, impression log."""

    build_batch: int = _f(64, "documents encoded per batch when a variant is added to a live collection")
    build_max_p95_ms: float = _f(250.0, "pause a variant build while the collection's search p95 is "
                                 "above this (ms); 0: never pause")
    shadow_queue: int = _f(256, "shadow searches waiting at most; more are dropped and counted")
    shadow_log_rows: int = _f(100_000, "shadow comparisons kept (oldest dropped first)")
    impression_flush_ms: float = _f(50.0, "impressions are committed in groups this often")

    def __post_init__(self):
        if not 1 <= self.build_batch <= 4096:
            raise ConfigError("build_batch", f"must be between 1 and 4096, got {self.build_batch}")
        if not (self.build_max_p95_ms >= 0 and self.build_max_p95_ms < 1e7):
            raise ConfigError("build_max_p95_ms", f"must be >= 0, got {self.build_max_p95_ms}")
        if not 1 <= self.shadow_queue <= 100_000:
            raise ConfigError("shadow_queue", f"must be between 1 and 100000, got {self.shadow_queue}")
        if not 1000 <= self.shadow_log_rows <= 100_000_000:
            raise ConfigError("shadow_log_rows", f"must be between 1000 and 1e8, got {self.shadow_log_rows}")
        if not 1 <= self.impression_flush_ms <= 10_000:
            raise ConfigError("impression_flush_ms", f"must be between 1 and 10000, got "
                              f"{self.impression_flush_ms}")


@dataclass
class TokenSection:
    """A bearer token: only its sha256 is stored."""

    name: str = _f("", "label used in logs and for the RANKSEARCH_TOKEN_<NAME> env override")
    sha256: str = _f("", "hex sha256 of the token (`ranksearch config hash-token`)")
    roles: list[str] = _f(doc="any of read, write, admin (admin implies write implies read)",
                          factory=lambda: ["read"])

    def __post_init__(self):
        if not is_valid_name(self.name):
            raise ConfigError("name", f"{self.name!r} is not a valid token name ({RULE})")
        if self.sha256 and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ConfigError("sha256", "must be 64 lowercase hex digits (sha256 of the token)")
        for i, role in enumerate(self.roles):
            if role not in ROLES:
                raise ConfigError(f"roles[{i}]", f"unknown role {role!r}; expected one of {ROLES}")


@dataclass
class AuthSection:
    """Bearer-token authentication (``authorization: Bearer <token>`` metadata)."""

    tokens: list[TokenSection] = _f(doc="accepted tokens; empty list = no authentication", factory=list)

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)


@dataclass
class TlsSection:
    """TLS for the gRPC port; a client CA turns on mutual TLS."""

    cert_file: str = _f("", "PEM server certificate chain")
    key_file: str = _f("", "PEM private key")
    client_ca_file: str = _f("", "PEM CA bundle; set = clients must present a certificate it signed")

    def __post_init__(self):
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError("cert_file" if not self.cert_file else "key_file",
                              "cert_file and key_file must be set together")
        if self.client_ca_file and not self.cert_file:
            raise ConfigError("client_ca_file", "mutual TLS needs cert_file and key_file too")

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)


@dataclass
class MetricsSection:
    """Prometheus metrics over plain HTTP on a separate, internal port."""

    host: str = _f("127.0.0.1", "address the metrics endpoint binds to (loopback unless allow_remote)")
    port: int | None = _f(9464, "metrics port; 0 = any free port; null = no metrics endpoint")
    allow_remote: bool = _f(False, "allow a non-loopback host: the endpoint is plain HTTP without "
                            "auth, so only on a trusted network (warns at every start)")


@dataclass
class LoggingSection:
    """Structured logs on stderr."""

    level: str = _f("INFO", "DEBUG, INFO, WARNING or ERROR")
    json: bool = _f(True, "one JSON object per line (false: plain text)")

    def __post_init__(self):
        if self.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("level", f"unknown log level {self.level!r}")


@dataclass
class BootstrapSection:
    """What the first start does when the data directory is empty."""

    enabled: bool = _f(True, "index the built-in corpus on first start")
    corpus: str = _f("stdlib", "corpus to index: 'stdlib' (built in) or a BEIR folder")
    collection: str = _f("stdlib", "name of the collection it creates")


CONSISTENCY_LEVELS = ("Strong", "Bounded", "Session", "Eventually")
STORE_KINDS = ("embedded", "milvus")


@dataclass
class StoreSection:
    """Where documents and vectors live: 'embedded' (SQLite + FAISS under data_dir, one
    process) or 'milvus' (a Milvus server or cluster shared by stateless replicas;
    docs/SCALE_OUT.md)."""

    kind: str = _f("embedded", "'embedded' or 'milvus'")
    uri: str = _f("http://127.0.0.1:19530", "Milvus address; https:// turns on TLS (milvus only)")
    token_env: str = _f("", "name of the environment variable holding the Milvus token "
                        "('user:password' or an API key); '' = no authentication")
    db_name: str = _f("default", "Milvus database")
    collection_prefix: str = _f("ranksearch_", "prefix of every Milvus collection this service owns")
    shards_num: int = _f(1, "Milvus shards per new collection (write parallelism; 1-16)")
    replica_number: int = _f(1, "in-memory Milvus replicas per collection when loaded (query throughput, HA)")
    consistency_level: str = _f("Strong", "Strong, Bounded, Session or Eventually: what a read "
                                "sees right after a write (docs/SCALE_OUT.md)")
    ca_file: str = _f("", "PEM CA bundle to verify Milvus's TLS certificate (uri https://)")
    server_name: str = _f("", "expected TLS server name of Milvus (override)")
    timeout_s: float = _f(10.0, "deadline of each call to Milvus; past it the RPC answers UNAVAILABLE")

    def __post_init__(self):
        if self.kind not in STORE_KINDS:
            raise ConfigError("kind", f"unknown store kind {self.kind!r}; expected one of {STORE_KINDS}")
        if not re.fullmatch(r"(https?|tcp|grpc)://[^\s/]+(:\d+)?/?", self.uri):
            raise ConfigError("uri", f"{self.uri!r} is not http(s)://HOST:PORT")
        if self.token_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", self.token_env):
            raise ConfigError("token_env", f"{self.token_env!r} is not an environment variable name")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", self.db_name):
            raise ConfigError("db_name", f"{self.db_name!r} is not a Milvus database name")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}", self.collection_prefix):
            raise ConfigError("collection_prefix", "must be 1-32 letters, digits or '_', "
                              f"not starting with a digit, got {self.collection_prefix!r}")
        if not 1 <= self.shards_num <= 16:
            raise ConfigError("shards_num", f"must be between 1 and 16, got {self.shards_num}")
        if not 1 <= self.replica_number <= 64:
            raise ConfigError("replica_number", f"must be between 1 and 64, got {self.replica_number}")
        if self.consistency_level not in CONSISTENCY_LEVELS:
            raise ConfigError("consistency_level", f"unknown level {self.consistency_level!r}; "
                              f"expected one of {CONSISTENCY_LEVELS}")
        if not 0 < self.timeout_s <= 600:
            raise ConfigError("timeout_s", f"must be in (0, 600], got {self.timeout_s}")
        if (self.ca_file or self.server_name) and not self.uri.startswith("https://"):
            raise ConfigError("ca_file" if self.ca_file else "server_name",
                              "TLS options need an https:// uri")

    def token(self, environ: dict[str, str] | None = None) -> str:
        """The Milvus token from the environment variable `token_env` ('' = none)."""
        if not self.token_env:
            return ""
        environ = os.environ if environ is None else environ
        if self.token_env not in environ:
            raise ConfigError("store.token_env", f"environment variable {self.token_env} is not set")
        return environ[self.token_env]


@dataclass
class ServiceConfig:
    """The whole service configuration (``ranksearch serve --config FILE``)."""

    listen: str = _f("127.0.0.1:50051", "HOST:PORT of the gRPC listener (loopback by default)")
    data_dir: str = _f("./data", "documents, indexes and models live here")
    insecure: bool = _f(False, "allow a non-loopback listener without TLS and tokens (warns at every start)")
    threads: int = _f(16, "gRPC worker threads")
    encoder_threads: int | str = _f(ENCODER_THREADS_AUTO, "how encoding uses the cores. auto: one torch thread "
                                    "per forward pass and as many passes of one encoder "
                                    "at once as the process has cores (a lone query runs "
                                    "as with 1; docs/PERFORMANCE.md). An integer n: n torch threads "
                                    "per pass, one pass at a time (the behaviour before auto)")
    device: str = _f("cpu", "where encoders run: cpu, or cuda (needs a CUDA build of torch: "
                     "`make install TORCH=cuda`)")
    default_collection: str = _f("stdlib", "collection used when a request names none")
    default_model: str = _f("default", "model folder (under <data_dir>/models) for variants naming none; "
                            "built in: 'default' (all-MiniLM-L6-v2, English) and 'multilingual' "
                            "(multilingual-e5-small: Japanese and ~100 languages), built offline "
                            "on first start")
    default_index: IndexSection = _f(doc="index of variants that configure none", factory=IndexSection)
    long_text: str = _f("truncate", "documents longer than the model's max_seq_length: truncate "
                        "(keep the first tokens) or window (encode overlapping windows with the "
                        "document prompt, store their element-wise maximum); queries are always truncated; "
                        "see docs/JAPANESE.md")
    shutdown_grace_s: float = _f(10.0, "on SIGTERM, how long in-flight requests may finish")
    limits: LimitsSection = _f(doc="request limits", factory=LimitsSection)
    batching: BatchingSection = _f(doc="micro-batching of encode requests", factory=BatchingSection)
    experiments: ExperimentsSection = _f(doc="live A/B experiments", factory=ExperimentsSection)
    auth: AuthSection = _f(doc="bearer tokens", factory=AuthSection)
    tls: TlsSection = _f(doc="TLS / mutual TLS", factory=TlsSection)
    metrics: MetricsSection = _f(doc="Prometheus endpoint", factory=MetricsSection)
    logging: LoggingSection = _f(doc="log format", factory=LoggingSection)
    bootstrap: BootstrapSection = _f(doc="first start", factory=BootstrapSection)
    collections: list[CollectionSection] = _f(doc="collections created at start if missing", factory=list)
    store: StoreSection = _f(doc="document and vector store (embedded or milvus)", factory=StoreSection)
    indexer: dict[str, Any] = _f(doc="ranksearch.indexer.IndexerConfig keys (snapshot_interval_s, "
                                 "faiss_threads, ...); request limits come from `limits`", factory=dict)

    def __post_init__(self):
        parse_listen(self.listen)
        self.indexer_config()  # validates the keys, naming them as indexer.<key>
        if self.threads < 1:
            raise ConfigError("threads", f"must be >= 1, got {self.threads}")
        if not (self.encoder_threads == ENCODER_THREADS_AUTO or (
                isinstance(self.encoder_threads, int) and not isinstance(self.encoder_threads, bool)
                and self.encoder_threads >= 1)):
            raise ConfigError("encoder_threads", f"must be {ENCODER_THREADS_AUTO!r} or an integer >= 1, "
                              f"got {self.encoder_threads!r}")
        if self.device not in DEVICES:
            raise ConfigError("device", f"must be one of {', '.join(DEVICES)}, got {self.device!r}")
        check_long_text(self.long_text)

    @property
    def torch_threads(self) -> int:
        """torch intra-op threads of each forward pass (set once for the process)."""
        return 1 if self.encoder_threads == ENCODER_THREADS_AUTO else self.encoder_threads

    @property
    def encoder_workers(self) -> int:
        """Forward passes of one encoder that may run at once."""
        return usable_cores() if self.encoder_threads == ENCODER_THREADS_AUTO else 1

    def indexer_limits(self) -> dict[str, int]:
        """The IndexerConfig keys that come from `limits` (setting them under
        `indexer` is an error)."""
        limits = self.limits
        return {"max_k": limits.max_k, "max_offset": limits.max_offset,
                "max_id_length": limits.max_id_bytes,
                "max_batch": max(10_000, limits.max_texts_per_request),
                "max_queries": max(1024, limits.max_texts_per_request)}

    def indexer_config(self):
        """IndexerConfig from `indexer`, with its request limits taken from `limits`."""
        from ranksearch.indexer.config import IndexerConfig

        derived = self.indexer_limits()
        for key in derived:
            if key in self.indexer:
                raise ConfigError(f"indexer.{key}", f"set it through limits, not indexer")
        return IndexerConfig.from_dict({**derived, **self.indexer}, prefix="indexer.")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    def check_security(self) -> list[str]:
        """Raise ConfigError for an unsafe listener (gRPC or metrics); return warnings
        to log at start."""
        return self._check_metrics_host() + self._check_grpc_listener()

    def _check_grpc_listener(self) -> list[str]:
        host, _ = parse_listen(self.listen)
        if is_loopback(host):
            return []
        missing = [what for what, ok in (("TLS (tls.cert_file)", self.tls.enabled),
                                         ("tokens (auth.tokens)", self.auth.enabled)) if not ok]
        if not missing:
            return []
        if not self.insecure:
            raise ConfigError("listen", f"{self.listen} is not a loopback address and "
                              f"{' and '.join(missing)} are not configured; configure them "
                              "or set `insecure: true` explicitly")
        return [f"INSECURE: listening on {self.listen} without {' and '.join(missing)} "
                "(insecure: true)"]

    def _check_metrics_host(self) -> list[str]:
        m = self.metrics
        if m.port is None or is_loopback(m.host):
            return []
        if not m.allow_remote:
            raise ConfigError("metrics.host", f"{m.host} is not a loopback address; the metrics "
                              "endpoint is plain HTTP without auth: keep it on 127.0.0.1 or set "
                              "`metrics.allow_remote: true` explicitly")
        return [f"metrics endpoint on {m.host}:{m.port} is reachable from other hosts "
                "without auth (metrics.allow_remote: true)"]

    def check_files(self) -> None:
        """Raise ConfigError naming the key when a TLS file is missing or unreadable
        (the server would refuse to start)."""
        for key in ("cert_file", "key_file", "client_ca_file"):
            path = getattr(self.tls, key)
            if not path:
                continue
            try:
                with open(path, "rb") as fh:
                    fh.read(1)
            except OSError as exc:
                raise ConfigError(f"tls.{key}", f"cannot read {path}: {exc.strerror}") from None


def parse_listen(listen: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port)."""
    m = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\[\]]+):(\d+)", listen or "")
    if not m:
        raise ConfigError("listen", f"{listen!r} is not HOST:PORT")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 0 <= port <= 65535:
        raise ConfigError("listen", f"port {port} out of range")
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------- loading

def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys by dotted name."""
    if data is None:
        data = {}
    reject_unknown(data, [f.name for f in dataclasses.fields(cls)], prefix)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        kwargs[key] = _convert(hints[key], value, dotted)
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # __post_init__ names the field relative to cls
        field_name = f"{prefix}.{exc.field}" if prefix and exc.field else (exc.field or prefix)
        raise ConfigError(field_name, exc.message) from None


def _convert(tp: Any, value: Any, dotted: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for tp_ in inner[:-1]:  # e.g. int | str: the first type that takes the value
            try:
                return _convert(tp_, value, dotted)
            except ConfigError:
                pass
        return _convert(inner[-1], value, dotted)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, dotted)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(dotted, f"expected a list, got {type(value).__name__}")
        return [_convert(args[0], v, f"{dotted}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(dotted, f"expected a mapping, got {type(value).__name__}")
        return {str(k): _convert(args[1], v, f"{dotted}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(dotted, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(dotted, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(dotted, f"expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(dotted, f"expected a string, got {value!r}")
        return str(value)
    return value


def apply_env(config: ServiceConfig, environ: dict[str, str] | None = None) -> ServiceConfig:
    """Secrets from the environment: ``RANKSEARCH_TOKEN_<NAME>=<token>`` sets the hash of
    the configured token NAME (upper case, '-' and '.' as '_'). A variable naming no
    configured token is an error, so a typo cannot silently disable a credential."""
    environ = os.environ if environ is None else environ
    by_env = {"RANKSEARCH_TOKEN_" + re.sub(r"[-.]", "_", t.name).upper(): t
              for t in config.auth.tokens}
    for key, value in environ.items():
        if not key.startswith("RANKSEARCH_TOKEN_"):
            continue
        if key not in by_env:
            raise ConfigError(f"env.{key}", "names no token in auth.tokens "
                              f"(known: {', '.join(sorted(by_env)) or 'none'})")
        by_env[key].sha256 = hash_token(value)
    for i, tok in enumerate(config.auth.tokens):
        if not tok.sha256:
            raise ConfigError(f"auth.tokens[{i}].sha256", f"token {tok.name!r} has no sha256 and "
                              f"no RANKSEARCH_TOKEN_{re.sub(r'[-.]', '_', tok.name).upper()} variable")
    return config


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                environ: dict[str, str] | None = None) -> ServiceConfig:
    """Read YAML (or defaults when ``path`` is None), apply flag overrides, then env.

    Relative paths written in the file (data_dir, tls.*_file) are relative to the
    file's folder, so `serve`, `doctor` and `config check` find the same files from
    any working directory; paths given as flags are relative to the working directory."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError("config", f"{path} is not valid YAML: {exc}") from None
        _relative_to(Path(path).resolve().parent, data)
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    return apply_env(from_dict(ServiceConfig, data), environ)


def _relative_to(folder: Path, data: Any) -> None:
    """Make the file's relative data_dir and tls.*_file paths absolute against `folder`."""
    if not isinstance(data, dict):
        return  # from_dict reports the type error

    def fix(section: dict, key: str) -> None:
        value = section.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            section[key] = str(folder / value)

    fix(data, "data_dir")
    if isinstance(data.get("tls"), dict):
        for key in ("cert_file", "key_file", "client_ca_file"):
            fix(data["tls"], key)


def describe(cls: type = ServiceConfig, prefix: str = "") -> list[dict[str, Any]]:
    """Flat list of {key, type, default, doc} for a configuration reference."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows.append({"key": key, "type": "section", "default": None,
                         "doc": f.metadata.get("doc", "") or (tp.__doc__ or "")})
            rows.extend(describe(tp, key))
            continue
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else None)
        rows.append({"key": key, "type": getattr(tp, "__name__", str(tp)).replace("typing.", ""),
                     "default": default, "doc": f.metadata.get("doc", "")})
    return rows
