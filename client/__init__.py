from ranksearch.client.client import (DEFAULT_ADDRESS, Document, Hit, Hybrid, RpcFailed, SearchClient,
                                      SearchResult, Upserted, Variant)

__all__ = ["DEFAULT_ADDRESS", "Document", "Hit", "Hybrid", "RpcFailed", "SearchClient", "SearchResult",
           "Upserted", "Variant"]
