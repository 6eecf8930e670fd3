"""The storage port: the one interface the service core calls on its store.

Two stores implement it: the embedded ``ranksearch.indexer.Indexer`` (SQLite +
FAISS in the data directory, one process) and ``ranksearch.indexer.milvus_store.
MilvusStore`` (a Milvus server or cluster shared by any number of stateless
ranksearch replicas). ``service/core.py``, ``service/bootstrap.py`` (through the
core) and ``service/server.py`` use only these methods (the Milvus leg of
``service/doctor.py`` too), so a store is chosen in one place
(``ranksearch.service.storage.make_store``) and the API does not change with it.

Values are the plain types of ``ranksearch.indexer.types``; errors are
``ranksearch.errors`` (InvalidArgument / NotFound naming the field, Unavailable when
the store cannot be reached, FailedPrecondition for what a store cannot do).

Backup is not a method: each store is backed up by its own mechanism, outside the
serving process: the embedded one by ``ranksearch backup DATA_DIR DEST``
(``ranksearch.indexer.backup``), Milvus by its own backup tool (deploy/RUNBOOK.md,
"Scale out").
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

import numpy as np

from ranksearch.indexer.types import CollectionInfo, Document, Hit, VariantSpec

if TYPE_CHECKING:
    from ranksearch.indexer.request import SearchRequest

@runtime_checkable
class StoragePort(Protocol):
    def open(self) -> None:
        """Connect / recover; raises Unavailable (Milvus) or FailedPrecondition (a
        data dir in use)."""

    def close(self) -> None:
        """Flush what needs flushing (embedded: final snapshot) and let go."""

    def create_collection(self, name: str, variants: list[VariantSpec],
                          default_variant: str | None = None) -> CollectionInfo: ...

    def list_collections(self) -> list[CollectionInfo]: ...

    def delete_collection(self, name: str) -> None: ...

    def upsert(self, collection: str, docs: list[Document], vectors: dict[str, np.ndarray]) -> int:
        """Insert or replace; `vectors` has one (n, dim) array per variant, row i for
        docs[i]. Acknowledged (durable) when it returns; returns len(docs)."""

    def delete(self, collection: str, ids: list[str]) -> int:
        """Unknown ids are ignored; returns how many were deleted."""

    def get(self, collection: str, ids: list[str]) -> list[Document]:
        """The documents found among `ids`, in the order asked."""

    def search(self, collection: str, request: "SearchRequest", vectors: np.ndarray | None = None,
               texts: Sequence[str] | None = None) -> list[list[Hit]]:
        """One SearchRequest (indexer/request.py) for every query row: vectors (q, dim)
        for the dense modes, texts for the lexical ones. Scores are cosine similarities
        in the dense modes (nearest largest first, farthest smallest first; exact
        wherever the variant is flat, and farthest is exact on every index kind), BM25
        in lexical mode, fused in hybrid mode. Both stores answer every mode; a Milvus
        collection created before the Milvus store had a lexical index answers
        lexical and hybrid with FailedPrecondition naming `mode`."""

    def unchanged(self, collection: str, docs: list[Document]) -> set[str]:
        """Ids of `docs` stored already with the same text and metadata: the core skips
        encoding and writing them (an idempotent re-import costs no encoding)."""

    def stats(self) -> dict[str, Any]:
        """{"collections": {name: {"documents", "default_variant",
        "variants": {name: {"vectors", "index_type", "rebuilding", ...}}}}, ...}"""

    def verify(self) -> dict[str, Any]:
        """{"ok": bool, "problems": [str], "collections": {...}}"""

    def rebuild(self, collection: str | None = None) -> None:
        """Repair / compact one collection's indexes (all when None), live."""


@runtime_checkable
class Reachable(Protocol):
    """A store behind a network (Milvus): the server polls ``ping`` and reports health
    NOT_SERVING while it raises Unavailable."""

    def ping(self) -> str:
        """The store server's version; raises Unavailable when it cannot be reached."""
