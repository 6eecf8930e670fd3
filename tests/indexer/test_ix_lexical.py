"""The lexical index and the lexical / hybrid modes, on a real SQLite file and real
FAISS: BM25 equals bm25s over the same terms, hybrid RRF equals ranx's, filters,
offset and min_score in every mode, Japanese analysis, explain, writes visible to the
next search, and the resumable background backfill of older collections."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from ixhelpers import unit
from ranksearch.analysis import get_analyzer
from ranksearch.errors import InvalidArgument, Unavailable
from ranksearch.indexer import (Document, HybridParams, Indexer, IndexerConfig, LexicalConfig, SearchRequest,
                                VariantSpec)
from ranksearch.indexer import indexer as indexer_module
from ranksearch.indexer.store import DB_NAME

WORDS = ("file path read write socket thread lock queue json parse date time zone string format "
         "number random list dict set tuple sort search index table row column query").split()


def corpus(n: int, seed: int = 0) -> list[Document]:
    """Documents of 5..30 words drawn with Zipf-like frequencies, some with a title."""
    rng = np.random.default_rng(seed)
    p = 1 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()
    out = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(5, 31)), p=p))
        meta = {"g": str(i % 3)}
        if i % 4 == 0:
            meta["title"] = " ".join(rng.choice(WORDS, size=3))
        out.append(Document(f"d{i}", text, meta))
    return out


QUERIES = ["socket thread", "json parse date", "random sort", "zone column query", "file",
           "lock queue table", "string format number", "tuple dict", "row search index", "write path"]


def lexical_collection(ix: Indexer, docs: list[Document], dim: int = 8, **lex) -> np.ndarray:
    """Collection "c" with the standard analyzer; returns the documents' vectors (n, dim)."""
    ix.create_collection("c", [VariantSpec("v", dim)],
                         lexical_config=LexicalConfig(analyzer="standard", **lex))
    x = unit(np.random.default_rng(1), len(docs), dim)
    ix.upsert("c", docs, {"v": x})
    return x


def bm25s_reference(docs: list[Document], queries: list[str], k: int, title_weight: int = 1,
                    k1: float = 1.5, b: float = 0.75) -> list[list[tuple[str, float]]]:
    """An independent BM25 (bm25s, method lucene) over the same analyzer's terms:
    a title field of integer weight w is the title's terms repeated w times."""
    import bm25s

    terms = get_analyzer("standard").terms
    tokens = [terms(d.metadata.get("title", "")) * title_weight + terms(d.text) for d in docs]
    retriever = bm25s.BM25(k1=k1, b=b, method="lucene", dtype="float64")
    retriever.index(tokens, show_progress=False)
    out = []
    for q in queries:
        q_terms = list(dict.fromkeys(terms(q)))
        idx, scores = retriever.retrieve([q_terms], k=k, show_progress=False, n_threads=1)
        out.append([(docs[int(i)].id, float(s)) for i, s in zip(idx[0], scores[0]) if s > 0])
    return out


def _same_ranking(got, want):
    """Same scores rank by rank (within 1e-5) and the same ids in the same order, up to
    the order inside a run of equal scores (and which of a tie at the cut made it)."""
    assert len(got) == len(want)
    for (_, gs), (_, ws) in zip(got, want):
        assert gs == pytest.approx(ws, abs=1e-5)
    if not got:
        return
    last = round(want[-1][1], 6)
    by_score = lambda run: sorted((round(s, 6), i) for i, s in run if round(s, 6) > last)  # noqa: E731
    assert by_score(got) == by_score(want)


@pytest.mark.parametrize("title_weight, k1, b", [(1, 1.5, 0.75), (2, 1.2, 0.5)])
def test_lexical_equals_bm25s_over_the_same_terms(ix, title_weight, k1, b):
    docs = corpus(60)
    lexical_collection(ix, docs, title_weight=title_weight, k1=k1, b=b)
    hits = ix.search("c", SearchRequest(mode="lexical", k=10), texts=QUERIES)
    want = bm25s_reference(docs, QUERIES, 10, title_weight, k1, b)
    for row, ref in zip(hits, want):
        _same_ranking([(h.id, h.score) for h in row], ref)


