"""ranksearch: on-premise semantic search with a rank-configurable attention encoder."""

__version__ = "0.1.0"
