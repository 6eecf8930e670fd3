"""Python client of the ranksearch gRPC API (see client.py)."""
from ranksearch.client.client import (DEFAULT_ADDRESS, Document, Hit, Hybrid, RpcFailed, SearchClient,
                                      SearchResult, Variant)

__all__ = ["DEFAULT_ADDRESS", "Document", "Hit", "Hybrid", "RpcFailed", "SearchClient", "SearchResult",
           "Variant"]
