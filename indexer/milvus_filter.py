"""Metadata filters ({key: value}, all must match) as Milvus boolean expressions.

Keys and values are user input and become string literals inside the expression,
so each is written as a JSON string literal (``"`` and ``\\`` escaped, newline/tab/
carriage return as ``\\n \\t \\r``, other characters as themselves). Milvus parses
such a literal back into exactly the value: a value like ``x" or 1==1`` stays one
string compared for equality and cannot end the literal. Milvus's expression parser
does not accept ``\\uXXXX`` escapes, so the other control characters (U+0000-U+001F
and U+007F) are refused with InvalidArgument naming the filter key.
"""
from __future__ import annotations

import json
import re

from ranksearch.errors import InvalidArgument

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_EXPRESSION_BYTES = 65536


def literal(value: str, field: str) -> str:
    """A Milvus string literal equal to `value` (or InvalidArgument naming `field`)."""
    bad = _CONTROL.search(value)
    if bad:
        raise InvalidArgument(field, f"contains control character U+{ord(bad.group()):04X}, which a "
                              "Milvus filter expression cannot carry")
    return json.dumps(value, ensure_ascii=False)


def expression(flt: dict[str, str]) -> str:
    """'' for no filter, else metadata["k1"] == "v1" and metadata["k2"] == "v2"."""
    parts = []
    for key in sorted(flt):
        parts.append(f"metadata[{literal(key, 'filter')}] == {literal(flt[key], f'filter.{key}')}")
    expr = " and ".join(parts)
    if len(expr.encode("utf-8")) > MAX_EXPRESSION_BYTES:
        raise InvalidArgument("filter", f"is {len(expr.encode('utf-8'))} bytes as a Milvus expression; "
                              f"the limit is {MAX_EXPRESSION_BYTES}")
    return expr


def ids_expression(ids: list[str]) -> str:
    """id in ["a", "b", ...] with every id escaped like a filter value."""
    return "id in [" + ", ".join(literal(i, f"ids[{n}]") for n, i in enumerate(ids)) + "]"
