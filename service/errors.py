"""The one place that maps ranksearch errors to gRPC status codes.

Every :class:`ranksearch.errors.RanksearchError` becomes a status with the code its
class names and the message ``"<field>: <message>"``. An error that names a field
(INVALID_ARGUMENT, and NOT_FOUND for an unknown collection/variant/model) also
carries a ``google.rpc.BadRequest`` detail with one FieldViolation naming it (read it
with ``grpc_status.rpc_status.from_call``, or ``RpcFailed.field`` in the client).
Anything else is a bug in the server: INTERNAL with a generic message (the
traceback goes to the log, not to the client).

Messages echo what the client sent (a collection name, an id, a kind). gRPC carries
the status in metadata (8 KiB by default), so an echoed 100,000-character name would
turn a clear INVALID_ARGUMENT into a transport error: every run of more than
ECHO_MAX non-space characters is cut here, in the one place every status passes,
to ECHO_MAX characters plus an ellipsis and the count of characters left out, and
a message is cut at MESSAGE_MAX characters the same way.
"""
from __future__ import annotations

import re

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ranksearch.errors import DeadlineExceeded, RanksearchError, Unavailable

__all__ = ["DeadlineExceeded", "PermissionDenied", "Unauthenticated", "abort", "field_violations",
           "grpc_code", "retry_delay_s", "to_status"]


class Unauthenticated(RanksearchError):
    code = "UNAUTHENTICATED"


class PermissionDenied(RanksearchError):
    code = "PERMISSION_DENIED"


#: longest run of non-space characters a status message echoes
ECHO_MAX = 200
#: longest status message (the BadRequest detail repeats it: both fit in 8 KiB)
MESSAGE_MAX = 1000
_LONG_RUN = re.compile(r"\S{%d,}" % (ECHO_MAX + 1))


def clip(text: str) -> str:
    """`text` with every run of more than ECHO_MAX non-space characters shortened,
    and at most MESSAGE_MAX characters."""
    text = _LONG_RUN.sub(lambda m: f"{m.group()[:ECHO_MAX]}…(+{len(m.group()) - ECHO_MAX} chars)", text)
    return text if len(text) <= MESSAGE_MAX else f"{text[:MESSAGE_MAX]}…(+{len(text) - MESSAGE_MAX} chars)"


def grpc_code(exc: RanksearchError) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, exc.code, grpc.StatusCode.INTERNAL)


def to_status(exc: RanksearchError) -> grpc.Status:
    """RanksearchError -> a grpc.Status (with BadRequest details for bad arguments and
    RetryInfo for UNAVAILABLE)."""
    code = grpc_code(exc)
    details = []
    field, message = clip(exc.field), clip(exc.message)
    if field:
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=message)])))
    if isinstance(exc, Unavailable):
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(exc.retry_after_s * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    text = f"{field}: {message}" if field else message
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=text, details=details)
    return rpc_status.to_status(status)


def _pack(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def retry_delay_s(call_or_error) -> float | None:
    """Client side: the RetryInfo delay (seconds) an UNAVAILABLE answer carries."""
    status = rpc_status.from_call(call_or_error)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToNanoseconds() / 1e9
    return None


def abort(context: grpc.ServicerContext, exc: RanksearchError):
    """Abort the RPC with the status for ``exc`` (raises, as context.abort does)."""
    context.abort_with_status(to_status(exc))


def field_violations(call_or_error) -> list[tuple[str, str]]:
    """Client side: [(field, description)] from an RpcError's BadRequest details."""
    status = rpc_status.from_call(call_or_error)
    out = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.extend((v.field, v.description) for v in bad.field_violations)
    return out
