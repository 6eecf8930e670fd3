"""Lexical (BM25) search on the Milvus store, equal to the embedded store's.

The collection's analyzer (ranksearch.analysis: standard, ja = SudachiPy, auto) runs
in the ranksearch process, at upsert and at query time, exactly as in the embedded
store (``lexical.analyse`` / ``lexical.query_terms``); Milvus stores the result per
document and ranksearch scores it with the embedded store's own BM25
(``lexical.bm25`` and ``lexical.top``: Lucene's form, k1/b and title/text weights
per collection). Every statistic the score needs is read from Milvus on each
search, so any number of replicas answer the same and none keeps state.

Fields of a collection created with a lexical index (schema version 2):

    lex_terms      ARRAY<VARCHAR(128)>, <= 4096: the document's distinct terms
    lex_tf_title   ARRAY<INT64>, <= 4096: each term's frequency in the title
    lex_tf_text    ARRAY<INT64>, <= 4096: ... in the text
    lex_len_title  INT64: terms in the title;  lex_len_text INT64: terms in the text
    lex_len_bits   ARRAY<INT64>, <= 64: the set bits of lex_len_title (i) and of
                   lex_len_text (32 + i)

Per search: N = count(*); the summed field lengths (for avgdl): up to SCAN_MAX
documents, the sum of every row's lengths (one query), beyond it
sum over bits i of 2^i * count(array_contains(lex_len_bits, i)) (Milvus counts, no
rows move); either way no stored total that two writers could race on; postings = the rows whose lex_terms
contain any query term (df(t) = how many of them hold t, exact, since the
query is not filtered); the filter = a second query for the ids among them that
match. Why not Milvus's BM25 function: milvus-lite 3.2 has no whitespace
tokenizer (its ``standard`` would re-split and lowercase our terms) and scores
each segment with that segment's own statistics, counting deleted and replaced rows
until compaction (docs/SCALE_OUT.md, "Lexical and hybrid search").

Terms longer than 128 bytes of UTF-8, or holding a control character (which a
Milvus expression literal cannot carry), are stored and queried as
``~`` + 40 hex digits of their sha256: the same rule on both sides.
"""
from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

import numpy as np

from ranksearch.errors import InvalidArgument
from ranksearch.indexer import lexical
from ranksearch.indexer.milvus_filter import literal

TERMS_FIELD, TF_TITLE, TF_TEXT = "lex_terms", "lex_tf_title", "lex_tf_text"
LEN_TITLE, LEN_TEXT, LEN_BITS = "lex_len_title", "lex_len_text", "lex_len_bits"
FIELDS = (TERMS_FIELD, TF_TITLE, TF_TEXT, LEN_TITLE, LEN_TEXT, LEN_BITS)
MAX_DOC_TERMS = 4096  # Milvus's largest ARRAY max_capacity
TERM_MAX_BYTES = 128
MAX_QUERY_TERMS = 256  # distinct terms of one query
MAX_TERMS_EXPRESSION_BYTES = 32768  # their expression (the filter's has its own bound)
BITS = 17  # lengths < 2^17 (a text is <= 65,535 bytes, a title <= 64 KiB of metadata)
TEXT_BIT0 = 32
HIGH_BIT = 12  # bits >= this are counted only when some document has one
SCAN_MAX = 10_000  # up to this many documents, read the lengths (160 kB) rather than count bits
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Count = Callable[[str], int]  # filter expression -> count(*) of matching rows
Fetch = Callable[[str, list[str]], list[dict]]  # filter expression, fields -> rows


def stored_term(term: str) -> str:
    """A term as Milvus stores and matches it (the module doc's rule)."""
    if len(term.encode("utf-8")) <= TERM_MAX_BYTES and not _CONTROL.search(term):
        return term
    return "~" + hashlib.sha256(term.encode("utf-8")).hexdigest()[:40]


def add_fields(schema) -> None:
    from pymilvus import DataType

    schema.add_field(TERMS_FIELD, DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_DOC_TERMS,
                     max_length=TERM_MAX_BYTES + 4)
    for name in (TF_TITLE, TF_TEXT):
        schema.add_field(name, DataType.ARRAY, element_type=DataType.INT64, max_capacity=MAX_DOC_TERMS)
    schema.add_field(LEN_TITLE, DataType.INT64)
    schema.add_field(LEN_TEXT, DataType.INT64)
    schema.add_field(LEN_BITS, DataType.ARRAY, element_type=DataType.INT64, max_capacity=64)
    # no scalar index: milvus-lite refuses one on ARRAY fields (a Milvus cluster takes an
    # INVERTED index on lex_terms and lex_len_bits; docs/SCALE_OUT.md)


def row_fields(cfg: lexical.LexicalConfig, text: str, metadata: dict, where: str) -> dict[str, Any]:
    """The lexical fields of one document's row (InvalidArgument naming `where`.text
    when it has more distinct terms than a Milvus ARRAY holds)."""
    doc = lexical.analyse(cfg, text, metadata)
    tf: dict[str, list[int]] = {}
    for term, (a, b) in doc.tf.items():
        both = tf.setdefault(stored_term(term), [0, 0])
        both[0] += a
        both[1] += b
    if len(tf) > MAX_DOC_TERMS:
        raise InvalidArgument(f"{where}.text", f"has {len(tf)} distinct lexical terms (title included); the "
                              f"Milvus store indexes at most {MAX_DOC_TERMS} per document")
    for length, what in ((doc.len_title, "title"), (doc.len_text, "text")):
        if length >= 1 << BITS:
            raise InvalidArgument(f"{where}.text", f"its {what} has {length} lexical terms; the Milvus store "
                                  f"indexes at most {(1 << BITS) - 1}")
    bits = [i for i in range(BITS) if doc.len_title >> i & 1] + \
        [TEXT_BIT0 + i for i in range(BITS) if doc.len_text >> i & 1]
    return {TERMS_FIELD: list(tf), TF_TITLE: [a for a, _ in tf.values()], TF_TEXT: [b for _, b in tf.values()],
            LEN_TITLE: doc.len_title, LEN_TEXT: doc.len_text, LEN_BITS: bits}


