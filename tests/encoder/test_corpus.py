"""Built-in stdlib corpus, the BEIR loader and plain JSONL document import."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ranksearch.encoder import corpus as corpus_mod
from ranksearch.encoder.corpus import (
    build_stdlib_corpus,
    corpus_stats,
    iter_documents,
    load_beir,
    resolve_corpus,
)
from ranksearch.errors import InvalidArgument

SUBSET = ["json", "textwrap", "heapq", "bisect"]


def write_beir(root: Path, corpus_lines: list[str], query_lines: list[str], qrels: dict[str, str]) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("\n".join(corpus_lines) + "\n", encoding="utf-8")
    (root / "queries.jsonl").write_text("\n".join(query_lines) + "\n", encoding="utf-8")
    for split, text in qrels.items():
        (root / "qrels" / f"{split}.tsv").write_text(text, encoding="utf-8")
    return root


GOOD_CORPUS = [
    json.dumps({"_id": "d1", "title": "One", "text": "first document"}),
    json.dumps({"_id": "d2", "text": "second document"}),
]
GOOD_QUERIES = [json.dumps({"_id": "q1", "text": "first?"}), json.dumps({"_id": "q2", "text": "second?"})]
HEADER = "query-id\tcorpus-id\tscore\n"


def test_load_beir_reads_a_valid_folder(tmp_path):
    root = write_beir(tmp_path / "b", GOOD_CORPUS, GOOD_QUERIES, {"test": HEADER + "q1\td1\t1\n", "train": HEADER + "q2\td2\t1\n"})
    beir = load_beir(root)
    assert beir.corpus == {"d1": {"title": "One", "text": "first document"}, "d2": {"title": "", "text": "second document"}}
    assert beir.queries == {"q1": "first?"}  # only the split's queries
    assert beir.qrels == {"q1": {"d1": 1}}
    assert load_beir(root, split="train").qrels == {"q2": {"d2": 1}}


@pytest.mark.parametrize(
    "corpus_lines, message",
    [
        ([GOOD_CORPUS[0], "{not json"], "corpus.jsonl:2: invalid JSON"),
        ([GOOD_CORPUS[0], json.dumps({"text": "x"})], "corpus.jsonl:2: _id: missing"),
        ([GOOD_CORPUS[0], json.dumps({"_id": "d2"})], "corpus.jsonl:2: text: missing"),
        ([GOOD_CORPUS[0], GOOD_CORPUS[0]], "corpus.jsonl:2: _id: duplicate 'd1'"),
        ([GOOD_CORPUS[0], "[1, 2]"], "corpus.jsonl:2: expected a JSON object"),
    ],
)
def test_bad_corpus_lines_name_file_and_line(tmp_path, corpus_lines, message):
    root = write_beir(tmp_path / "b", corpus_lines, GOOD_QUERIES, {"test": HEADER + "q1\td1\t1\n"})
    with pytest.raises(InvalidArgument) as err:
        load_beir(root)
    assert message in str(err.value)
    assert err.value.field.endswith(message.split(": ")[0])


@pytest.mark.parametrize(
    "qrels, message",
    [
        ("q1\td1\t1\n", "test.tsv:1: expected the header row"),
        (HEADER + "q1\td1\n", "test.tsv:2: expected 3 tab-separated columns, got 2"),
        (HEADER + "q1\td1\thigh\n", "test.tsv:2: score must be an integer, got 'high'"),
        (HEADER + "q1\td1\t1\nq1\tnope\t1\n", "test.tsv:3: corpus-id 'nope' is not in corpus.jsonl"),
        (HEADER + "qx\td1\t1\n", "test.tsv:2: query-id 'qx' is not in queries.jsonl"),
    ],
)
def test_bad_qrels_rows_name_file_and_line(tmp_path, qrels, message):
    root = write_beir(tmp_path / "b", GOOD_CORPUS, GOOD_QUERIES, {"test": qrels})
    with pytest.raises(InvalidArgument, match=message):
        load_beir(root)


def test_non_strict_load_reports_dangling_qrels_instead_of_dropping_silently(tmp_path):
    root = write_beir(tmp_path / "b", GOOD_CORPUS, GOOD_QUERIES, {"test": HEADER + "q1\td1\t1\nq1\tgone\t1\nq9\td2\t1\n"})
    beir = load_beir(root, strict=False)
    assert beir.qrels == {"q1": {"d1": 1}}
    assert len(beir.problems) == 2
    assert "test.tsv:3: corpus-id 'gone' is not in corpus.jsonl" in beir.problems[0]
    assert "test.tsv:4: query-id 'q9' is not in queries.jsonl" in beir.problems[1]


def test_missing_qrels_file_names_the_path_and_the_available_splits(tmp_path):
    root = write_beir(tmp_path / "b", GOOD_CORPUS, GOOD_QUERIES, {"train": HEADER + "q1\td1\t1\n"})
    with pytest.raises(InvalidArgument) as err:
        load_beir(root, split="dev")
    assert err.value.field == str(root / "qrels" / "dev.tsv")
    assert "available splits: train" in str(err.value)


def test_missing_corpus_file_and_folder_are_named(tmp_path):
    root = write_beir(tmp_path / "b", GOOD_CORPUS, GOOD_QUERIES, {"test": HEADER})
    (root / "corpus.jsonl").unlink()
    with pytest.raises(InvalidArgument, match="corpus.jsonl: file not found"):
        load_beir(root)
    with pytest.raises(InvalidArgument, match="not a BEIR folder"):
        load_beir(tmp_path / "nowhere")


def test_iter_documents_reads_plain_jsonl_and_validates(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(
        json.dumps({"id": "a", "text": "alpha", "metadata": {"lang": "en"}}) + "\n\n"
        + json.dumps({"_id": "b", "text": "beta", "title": "B"}) + "\n",
        encoding="utf-8",
    )
    docs = list(iter_documents(path))
    assert [(d.id, d.text, d.title, d.metadata) for d in docs] == [("a", "alpha", "", {"lang": "en"}), ("b", "beta", "B", {})]

    path.write_text(json.dumps({"id": "a", "text": "x", "metadata": {"n": 3}}) + "\n", encoding="utf-8")
    with pytest.raises(InvalidArgument, match=r"docs.jsonl:1: metadata.n: must be a string, got int"):
        list(iter_documents(path))
    path.write_text(json.dumps({"id": "a", "text": "x"}) + "\n" + json.dumps({"id": "a", "text": "y"}) + "\n", encoding="utf-8")
    with pytest.raises(InvalidArgument, match="docs.jsonl:2: id: duplicate 'a' \\(first at .*docs.jsonl:1\\)"):
        list(iter_documents(path))
    path.write_text(json.dumps({"title": "no id", "text": "y"}) + "\n", encoding="utf-8")
    with pytest.raises(InvalidArgument, match="docs.jsonl:1: id: missing"):
        list(iter_documents(path))


def test_iter_documents_accepts_a_beir_folder(tmp_path):
    root = write_beir(tmp_path / "b", GOOD_CORPUS, GOOD_QUERIES, {"test": HEADER})
    assert [d.id for d in iter_documents(root)] == ["d1", "d2"]


def test_split_doc_drops_signature_paragraph_and_splits_first_sentence():
    doc = "dumps(obj) -> str\n\nSerialize obj to a JSON string. Uses the default encoder.\n\nMore text here."
    assert corpus_mod._split_doc(doc) == ("Serialize obj to a JSON string.", "Uses the default encoder.\n\nMore text here.")
    assert corpus_mod._split_doc("Return x, e.g. a number. Then more.")[0] == "Return x, e.g. a number."
    assert corpus_mod._split_doc("f(x)") is None


def test_stdlib_build_is_deterministic_and_loadable(tmp_path):
    a = build_stdlib_corpus(tmp_path / "a", modules=SUBSET)
    b = build_stdlib_corpus(tmp_path / "b", modules=SUBSET)
    for rel in ("corpus.jsonl", "queries.jsonl", "qrels/train.tsv", "qrels/test.tsv"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    train, test = load_beir(a, "train"), load_beir(a, "test")
    assert test.queries and train.queries
    assert not set(train.queries) & set(test.queries)
    assert "json.dumps" in test.corpus
    for qid, rel in {**train.qrels, **test.qrels}.items():
        (doc_id,) = rel
        assert qid == f"q:{doc_id}"
        # known-item: the query (summary sentence) is not part of the document text
        query = {**train.queries, **test.queries}[qid]
        assert query not in test.corpus[doc_id]["text"]
    texts = [d["text"] for d in test.corpus.values()]
    assert len(texts) == len(set(texts))
    assert not any("0x" in t and "at 0x" in t for t in texts)
    stats = corpus_stats(a)
    assert stats["documents"] == len(test.corpus)
    assert stats["splits"]["test"]["queries"] == len(test.queries)


def test_resolve_corpus_builds_builtin_once_into_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RANKSEARCH_CACHE", str(tmp_path / "cache"))
    calls = []
    real = corpus_mod.build_stdlib_corpus

    def small_build(out, modules=None):
        calls.append(out)
        return real(out, modules=SUBSET)

    monkeypatch.setattr(corpus_mod, "build_stdlib_corpus", small_build)
    first = resolve_corpus("stdlib")
    assert first == tmp_path / "cache" / "corpora" / first.name
    assert first.name.startswith("stdlib-py3.")
    assert (first / "corpus.jsonl").is_file()
    assert resolve_corpus("stdlib") == first
    assert len(calls) == 1
    # no temporary build folders are left behind
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name]


def test_resolve_corpus_checks_paths(tmp_path):
    assert resolve_corpus(tmp_path) == tmp_path
    with pytest.raises(InvalidArgument) as err:
        resolve_corpus(tmp_path / "missing")
    assert err.value.field == "corpus"
    assert "missing does not exist" in str(err.value)
