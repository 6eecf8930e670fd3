"""The lexical (BM25) index: an inverted index in plain SQLite tables of the store,
written in the same transaction as the document it indexes, scored here in numpy.

Why plain tables and not FTS5: FTS5's tokenizers re-split the analyzer's terms
(unicode61 cuts at punctuation) and its ``bm25()`` has its own idf (clamped
Robertson) and per-column length normalisation; we want exactly the BM25 the
evaluation harness measures (bm25s, method ``lucene``) over exactly the analyzer's
terms, and a title field folded in BM25F style. So the store keeps

- ``lex_collections``: one row per collection: its lexical config (JSON: analyzer,
  k1, b, title_field, title_weight, text_weight, default mode and hybrid
  parameters), its document count and summed field lengths (for avgdl), and the
  backfill cursor (NULL when every document is indexed);
- ``lex_docs``: one row per indexed document version (seq): field lengths and its
  distinct terms, space-joined (pre-analysed: deleting a version removes exactly
  its postings, without analysing its text again);
- ``lex_postings``: (cid, term, seq) -> term frequency in the title and in the text,
  plus the document's field lengths (a version never changes, so scoring a term is
  one range scan of the clustered primary key, no join).

Scoring (BM25, Lucene's form as in bm25s ``method="lucene"``; Robertson &
Zaragoza 2009 for BM25F):
    tf(d, t)  = title_weight * tf_title + text_weight * tf_text
    len(d)    = title_weight * len_title + text_weight * len_text
    avglen    = mean len(d) over the collection's documents
    idf(t)    = ln(1 + (N - df + 0.5) / (df + 0.5))
    score(d)  = sum over distinct query terms t of
                idf(t) * tf / (tf + k1 * (1 - b + b * len(d) / avglen))
Weights 1 and a document without title equal plain BM25 over the text's terms; an
integer title weight w equals BM25 over the title's terms repeated w times plus the
text's terms (the mapping the bm25s equivalence test uses).
"""
from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from ranksearch.errors import InvalidArgument
from ranksearch.indexer.request import HybridParams, SearchDefaults, check_number

ANALYZERS = ("standard", "ja", "auto")
#: collection ``language`` settings and the analyzer each means
LANGUAGES = {"en": "standard", "ja": "ja", "auto": "auto"}


@dataclass(frozen=True)
class LexicalConfig:
    """A collection's lexical index settings (fixed at creation: the index holds
    terms of this analyzer). k1 and b as bm25s's defaults, so the served BM25 is the
    harness's. ``title_field``: the metadata key whose value is the title field
    ('' = no title field)."""

    analyzer: str = "auto"
    k1: float = 1.5
    b: float = 0.75
    title_field: str = "title"
    title_weight: float = 1.0
    text_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.analyzer not in ANALYZERS:
            raise InvalidArgument("lexical.analyzer", f"must be one of {', '.join(ANALYZERS)} "
                                  f"(or language en, ja, auto), got {self.analyzer!r}")
        for name, high in (("k1", 100.0), ("b", 1.0), ("title_weight", 100.0), ("text_weight", 100.0)):
            check_number(getattr(self, name), f"lexical.{name}", 0.0, high=high)
        if self.title_weight == 0 and self.text_weight == 0:
            raise InvalidArgument("lexical.text_weight", "and lexical.title_weight are both 0")
        if not isinstance(self.title_field, str):
            raise InvalidArgument("lexical.title_field", "must be a string")

    @classmethod
    def for_language(cls, language: str, **kw: Any) -> "LexicalConfig":
        if language not in LANGUAGES:
            raise InvalidArgument("lexical.language", f"must be one of {', '.join(LANGUAGES)}, got {language!r}")
        return cls(analyzer=LANGUAGES[language], **kw)

    def analyzer_obj(self):
        from ranksearch.analysis import get_analyzer

        return get_analyzer(self.analyzer)


@dataclass(frozen=True)
class DocTerms:
    """One document's analysed fields: term -> (tf in title, tf in text), field lengths."""

    tf: dict[str, tuple[int, int]]
    len_title: int
    len_text: int


def analyse(cfg: LexicalConfig, text: str, metadata: Mapping[str, str]) -> DocTerms:
    analyzer = cfg.analyzer_obj()
    title = metadata.get(cfg.title_field, "") if cfg.title_field else ""
    title_terms = analyzer.terms(title) if title else []
    text_terms = analyzer.terms(text)
    x = Counter(text_terms)
    if title_terms:
        t = Counter(title_terms)
        tf = {term: (t.get(term, 0), x.get(term, 0)) for term in t.keys() | x.keys()}
    else:
        tf = {term: (0, count) for term, count in x.items()}
    return DocTerms(tf, len(title_terms), len(text_terms))


def query_terms(cfg: LexicalConfig, text: str) -> list[str]:
    """The distinct terms of a query, in order of first occurrence."""
    return list(dict.fromkeys(cfg.analyzer_obj().terms(text)))


# -- the collection row --------------------------------------------------------------------
def encode_config(lexical: LexicalConfig, defaults: SearchDefaults) -> str:
    return json.dumps({"lexical": asdict(lexical), "default_mode": defaults.mode,
                       "hybrid": defaults.hybrid.to_dict()}, sort_keys=True)


def decode_config(text: str) -> tuple[LexicalConfig, SearchDefaults]:
    data = json.loads(text)
    return (LexicalConfig(**data.get("lexical", {})),
            SearchDefaults(data.get("default_mode", "nearest"), HybridParams(**data.get("hybrid", {}))))