def test_replace_and_delete_are_visible_to_the_next_lexical_search(ix):
    docs = corpus(20)
    x = lexical_collection(ix, docs)
    ix.upsert("c", [Document("d3", "zebra crossing"), Document("new", "zebra giraffe")], {"v": x[:2]})
    ix.delete("c", ["d5"])
    lex = lambda q: [h.id for h in ix.search("c", SearchRequest(mode="lexical", k=50), texts=[q])[0]]  # noqa: E731
    assert set(lex("zebra")) == {"d3", "new"}
    assert lex("giraffe") == ["new"]
    assert "d3" not in lex(docs[3].text)  # its old words are gone with the old version
    assert "d5" not in lex(docs[5].text)
    # the collection statistics follow: the same as an index built from the current documents
    current = [d for d in docs if d.id not in ("d3", "d5")] + [Document("d3", "zebra crossing"),
                                                                Document("new", "zebra giraffe")]
    got = ix.search("c", SearchRequest(mode="lexical", k=10), texts=QUERIES)
    for row, ref in zip(got, bm25s_reference(current, QUERIES, 10)):
        _same_ranking([(h.id, h.score) for h in row], ref)
    assert ix.verify()["ok"]


def test_hybrid_rrf_equals_ranx_rrf_over_the_same_two_runs(ix):
    from ranx import Run, fuse

    docs = corpus(80)
    lexical_collection(ix, docs)
    q_vecs = unit(np.random.default_rng(7), len(QUERIES), 8)
    depth = 30
    dense = ix.search("c", SearchRequest(mode="nearest", k=depth), q_vecs)
    lex = ix.search("c", SearchRequest(mode="lexical", k=depth), texts=QUERIES)
    params = HybridParams(fusion="rrf", rrf_k=60, dense_candidates=depth, lexical_candidates=depth)
    hybrid = ix.search("c", SearchRequest(mode="hybrid", k=20, hybrid=params), q_vecs, QUERIES)
    # the runs as ranked (RRF reads ranks only; equal BM25 scores are ranked by seq here)
    run = lambda rows: Run({f"q{i}": {h.id: float(depth - r) for r, h in enumerate(row)}  # noqa: E731
                            for i, row in enumerate(rows)})
    fused = fuse([run(dense), run(lex)], method="rrf", params={"k": 60}).to_dict()
    for i, row in enumerate(hybrid):
        want = sorted(fused[f"q{i}"].items(), key=lambda kv: -kv[1])[:20]
        _same_ranking([(h.id, h.score) for h in row], want)


def test_weighted_fusion_equals_ranx_wsum(ix):
    from ranx import Run, fuse

    docs = corpus(50)
    lexical_collection(ix, docs)
    q_vecs = unit(np.random.default_rng(8), len(QUERIES), 8)
    dense = ix.search("c", SearchRequest(k=20), q_vecs)
    lex = ix.search("c", SearchRequest(mode="lexical", k=20), texts=QUERIES)
    run = lambda rows: Run({f"q{i}": {h.id: h.score for h in row} for i, row in enumerate(rows)})  # noqa: E731
    for norm, ranx_norm in (("minmax", "min-max"), ("zscore", "zmuv")):
        params = HybridParams(fusion="weighted", normalization=norm, dense_weight=0.3, lexical_weight=0.7,
                              dense_candidates=20, lexical_candidates=20)
        hybrid = ix.search("c", SearchRequest(mode="hybrid", k=10, hybrid=params), q_vecs, QUERIES)
        fused = fuse([run(dense), run(lex)], norm=ranx_norm, method="wsum",
                     params={"weights": [0.3, 0.7]}).to_dict()
        for i, row in enumerate(hybrid):
            want = sorted(fused[f"q{i}"].items(), key=lambda kv: -kv[1])[:10]
            _same_ranking([(h.id, h.score) for h in row], want)


