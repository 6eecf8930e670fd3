"""Request deserialisation that turns undecodable bytes into a named INVALID_ARGUMENT.

grpc-python deserialises a request before any handler or interceptor runs; a proto3
`string` field holding invalid UTF-8 makes protobuf raise, and the client would see
INTERNAL "Exception deserializing request!". The service therefore installs its own
deserialiser: on failure it returns an :class:`Undecodable` marker naming the field
(found by walking the wire format against the message descriptor), and the handler
wrapper answers INVALID_ARGUMENT. The same path enforces limits.max_message_bytes
with INVALID_ARGUMENT (gRPC's own transport limit, set higher, answers
RESOURCE_EXHAUSTED for anything beyond it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


def transport_limit(max_message_bytes: int) -> int:
    """gRPC's own receive/send limit: twice limits.max_message_bytes plus 1 MiB, so
    that a request over max_message_bytes reaches the deserialiser below (and gets a
    named INVALID_ARGUMENT), and the largest response a server may send."""
    return max_message_bytes * 2 + (1 << 20)

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError


@dataclass
class Undecodable:
    field: str
    message: str


def deserializer(message_cls, max_bytes: int) -> Callable[[bytes], object]:
    def parse(data: bytes):
        if len(data) > max_bytes:
            return Undecodable("request", f"message of {len(data)} bytes exceeds "
                               f"limits.max_message_bytes ({max_bytes})")
        try:
            return message_cls.FromString(data)
        except DecodeError as exc:
            try:
                where = find_invalid_utf8(message_cls.DESCRIPTOR, data)
            except Exception:  # never let the diagnosis turn a bad request into INTERNAL
                where = None
            if where is not None:
                return Undecodable(where, "is not valid UTF-8 (proto3 string fields must be UTF-8)")
            return Undecodable("request", f"cannot be parsed as {message_cls.DESCRIPTOR.full_name}: {exc}")
    return parse


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise IndexError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def find_invalid_utf8(desc: Descriptor, data: bytes, prefix: str = "") -> str | None:
    """Dotted path of the first string field holding invalid UTF-8, or None."""
    counts: dict[str, int] = {}
    pos = 0
    try:
        while pos < len(data):
            tag, pos = _varint(data, pos)
            number, wire_type = tag >> 3, tag & 7
            if wire_type == 0:
                _, pos = _varint(data, pos)
                continue
            if wire_type == 1:
                pos += 8
                continue
            if wire_type == 5:
                pos += 4
                continue
            if wire_type != 2:
                return None
            length, pos = _varint(data, pos)
            chunk, pos = data[pos:pos + length], pos + length
            fd = desc.fields_by_number.get(number)
            if fd is None:
                continue
            name = f"{prefix}{fd.name}"
            is_map = fd.message_type is not None and fd.message_type.GetOptions().map_entry
            if fd.is_repeated and not is_map:
                index = counts.get(fd.name, 0)
                counts[fd.name] = index + 1
                name = f"{name}[{index}]"
            if fd.type == FieldDescriptor.TYPE_STRING:
                try:
                    chunk.decode("utf-8")
                except UnicodeDecodeError:
                    return name
            elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                if is_map:
                    inner = find_invalid_utf8(fd.message_type, chunk, "")
                    if inner is not None:
                        return f"{name}.{inner}"
                else:
                    inner = find_invalid_utf8(fd.message_type, chunk, f"{name}.")
                    if inner is not None:
                        return inner
    except IndexError:
        return None
    return None
