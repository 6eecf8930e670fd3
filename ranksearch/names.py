"""The one rule for names that become file and path names: collections, variants
and tokens. 1-64 characters of letters, digits, '_', '.', '-', starting with a
letter or digit (so no name is '.', '..', hidden, or read as a command-line option).
"""
from __future__ import annotations

import re
from typing import Any

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RULE = "1-64 characters of letters, digits, '_', '.', '-' starting with a letter or digit"


def is_valid_name(value: Any) -> bool:
    return isinstance(value, str) and NAME_RE.fullmatch(value) is not None
