"""Which index configurations are supported: the one rule for index kinds and knobs.

Everything that can bring an index configuration into the system is checked here,
before anything is stored: CreateCollection / add_variant, the service config
(``default_index``, ``collections[].variants[].index``) at ``config check`` and at
start, a collection already stored in SQLite when the server opens it, and the
``efSearch`` / ``nprobe`` overrides of a search call.

Why an allow-list and bounded knobs: FAISS is native code and trusts its arguments.
Measured on faiss-cpu 1.15.1 (issue 9): HNSW ``M: 1`` segfaults on the first add
(1/log(M) is infinite), ``HNSW0`` aborts on an assertion, ``M: 2**31`` overflows the
C int, ``HNSW999999999`` asks for ~8 GB per vector, ``efSearch: 2**31`` overflows at
search time, and ``NSG32,Flat`` builds but cannot add fewer than 100 vectors or take
search parameters. A crash inside FAISS cannot be caught in Python, so such values
must never reach it. The kinds below are the ones the indexer is tested with under the
inner-product metric (tests/indexer/test_ix_index_rules.py); anything else is
INVALID_ARGUMENT naming the field, e.g. ``variants[0].index.params.M``.

Beyond the rule, ``faiss_index.trial_build`` builds and exercises a small candidate index of
the exact kind (add, nearest and farthest search, remove, serialize, load) so a
configuration FAISS rejects fails the create call instead of the first upsert.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from ranksearch.errors import ConfigError, InvalidArgument
from ranksearch.indexer.validation import check_int


@dataclass(frozen=True)
class Knob:
    """One integer index parameter and its supported range."""

    name: str
    low: int
    high: int
    doc: str
    #: a search call may override it per request
    search: bool = False


KNOBS: dict[str, Knob] = {k.name: k for k in (
    Knob("M", 2, 128, "HNSW graph degree: links per vector, memory grows with it"),
    Knob("efConstruction", 1, 4096, "HNSW candidate list while building"),
    Knob("efSearch", 1, 4096, "HNSW candidate list while searching: recall against speed", search=True),
    Knob("nlist", 1, 65536, "IVF lists; unset: about 4*sqrt(n) with at least 40 vectors per list"),
    Knob("nprobe", 1, 65536, "IVF lists visited per query, capped at nlist", search=True),
    Knob("train_min", 1, 10_000_000, "vectors needed before the IVF index is trained, "
         "exact search until then; at least nlist"),
)}


@dataclass(frozen=True)
class Kind:
    """A supported index kind: its name (or factory-string pattern) and knobs."""

    name: str
    knobs: tuple[str, ...]
    doc: str
    #: factory strings: the pattern, and the knob its number sets (checked in range)
    pattern: re.Pattern | None = None
    number: str = ""


KINDS: tuple[Kind, ...] = (
    Kind("flat", (), "exact inner-product scan (default); no knobs"),
    Kind("hnsw", ("M", "efConstruction", "efSearch"), "HNSW graph for approximate nearest search"),
    Kind("ivf", ("nlist", "nprobe", "train_min"), "inverted lists over k-means cells; trained once "
         "train_min vectors exist, exact search until then"),
    Kind("IVF<nlist>,Flat", ("nprobe", "train_min"), "FAISS factory string: IVF with full vectors",
         re.compile(r"IVF(\d+),Flat"), "nlist"),
    Kind("IVF<nlist>,SQ8", ("nprobe", "train_min"), "FAISS factory string: IVF with 8-bit "
         "scalar-quantised vectors (4x smaller)", re.compile(r"IVF(\d+),SQ8"), "nlist"),
    Kind("IVF<nlist>,SQfp16", ("nprobe", "train_min"), "FAISS factory string: IVF with 16-bit "
         "float vectors (2x smaller)", re.compile(r"IVF(\d+),SQfp16"), "nlist"),
    Kind("HNSW<M>", ("efSearch",), "FAISS factory string: HNSW graph, the same as `HNSW<M>,Flat`",
         re.compile(r"HNSW(\d+)(?:,Flat)?"), "M"),
)
#: knobs a search call may pass, besides ``exact``
SEARCH_KNOBS = tuple(k.name for k in KNOBS.values() if k.search)


def _kinds_text() -> str:
    return ", ".join(k.name for k in KINDS)


def check_knob(name: str, value: Any, field: str) -> int:
    knob = KNOBS[name]
    try:
        return check_int(value, field, knob.low, knob.high)
    except InvalidArgument as exc:
        raise InvalidArgument(field, f"{exc.message} ({knob.doc})") from None


def find_kind(kind: Any, field: str) -> tuple[Kind, dict[str, int]]:
    """The Kind that `kind` names, and the knob values its factory string fixes.
    Raises InvalidArgument naming `field` for anything unsupported."""
    if not isinstance(kind, str) or not kind:
        raise InvalidArgument(field, f"must be one of {_kinds_text()}, got {kind!r}")
    for k in KINDS:
        if k.pattern is None:
            if kind == k.name:
                return k, {}
            continue
        m = k.pattern.fullmatch(kind)
        if m:
            return k, {k.number: check_knob(k.number, int(m.group(1)), f"{field} ({k.number})")}
    shown = kind if len(kind) <= 60 else kind[:60] + "..."
    raise InvalidArgument(field, f"unsupported index kind {shown!r}: must be one of {_kinds_text()} "
                          "(other FAISS factory strings are not supported: see deploy/CONFIG.md)")


def check_index(kind: Any, params: Any, field: str) -> None:
    """Raise InvalidArgument naming ``<field>.kind`` or ``<field>.params.<key>`` unless
    (kind, params) is a supported configuration."""
    found, fixed = find_kind(kind, f"{field}.kind")
    if not isinstance(params, Mapping):
        raise InvalidArgument(f"{field}.params", f"must be a mapping of knob name to integer, got {params!r}")
    for key, value in params.items():
        where = f"{field}.params.{key}"
        if key not in found.knobs:
            known = ", ".join(found.knobs) or "none"
            raise InvalidArgument(where, f"unknown for index kind {found.name!r} (known: {known})")
        check_knob(key, value, where)
    nlist = params.get("nlist", fixed.get("nlist"))
    if "train_min" in params and nlist is not None and params["train_min"] < nlist:
        raise InvalidArgument(f"{field}.params.train_min", f"must be at least nlist ({nlist}): "
                              f"k-means needs one training vector per list, got {params['train_min']}")


def check_index_config(kind: Any, params: Any, field: str) -> None:
    """check_index for a configuration file: the same rule, raised as ConfigError
    naming the key (``field`` '' names ``kind`` / ``params.<knob>``)."""
    try:
        check_index(kind, params, field)
    except InvalidArgument as exc:
        raise ConfigError(exc.field.lstrip("."), exc.message) from None


def check_search_overrides(params: Any) -> dict[str, Any]:
    """A search call's ``params``: efSearch / nprobe within their ranges, exact a bool."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InvalidArgument("params", "must be a dict")
    for key, value in params.items():
        if key == "exact":
            if not isinstance(value, bool):
                raise InvalidArgument("params.exact", f"must be a bool, got {value!r}")
        elif key in SEARCH_KNOBS:
            check_knob(key, value, f"params.{key}")
        else:
            raise InvalidArgument(f"params.{key}", f"unknown search parameter (known: "
                                  f"{', '.join(SEARCH_KNOBS)}, exact)")
    return dict(params)


def kinds_reference() -> str:
    """Markdown tables of the supported kinds and knob ranges (deploy/CONFIG.md)."""
    lines = ["| kind | knobs | meaning |", "|---|---|---|"]
    for k in KINDS:
        number = f"; `{k.number}` within its range" if k.number else ""
        knobs = ", ".join(f"`{n}`" for n in k.knobs) or "none"
        lines.append(f"| `{k.name}` | {knobs} | {k.doc}{number} |")
    lines += ["", "| knob | range | a search may override it (indexer API) | meaning |", "|---|---|---|---|"]
    for n in KNOBS.values():
        lines.append(f"| `{n.name}` | {n.low}..{n.high} | {'yes' if n.search else 'no'} | {n.doc} |")
    return "\n".join(lines)
