"""The one place that builds the store a server uses, from `store:` in the config:
the embedded Indexer under <data_dir>/index, or a MilvusStore (stateless replicas).
Both implement ranksearch.indexer.port.StoragePort."""
from __future__ import annotations

from ranksearch.indexer.port import StoragePort
from ranksearch.service.config import ServiceConfig


def make_store(config: ServiceConfig) -> StoragePort:
    """The configured store, not opened yet."""
    if config.store.kind == "milvus":
        from ranksearch.indexer.milvus_store import MilvusStore

        s = config.store
        return MilvusStore(s.uri, token=s.token(), db_name=s.db_name, collection_prefix=s.collection_prefix,
                           shards_num=s.shards_num, replica_number=s.replica_number,
                           consistency_level=s.consistency_level, timeout_s=s.timeout_s,
                           ca_file=s.ca_file, server_name=s.server_name, config=config.indexer_config())
    from ranksearch.indexer import Indexer

    return Indexer(config.data_path / "index", config.indexer_config())
