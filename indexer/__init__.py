"""ranksearch.indexer: durable document store (SQLite) plus FAISS indexes with nearest
and farthest search, recovery, backup and restore. Takes vectors, never encodes."""
from ranksearch.indexer.backup import backup, restore
from ranksearch.indexer.config import IndexerConfig
from ranksearch.indexer.indexer import Indexer
from ranksearch.indexer.types import CollectionInfo, Document, Hit, IndexSpec, VariantSpec

__all__ = [
    "CollectionInfo",
    "Document",
    "Hit",
    "IndexSpec",
    "Indexer",
    "IndexerConfig",
    "VariantSpec",
    "backup",
    "restore",
]
