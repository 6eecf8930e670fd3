"""Helpers for typed configs: the one check that rejects unknown keys."""
from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any

from ranksearch.errors import ConfigError


def reject_unknown(data: Any, known: Collection[str], where: str = "") -> None:
    """Raise ConfigError naming the first key of `data` that is not in `known`.

    `where` is the dotted path of `data` itself ('' at the top); the error names
    ``where.key`` and suggests the closest known key, e.g.
    ``limits.max_kk: unknown key; did you mean 'max_k'? (known: ...)``.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(where or "(root)", f"must be a mapping, got {type(data).__name__}")
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            dotted = f"{where}.{key}" if where else str(key)
            raise ConfigError(dotted, f"unknown key{hint} (known: {', '.join(sorted(known))})")
