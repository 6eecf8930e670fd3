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
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ranksearch.errors import RanksearchError


class DeadlineExceeded(RanksearchError):
    """The client's deadline passed or it cancelled; the work was stopped."""

    code = "DEADLINE_EXCEEDED"


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
    """RanksearchError -> a grpc.Status (with BadRequest details for bad arguments)."""
    code = grpc_code(exc)
    details = []
    field, message = clip(exc.field), clip(exc.message)
    if field:
        bad = error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=message)])
        packed = any_pb2.Any()
        packed.Pack(bad)
        details.append(packed)
    text = f"{field}: {message}" if field else message
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=text, details=details)
    return rpc_status.to_status(status)


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