@pytest.mark.parametrize("mode", ["nearest", "lexical", "hybrid"])
def test_filter_offset_and_min_score_in_every_mode(ix, mode):
    docs = corpus(60)
    lexical_collection(ix, docs)
    q = unit(np.random.default_rng(9), 1, 8)
    text = ["socket thread json file"]

    def search(**kw):
        return ix.search("c", SearchRequest(mode=mode, **kw), q, text)[0]

    full = search(k=30)
    assert len(full) >= 12
    scores = [h.score for h in full]
    assert scores == sorted(scores, reverse=True)
    page = search(k=5, offset=5)
    assert [h.id for h in page] == [h.id for h in full[5:10]]
    cut = full[6].score
    assert [h.id for h in search(k=30, min_score=cut)] == [h.id for h in full if h.score >= cut]
    only = search(k=30, filter={"g": "1"})
    assert only and all(h.metadata["g"] == "1" for h in only)
    if mode != "hybrid":  # a single retriever: the filtered ranking is the full one, filtered
        expected = [h.id for h in full if h.metadata["g"] == "1"]
        assert [h.id for h in only][:len(expected)] == expected
    assert search(k=5, filter={"g": "nobody"}) == []


def test_explain_carries_each_retrievers_rank_and_score(ix):
    docs = corpus(40)
    lexical_collection(ix, docs)
    q = unit(np.random.default_rng(3), 1, 8)
    text = ["json parse date"]
    dense = ix.search("c", SearchRequest(k=100), q)[0]
    lex = ix.search("c", SearchRequest(mode="lexical", k=100), texts=text)[0]
    hybrid = ix.search("c", SearchRequest(mode="hybrid", k=10, explain=True), q, text)[0]
    d_rank = {h.id: (r, h.score) for r, h in enumerate(dense, start=1)}
    l_rank = {h.id: (r, h.score) for r, h in enumerate(lex, start=1)}
    for h in hybrid:
        e = h.explain
        assert (e.dense_rank, e.dense_score) == pytest.approx(d_rank.get(h.id, (0, 0.0)))
        assert (e.lexical_rank, e.lexical_score) == pytest.approx(l_rank.get(h.id, (0, 0.0)))
        assert h.score == pytest.approx((1 / (60 + e.dense_rank) if e.dense_rank else 0)
                                        + (1 / (60 + e.lexical_rank) if e.lexical_rank else 0))
    assert ix.search("c", SearchRequest(k=3), q)[0][0].explain is None
    lexical_only = ix.search("c", SearchRequest(mode="lexical", k=3, explain=True), texts=text)[0]
    assert [h.explain.lexical_rank for h in lexical_only] == [1, 2, 3]
    assert all(h.explain.dense_rank == 0 for h in lexical_only)


def test_japanese_lexical_query_through_the_ja_analyzer(ix):
    docs = [Document("a", "ファイルを一行ずつ読み込む方法"), Document("b", "日付と時刻を文字列に変換する"),
            Document("c", "ソケットで通信するサーバーを書く"), Document("d", "JSON を解析してオブジェクトにする")]
    ix.create_collection("ja", [VariantSpec("v", 4)], lexical_config=LexicalConfig.for_language("ja"))
    ix.upsert("ja", docs, {"v": unit(np.random.default_rng(0), 4, 4)})
    hit = lambda q: [h.id for h in ix.search("ja", SearchRequest(mode="lexical", k=2), texts=[q])[0]]  # noqa: E731
    assert hit("ファイルを読み込みたい")[0] == "a"  # 読み込む / 読み込み share a normalised form
    assert hit("時刻の変換")[0] == "b"
    assert hit("サーバー")[0] == "c"


