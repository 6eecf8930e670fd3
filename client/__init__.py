"""Python client of the ranksearch gRPC API (see client.py)."""
from ranksearch.client.client import (DEFAULT_ADDRESS, Document, Hit, RpcFailed, SearchClient,
                                      SearchResult, Upserted, Variant)

__all__ = ["DEFAULT_ADDRESS", "Document", "Hit", "RpcFailed", "SearchClient", "SearchResult",
           "Upserted", "Variant"]