@dataclass
class LexicalStats:
    """What a search needs from the collection row (read in the search's snapshot)."""

    cid: int
    docs: int
    len_title: int
    len_text: int
    backfill_after: int | None

    @property
    def ready(self) -> bool:
        return self.backfill_after is None


def read_stats(conn: sqlite3.Connection, collection: str) -> LexicalStats | None:
    row = conn.execute("SELECT cid, docs, len_title, len_text, backfill_after FROM lex_collections "
                       "WHERE collection = ?", (collection,)).fetchone()
    return None if row is None else LexicalStats(*row)


# -- writes (inside the store's open transaction) --------------------------------------------
def insert_docs(conn: sqlite3.Connection, cid: int, docs: list[tuple[int, DocTerms]]) -> None:
    """Index document versions (seq, terms): one statement per table for the whole
    batch, postings sorted by key so they land in the b-tree in order."""
    if not docs:
        return
    conn.executemany("INSERT INTO lex_docs (seq, cid, len_title, len_text, terms) VALUES (?, ?, ?, ?, ?)",
                     [(seq, cid, d.len_title, d.len_text, " ".join(d.tf)) for seq, d in docs])
    rows = [(cid, term, seq, a, b, d.len_title, d.len_text) for seq, d in docs for term, (a, b) in d.tf.items()]
    rows.sort()  # by (cid, term, seq): the primary key
    conn.executemany("INSERT INTO lex_postings (cid, term, seq, tf_title, tf_text, len_title, len_text) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("UPDATE lex_collections SET docs = docs + ?, len_title = len_title + ?, "
                 "len_text = len_text + ? WHERE cid = ?",
                 (len(docs), sum(d.len_title for _, d in docs), sum(d.len_text for _, d in docs), cid))


def delete_docs(conn: sqlite3.Connection, seqs: list[int]) -> None:
    """Remove document versions' postings (those never indexed are skipped)."""
    for seq in seqs:
        row = conn.execute("SELECT cid, len_title, len_text, terms FROM lex_docs WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            continue
        cid, len_title, len_text, terms = row
        conn.executemany("DELETE FROM lex_postings WHERE cid = ? AND term = ? AND seq = ?",
                         [(cid, term, seq) for term in terms.split()])
        conn.execute("DELETE FROM lex_docs WHERE seq = ?", (seq,))
        conn.execute("UPDATE lex_collections SET docs = docs - 1, len_title = len_title - ?, "
                     "len_text = len_text - ? WHERE cid = ?", (len_title, len_text, cid))


# -- scoring ------------------------------------------------------------------------------------
@dataclass
class Postings:
    """One term's postings in one collection: (n,) arrays."""

    seqs: np.ndarray
    tf_title: np.ndarray
    tf_text: np.ndarray
    len_title: np.ndarray
    len_text: np.ndarray


def read_postings(conn: sqlite3.Connection, cid: int, term: str) -> Postings:
    rows = conn.execute("SELECT seq, tf_title, tf_text, len_title, len_text FROM lex_postings "
                        "WHERE cid = ? AND term = ?", (cid, term)).fetchall()
    arr = np.array(rows, dtype=np.int64).reshape(len(rows), 5)  # (n, 5)
    return Postings(*(arr[:, i] for i in range(5)))


def bm25(cfg: LexicalConfig, stats: LexicalStats, postings: Iterable[Postings]) -> tuple[np.ndarray, np.ndarray]:
    """BM25 of every document containing a query term: (seqs (m,), scores (m,) float64),
    seqs ascending. ``postings``: one entry per distinct query term."""
    n = stats.docs
    avglen = (cfg.title_weight * stats.len_title + cfg.text_weight * stats.len_text) / n if n else 0.0
    seqs, parts = [], []
    for p in postings:
        if len(p.seqs) == 0 or avglen <= 0:
            continue
        idf = math.log(1.0 + (n - len(p.seqs) + 0.5) / (len(p.seqs) + 0.5))
        tf = cfg.title_weight * p.tf_title + cfg.text_weight * p.tf_text  # (n_t,)
        length = cfg.title_weight * p.len_title + cfg.text_weight * p.len_text  # (n_t,)
        parts.append(idf * tf / (tf + cfg.k1 * (1.0 - cfg.b + cfg.b * length / avglen)))
        seqs.append(p.seqs)
    if not seqs:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    all_seqs = np.concatenate(seqs)
    unique, inverse = np.unique(all_seqs, return_inverse=True)
    scores = np.bincount(inverse, weights=np.concatenate(parts), minlength=len(unique))  # (m,)
    return unique, scores


def top(seqs: np.ndarray, scores: np.ndarray, depth: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
    """Best ``depth`` (seq, score), best first, ties by seq; only ``allowed`` seqs
    (sorted) when given."""
    if allowed is not None:
        keep = np.isin(seqs, allowed, assume_unique=True)
        seqs, scores = seqs[keep], scores[keep]
    if len(seqs) > depth:
        cut = np.argpartition(-scores, depth - 1)[:depth]
        threshold = scores[cut].min()
        # keep every tie at the threshold so the seq tie-break stays deterministic
        keep = scores >= threshold
        seqs, scores = seqs[keep], scores[keep]
    order = np.lexsort((seqs, -scores))[:depth]
    return list(zip(seqs[order].tolist(), scores[order].tolist()))
