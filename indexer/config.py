"""Typed indexer configuration; unknown keys are rejected with the key named."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ranksearch.errors import ConfigError
from ranksearch.typed import reject_unknown


@dataclass
class IndexerConfig:
    #: largest k (plus offset) a search may ask for
    max_k: int = 1000
    #: largest offset (pagination past top-k)
    max_offset: int = 10_000
    #: longest document id, in characters
    max_id_length: int = 256
    #: most documents in one upsert/delete call
    max_batch: int = 10_000
    #: most queries in one search call
    max_queries: int = 1024
    #: seconds between background snapshots of changed indexes; 0 disables the
    #: thread (snapshots still happen on close() and on demand)
    snapshot_interval_s: float = 300.0
    #: FAISS OpenMP threads, set once for the process (faiss.omp_set_num_threads);
    #: keep torch threads + this <= cores so the encoder and FAISS do not oversubscribe
    faiss_threads: int = 1
    #: HNSW cannot remove vectors: deleted ones are tombstoned, and the graph is
    #: rebuilt from the exact vectors when tombstones exceed this fraction
    tombstone_rebuild_ratio: float = 0.2
    #: an HNSW graph grown insert by insert loses recall against one built in a single
    #: pass (measured: 0.87 vs 0.91 recall@10 at 200k, 0.63 vs 0.77 at 1M); it is
    #: rebuilt in one pass once it holds this many times the vectors it had at its
    #: last full build (first at 2 x hnsw_rebuild_min); 0 disables
    hnsw_rebuild_growth: float = 2.0
    #: vectors below which an HNSW graph is never rebuilt for growth
    hnsw_rebuild_min: int = 10_000
    #: training, retraining and compaction of an index of at most this many vectors
    #: run on the writer's thread (writes wait that long, searches never do); a
    #: larger index is rebuilt in a background thread while writes go on, and then
    #: catches up with the writes made meanwhile
    inline_maintenance_max: int = 10_000
    #: a filter matching at most this many documents is answered by an exact scan
    #: of just those vectors (no graph/IVF search)
    exact_filter_max: int = 4096

    def __post_init__(self) -> None:
        for name in ("max_k", "max_id_length", "max_batch", "max_queries", "faiss_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(name, f"must be an integer >= 1, got {value!r}")
        for name in ("max_offset", "exact_filter_max", "inline_maintenance_max", "hnsw_rebuild_min"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(name, f"must be an integer >= 0, got {value!r}")
        if not isinstance(self.snapshot_interval_s, (int, float)) or self.snapshot_interval_s < 0:
            raise ConfigError("snapshot_interval_s", f"must be >= 0, got {self.snapshot_interval_s!r}")
        growth = self.hnsw_rebuild_growth
        if isinstance(growth, bool) or not isinstance(growth, (int, float)) or not (growth == 0 or growth > 1):
            raise ConfigError("hnsw_rebuild_growth", f"must be 0 (never) or > 1, got {growth!r}")
        if not 0 < self.tombstone_rebuild_ratio <= 1:
            raise ConfigError(
                "tombstone_rebuild_ratio", f"must be in (0, 1], got {self.tombstone_rebuild_ratio!r}"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any], prefix: str = "") -> "IndexerConfig":
        reject_unknown(data, [f.name for f in fields(cls)], prefix.rstrip("."))
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
