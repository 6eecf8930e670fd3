"""Typed errors shared by every core package.

The cores (encoder, indexer, evaluation) raise these; they know nothing of gRPC.
The service maps each class to one gRPC status code in one place
(`ranksearch.service.errors`). Every error names the offending field so a client
can act on it, e.g. ``InvalidArgument("documents[3].id", "is empty")``.
"""
from __future__ import annotations


class RanksearchError(Exception):
    """Base class. `field` is a dotted path to the offending input ('' if none)."""

    #: name of the matching gRPC status code (resolved by the service layer)
    code = "INTERNAL"

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class InvalidArgument(RanksearchError):
    code = "INVALID_ARGUMENT"


class NotFound(RanksearchError):
    code = "NOT_FOUND"


class AlreadyExists(RanksearchError):
    code = "ALREADY_EXISTS"


class FailedPrecondition(RanksearchError):
    code = "FAILED_PRECONDITION"


class ResourceExhausted(RanksearchError):
    code = "RESOURCE_EXHAUSTED"


class Unavailable(RanksearchError):
    """A dependency (the Milvus store) cannot be reached; the call did nothing and
    may be retried after `retry_after_s` seconds (sent as google.rpc.RetryInfo)."""

    code = "UNAVAILABLE"

    def __init__(self, field: str, message: str, retry_after_s: float = 1.0):
        super().__init__(field, message)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(RanksearchError):
    """The client's deadline passed or it cancelled; the work was stopped."""

    code = "DEADLINE_EXCEEDED"


class ConfigError(InvalidArgument):
    """A configuration file or object is invalid; `field` is the dotted key."""
