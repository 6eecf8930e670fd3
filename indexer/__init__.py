"""ranksearch.indexer: durable document store (SQLite) plus FAISS indexes with nearest
and farthest search, a BM25 lexical index with lexical and hybrid search, recovery, backup and restore. Takes vectors, never encodes."""
from ranksearch.indexer.backup import backup, restore
from ranksearch.indexer.config import IndexerConfig
from ranksearch.indexer.indexer import Indexer
from ranksearch.indexer.lexical import LexicalConfig
from ranksearch.indexer.request import HybridParams, SearchDefaults, SearchRequest
from ranksearch.indexer.types import CollectionInfo, Document, Explain, Hit, IndexSpec, VariantSpec

__all__ = [
    "CollectionInfo",
    "Document",
    "Explain",
    "Hit",
    "HybridParams",
    "IndexSpec",
    "Indexer",
    "IndexerConfig",
    "LexicalConfig",
    "SearchDefaults",
    "SearchRequest",
    "VariantSpec",
    "backup",
    "restore",
]