def test_mode_unset_takes_the_collections_default(ix):
    from ranksearch.indexer import SearchDefaults

    ix.create_collection("h", [VariantSpec("v", 8)], lexical_config=LexicalConfig(analyzer="standard"),
                         defaults=SearchDefaults(mode="hybrid", hybrid=HybridParams(rrf_k=10)))
    docs = corpus(30)
    ix.upsert("h", docs, {"v": unit(np.random.default_rng(0), 30, 8)})
    q = unit(np.random.default_rng(1), 1, 8)
    default = ix.search("h", SearchRequest(mode=None, k=5, explain=True), q, ["socket"])[0]
    explicit = ix.search("h", SearchRequest(mode="hybrid", k=5, explain=True,
                                            hybrid=HybridParams(rrf_k=10)), q, ["socket"])[0]
    assert [(h.id, h.score) for h in default] == [(h.id, h.score) for h in explicit]
    assert ix.get_collection("h").defaults.mode == "hybrid"
    with pytest.raises(InvalidArgument) as exc:
        ix.search("h", SearchRequest(mode=None, k=5), q)  # hybrid by default: needs the text
    assert exc.value.field == "texts"


def test_backfill_of_an_older_collection_is_resumable_and_visible(tmp_path, monkeypatch):
    """A collection from before the lexical index (format 2) is indexed in the
    background: lexical searches answer UNAVAILABLE with the progress until it is
    complete, the progress survives a restart, and the result equals an index
    written document by document."""
    data = tmp_path / "data"
    cfg = IndexerConfig(snapshot_interval_s=0)
    docs = corpus(40)
    with Indexer(data, cfg) as ix:
        lexical_collection(ix, docs)
    conn = sqlite3.connect(data / DB_NAME)  # make it look like a collection from format 2
    with conn:
        conn.execute("DELETE FROM lex_postings")
        conn.execute("DELETE FROM lex_docs")
        conn.execute("UPDATE lex_collections SET docs = 0, len_title = 0, len_text = 0, backfill_after = 0")
    conn.close()

    monkeypatch.setattr(indexer_module, "BACKFILL_CHUNK", 15)
    monkeypatch.setattr(Indexer, "_backfill_loop", lambda self: None)  # chunks run by hand below
    with Indexer(data, cfg) as ix:
        assert ix.stats()["collections"]["c"]["lexical"] == {
            "analyzer": "standard", "documents": 0, "ready": False, "default_mode": "nearest"}
        with pytest.raises(Unavailable) as exc:
            ix.search("c", SearchRequest(mode="lexical", k=3), texts=["file"])
        assert exc.value.field == "mode" and "0 of 40 documents" in exc.value.message
        assert ix.search("c", SearchRequest(k=3), unit(np.random.default_rng(0), 1, 8))[0]  # dense works
        assert ix._backfill_chunk("c") is False
    with Indexer(data, cfg) as ix:  # restart: resumes after the 15 done
        assert ix.stats()["collections"]["c"]["lexical"]["documents"] == 15
        ix.delete("c", ["d20"])  # writes go on during the backfill
        ix.upsert("c", [Document("d30", "zebra")], {"v": unit(np.random.default_rng(0), 1, 8)})
        while not ix._backfill_chunk("c"):
            pass
        assert ix.stats()["collections"]["c"]["lexical"]["ready"]
        assert ix.verify()["ok"]
        current = [d for d in docs if d.id not in ("d20", "d30")] + [Document("d30", "zebra")]
        got = ix.search("c", SearchRequest(mode="lexical", k=10), texts=QUERIES)
        for row, ref in zip(got, bm25s_reference(current, QUERIES, 10)):
            _same_ranking([(h.id, h.score) for h in row], ref)


def test_backfill_thread_completes_on_open(tmp_path):
    data = tmp_path / "data"
    cfg = IndexerConfig(snapshot_interval_s=0)
    with Indexer(data, cfg) as ix:
        lexical_collection(ix, corpus(30))
    conn = sqlite3.connect(data / DB_NAME)
    with conn:
        conn.execute("DELETE FROM lex_postings")
        conn.execute("DELETE FROM lex_docs")
        conn.execute("UPDATE lex_collections SET docs = 0, len_title = 0, len_text = 0, backfill_after = 0")
    conn.close()
    with Indexer(data, cfg) as ix:
        assert ix.wait_for_backfill(timeout=60)
        assert ix.search("c", SearchRequest(mode="lexical", k=1), texts=["file"])[0]
