"""Lexical and hybrid search through a real server on a free loopback port (real
SQLite, real FAISS, the tiny real encoder): modes, explain, filters / offset /
min_score per mode, BatchSearch, collection defaults from CreateCollection and from
the config file, Japanese through the ja analyzer, Stats, and the CLI."""
from __future__ import annotations

import json

import pytest

from ranksearch.cli import main
from ranksearch.client import Document, Hybrid

DOCS = [
    Document("read", "read a text file line by line", {"kind": "io"}),
    Document("write", "write bytes to a binary file", {"kind": "io"}),
    Document("sort", "sort a list of numbers in place", {"kind": "algo"}),
    Document("hash", "compute a sha256 digest of a string", {"kind": "crypto"}),
    Document("json", "serialise an object to json text", {"kind": "fmt"}),
    Document("date", "parse a date string with a timezone", {"kind": "fmt"}),
    Document("sock", "open a tcp socket and send bytes", {"kind": "io"}),
    Document("zip", "compress a folder into a zip archive", {"kind": "io"}),
]


@pytest.fixture
def client(server):
    c = server.client()
    c.create_collection("lex", analyzer="standard")
    c.upsert("lex", DOCS)
    return c


def test_lexical_and_hybrid_modes_answer_and_say_which_mode(client):
    lex = client.search("sha256 digest", collection="lex", mode="lexical", k=3)
    assert lex.mode == "lexical" and lex.variant == "" and lex.hits[0].id == "hash"
    dense = client.search("sha256 digest", collection="lex", k=3)
    assert dense.mode == "nearest" and dense.variant == "default"
    hybrid = client.search("sha256 digest", collection="lex", mode="hybrid", k=3, explain=True)
    assert hybrid.mode == "hybrid" and hybrid.hits[0].id == "hash"
    for h in hybrid.hits:
        e = h.explain
        rrf = sum(1 / (60 + r) for r in (e["dense_rank"], e["lexical_rank"]) if r)
        assert h.score == pytest.approx(rrf, rel=1e-6)
    assert dense.hits[0].explain is None
    batch = client.batch_search(["zip archive", "json"], collection="lex", mode="lexical", k=1)
    assert [r.hits[0].id for r in batch] == ["zip", "json"] and batch[0].mode == "lexical"


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_filter_offset_and_min_score_per_mode(client, mode):
    query = "a file with bytes and text string"
    full = client.search(query, collection="lex", mode=mode, k=8).hits
    assert len(full) >= 4
    page = client.search(query, collection="lex", mode=mode, k=2, offset=1).hits
    assert [h.id for h in page] == [h.id for h in full[1:3]]
    cut = full[2].score
    kept = client.search(query, collection="lex", mode=mode, k=8, min_score=cut).hits
    assert [h.id for h in kept] == [h.id for h in full if h.score >= cut - 1e-6]
    io = client.search(query, collection="lex", mode=mode, k=8, filter={"kind": "io"}).hits
    assert io and {h.metadata["kind"] for h in io} == {"io"}


def test_weighted_fusion_and_candidate_depth(client):
    hits = client.search("sort numbers in a string", collection="lex", mode="hybrid", k=3, explain=True,
                         hybrid=Hybrid(fusion="weighted", normalization="minmax", dense_weight=0.0,
                                       lexical_weight=1.0, dense_candidates=2, lexical_candidates=2)).hits
    # dense weight 0: the lexical run alone orders the hits (min-max: best = 1.0)
    assert hits[0].id == "sort" and hits[0].score == pytest.approx(1.0)
    assert all(h.explain["dense_rank"] <= 2 and h.explain["lexical_rank"] <= 2 for h in hits)


def test_collection_default_mode_gives_hybrid_without_changing_calls(server):
    c = server.client()
    info = c.create_collection("hyb", analyzer="standard", default_mode="hybrid",
                               default_hybrid=Hybrid(rrf_k=10))
    assert info.default_mode == 3 and info.default_hybrid.rrf_k == 10 and info.lexical.analyzer == "standard"
    c.upsert("hyb", DOCS)
    plain = c.search("zip archive", collection="hyb", k=3, explain=True)  # an unchanged call
    assert plain.mode == "hybrid" and plain.hits[0].id == "zip"
    e = plain.hits[0].explain
    assert plain.hits[0].score == pytest.approx(sum(1 / (10 + r) for r in (e["dense_rank"], e["lexical_rank"]) if r))
    assert c.search("zip archive", collection="hyb", mode="dense", k=3).mode == "nearest"


def test_japanese_lexical_query_through_the_ja_analyzer(server):
    c = server.client()
    c.create_collection("ja", language="ja")
    c.upsert("ja", [Document("file", "ファイルを一行ずつ読み込む"), Document("date", "日付を文字列に変換する"),
                    Document("net", "ソケットでデータを送信する")])
    hits = c.search("ファイルの読み込み", collection="ja", mode="lexical", k=1).hits
    assert [h.id for h in hits] == ["file"]
    assert c.search("日付の変換", collection="ja", mode="hybrid", k=1).hits[0].id == "date"


def test_configured_collection_takes_its_search_defaults(make_server):
    server = make_server(collections=[{"name": "notes", "language": "en", "default_mode": "lexical"}])
    c = server.client()
    c.upsert("notes", DOCS)
    result = c.search("timezone", collection="notes", k=1)
    assert result.mode == "lexical" and result.hits[0].id == "date"
    stats = c.stats("notes").collections[0].lexical
    assert (stats.analyzer, stats.documents, stats.ready, stats.state) == ("standard", len(DOCS), True, "ready")


def test_cli_query_mode_and_explain(client, server, capsys):
    code = main(["query", "sha256 digest", "--collection", "lex", "--mode", "hybrid", "--explain", "--k", "2",
                 "--server", server.address])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[0] == "# variant: default  mode: hybrid"
    assert out[1].split()[2] == "hash" and "lexical #1" in out[1]
    code = main(["query", "sha256", "--collection", "lex", "--mode", "lexical", "--json",
                 "--server", server.address])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["mode"] == "lexical" and data["hits"][0]["id"] == "hash"
