"""Input checks. Every failure is a typed error naming the offending field; nothing
is written before all of a batch has passed."""
from __future__ import annotations

from typing import Any, Collection, Mapping, Sequence

import numpy as np

from ranksearch.errors import InvalidArgument, NotFound
from ranksearch.names import RULE, is_valid_name
from ranksearch.indexer import lexical
from ranksearch.indexer.request import SearchDefaults
from ranksearch.indexer.types import Document, VariantSpec

def check_name(value: Any, field: str) -> str:
    """Collection and variant names: they become file names, so keep them plain
    (the rule: ranksearch.names)."""
    if not is_valid_name(value):
        raise InvalidArgument(field, f"{value!r} is not a valid name: use {RULE}")
    return value


def check_id(value: Any, field: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(field, f"must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidArgument(field, "is empty")
    if len(value) > max_len:
        raise InvalidArgument(field, f"is {len(value)} characters long, the limit is {max_len}")
    return value


def check_ids(ids: Any, field: str, max_len: int, max_batch: int) -> list[str]:
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise InvalidArgument(field, "must be a list of strings")
    if len(ids) > max_batch:
        raise InvalidArgument(field, f"has {len(ids)} entries, the limit is {max_batch}")
    seen: dict[str, int] = {}
    for i, doc_id in enumerate(ids):
        check_id(doc_id, f"{field}[{i}]", max_len)
        if doc_id in seen:
            raise InvalidArgument(f"{field}[{i}]", f"duplicates {field}[{seen[doc_id]}] ({doc_id!r})")
        seen[doc_id] = i
    return list(ids)


def check_documents(docs: Any, max_len: int, max_batch: int) -> list[Document]:
    if isinstance(docs, (str, bytes)) or not isinstance(docs, Sequence):
        raise InvalidArgument("documents", "must be a list of Document")
    if len(docs) > max_batch:
        raise InvalidArgument("documents", f"has {len(docs)} documents, the limit is {max_batch}")
    seen: dict[str, int] = {}
    for i, doc in enumerate(docs):
        if not isinstance(doc, Document):
            raise InvalidArgument(f"documents[{i}]", f"must be a Document, got {type(doc).__name__}")
        check_id(doc.id, f"documents[{i}].id", max_len)
        if doc.id in seen:
            raise InvalidArgument(f"documents[{i}].id", f"duplicates documents[{seen[doc.id]}].id ({doc.id!r})")
        seen[doc.id] = i
        if not isinstance(doc.text, str):
            raise InvalidArgument(f"documents[{i}].text", f"must be a string, got {type(doc.text).__name__}")
        if not isinstance(doc.metadata, Mapping):
            raise InvalidArgument(f"documents[{i}].metadata", "must be a dict of strings")
        for key, value in doc.metadata.items():
            if not isinstance(key, str) or not key:
                raise InvalidArgument(f"documents[{i}].metadata", f"keys must be non-empty strings, got {key!r}")
            if not isinstance(value, str):
                raise InvalidArgument(
                    f"documents[{i}].metadata.{key}", f"must be a string, got {type(value).__name__}"
                )
    return list(docs)


def unit_rows(mat: Any, field: str, dim: int, rows: int | None) -> np.ndarray:
    """Check a (n, dim) array of finite non-zero rows and L2-normalise it."""
    try:
        arr = np.asarray(mat, dtype=np.float32)
    except (TypeError, ValueError):
        raise InvalidArgument(field, "must be a numeric array") from None
    if arr.ndim != 2:
        raise InvalidArgument(field, f"must be a 2-d array (n, {dim}), got shape {arr.shape}")
    if rows is not None and arr.shape[0] != rows:
        raise InvalidArgument(field, f"has {arr.shape[0]} rows, expected {rows} (one per document)")
    if arr.shape[1] != dim:
        raise InvalidArgument(field, f"has width {arr.shape[1]}, the variant's dim is {dim}")
    finite = np.isfinite(arr).all(axis=1)  # (n,)
    if not finite.all():
        raise InvalidArgument(f"{field}[{int(np.argmin(finite))}]", "contains NaN or inf")
    norms = np.linalg.norm(arr, axis=1)  # (n,)
    zero = norms == 0
    if zero.any():
        raise InvalidArgument(f"{field}[{int(np.argmax(zero))}]", "is a zero vector (cannot be normalised)")
    return np.ascontiguousarray(arr / norms[:, None], dtype=np.float32)


def check_vectors(
    vectors: Any, specs: Mapping[str, VariantSpec], rows: int, collection: str,
    optional: Collection[str] = (),
) -> dict[str, np.ndarray]:
    """One unit-row (rows, dim) array per variant; variants in ``optional`` (being
    built in the background) may be missing."""
    if not isinstance(vectors, Mapping):
        raise InvalidArgument("vectors", "must be a dict: variant name -> (n, dim) array")
    for name in vectors:
        if name not in specs:
            raise NotFound(
                f"vectors[{name}]", f"collection {collection!r} has no variant {name!r} (it has: {', '.join(specs)})"
            )
    out = {}
    for name, spec in specs.items():
        if name not in vectors:
            if name in optional:
                continue
            raise InvalidArgument("vectors", f"missing variant {name!r}: every variant of {collection!r} needs vectors")
        out[name] = unit_rows(vectors[name], f"vectors[{name}]", spec.dim, rows)
    return out


def check_int(value: Any, field: str, low: int, high: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise InvalidArgument(field, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidArgument(field, f"must be between {low} and {high}, got {value}")
    return int(value)


def check_texts(texts: Any, field: str, max_rows: int, rows: int | None) -> list[str]:
    """Query texts of a lexical search: a list of strings, one per query row."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise InvalidArgument(field, "must be a list of query texts (lexical and hybrid modes need them)")
    if len(texts) > max_rows:
        raise InvalidArgument(field, f"has {len(texts)} entries, the limit is {max_rows}")
    if rows is not None and len(texts) != rows:
        raise InvalidArgument(field, f"has {len(texts)} entries, expected {rows} (one per query vector)")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidArgument(f"{field}[{i}]", f"must be a string, got {type(text).__name__}")
    return list(texts)


def check_collection_settings(name: Any, lexical_config: Any, defaults: Any):
    """CreateCollection's name, lexical settings and search defaults, checked alike by
    every store: (LexicalConfig, SearchDefaults), defaulted when None."""
    check_name(name, "name")
    lex = lexical_config or lexical.LexicalConfig()
    defaults = defaults or SearchDefaults()
    if not isinstance(lex, lexical.LexicalConfig):
        raise InvalidArgument("lexical", f"must be a LexicalConfig, got {type(lex).__name__}")
    if not isinstance(defaults, SearchDefaults):
        raise InvalidArgument("defaults", f"must be SearchDefaults, got {type(defaults).__name__}")
    return lex, defaults