def query_terms(cfg: lexical.LexicalConfig, texts: Iterable[str]) -> list[list[str]]:
    """Each query's distinct stored terms (InvalidArgument naming texts[i] beyond
    MAX_QUERY_TERMS: never a silently shortened query)."""
    out = []
    for i, text in enumerate(texts):
        terms = list(dict.fromkeys(stored_term(t) for t in lexical.query_terms(cfg, text)))
        if len(terms) > MAX_QUERY_TERMS:
            raise InvalidArgument(f"texts[{i}]", f"has {len(terms)} distinct lexical terms; the Milvus store "
                                  f"searches at most {MAX_QUERY_TERMS}")
        size = len(terms_expression(terms).encode("utf-8"))
        if size > MAX_TERMS_EXPRESSION_BYTES:
            raise InvalidArgument(f"texts[{i}]", f"its terms make a {size}-byte Milvus expression; the limit is "
                                  f"{MAX_TERMS_EXPRESSION_BYTES} (fewer or shorter words)")
        out.append(terms)
    return out


def terms_expression(terms: list[str]) -> str:
    return f"array_contains_any({TERMS_FIELD}, [" + ", ".join(literal(t, "texts") for t in terms) + "])"


def corpus_stats(count: Count, fetch: Fetch, scan_max: int | None = None) -> lexical.LexicalStats:
    """N and the summed title / text lengths (cid unused), from Milvus: a collection of
    at most `scan_max` documents by reading every row's two lengths (one query), a
    larger one by counting bits (no rows leave Milvus): sum over bits b of 2^b x
    count(array_contains(lex_len_bits, b)); a group of bits no document has set
    (titles absent, lengths >= 2^HIGH_BIT) costs one count instead of one per bit."""
    n = count("")
    if n <= (SCAN_MAX if scan_max is None else scan_max):
        rows = fetch("", [LEN_TITLE, LEN_TEXT])
        return lexical.LexicalStats(0, len(rows), sum(r[LEN_TITLE] for r in rows),
                                    sum(r[LEN_TEXT] for r in rows), None)

    def bits(base: int, low: int, high: int) -> list[int]:
        return list(range(base + low, base + high))
    groups = [bits(0, 0, HIGH_BIT), bits(0, HIGH_BIT, BITS), bits(TEXT_BIT0, HIGH_BIT, BITS)]
    with ThreadPoolExecutor(8) as pool:
        used = pool.map(lambda g: count(f"array_contains_any({LEN_BITS}, {g})") > 0, groups)
        wanted = bits(TEXT_BIT0, 0, HIGH_BIT) + [b for g, u in zip(groups, list(used)) if u for b in g]
        counts = dict(zip(wanted, pool.map(lambda b: count(f"array_contains({LEN_BITS}, {b})"), wanted)))
    title = sum(c << b for b, c in counts.items() if b < TEXT_BIT0)
    text = sum(c << (b - TEXT_BIT0) for b, c in counts.items() if b >= TEXT_BIT0)
    return lexical.LexicalStats(0, n, title, text, None)


def ranking(cfg: lexical.LexicalConfig, stats: lexical.LexicalStats, terms: list[str], fetch: Fetch,
            filter_expr: str, depth: int) -> list[tuple[str, float]]:
    """The best `depth` (id, BM25) of one query, best first, ties by id; only
    documents matching `filter_expr` ('' = all)."""
    if not terms or not stats.docs:
        return []
    expr = terms_expression(terms)
    rows = fetch(expr, ["id", *FIELDS[:5]])
    ids = sorted(r["id"] for r in rows)
    seq = {doc_id: i for i, doc_id in enumerate(ids)}  # seq order = id order: ties break by id
    wanted = set(terms)
    per_term: dict[str, list[tuple[int, int, int, int, int]]] = {t: [] for t in terms}
    for r in rows:
        s = seq[r["id"]]
        for term, a, b in zip(r[TERMS_FIELD], r[TF_TITLE], r[TF_TEXT]):
            if term in wanted:
                per_term[term].append((s, a, b, r[LEN_TITLE], r[LEN_TEXT]))
    postings = []
    for term in terms:
        arr = np.array(sorted(per_term[term]), dtype=np.int64).reshape(-1, 5)  # (df, 5)
        postings.append(lexical.Postings(*(arr[:, i] for i in range(5))))
    seqs, scores = lexical.bm25(cfg, stats, postings)
    allowed = None
    if filter_expr:
        matching = fetch(f"({expr}) and ({filter_expr})", ["id"])
        allowed = np.array(sorted(seq[r["id"]] for r in matching if r["id"] in seq), dtype=np.int64)
    return [(ids[s], score) for s, score in lexical.top(seqs, scores, depth, allowed)]

