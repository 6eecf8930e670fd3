"""`ranksearch train | convert | corpus` through the real console entry point."""
from __future__ import annotations

import json

import numpy as np

from ranksearch.cli import main
from ranksearch.encoder.corpus import write_beir
from ranksearch.encoder.embedder import load_encoder

TEXTS = [
    ("sqrt", "Return the square root of x as a floating point number"),
    ("dumps", "Serialize an object to a JSON formatted string using the encoder"),
    ("open", "Open a file and return a stream object for reading or writing"),
    ("sleep", "Delay execution of the current thread for a number of seconds"),
    ("sort", "Sort the list in place using only less than comparisons"),
    ("join", "Concatenate any number of strings with a separator between them"),
]


def tiny_beir(root):
    corpus = [{"_id": n, "title": n, "text": t} for n, t in TEXTS]
    queries = [{"_id": f"q:{n}", "text": t.split(" ", 2)[-1]} for n, t in TEXTS]
    pairs = [(f"q:{n}", n) for n, _ in TEXTS]
    write_beir(root, corpus, queries, {"train": pairs[:5], "test": pairs[5:]})
    return root


def test_corpus_build_and_stats(tmp_path, capsys):
    out = tmp_path / "stdlib"
    assert main(["corpus", "build", "stdlib", "--out", str(out)]) == 0
    assert "documents" in capsys.readouterr().out
    assert main(["corpus", "stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["documents"] > 1000
    assert set(stats["splits"]) == {"train", "test"}
    assert main(["corpus", "stats", str(out)]) == 0
    assert "qrels/test.tsv" in capsys.readouterr().out


def test_corpus_stats_of_a_missing_path_is_a_clear_error(tmp_path, capsys):
    assert main(["corpus", "stats", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "error: corpus:" in err and "nope does not exist" in err


def test_train_writes_a_loadable_model(tmp_path, capsys):
    corpus = tiny_beir(tmp_path / "beir")
    out = tmp_path / "model"
    argv = ["train", "--corpus", str(corpus), "--out", str(out), "--preset", "tiny", "--heads", "2",
            "--rank", "4", "--value-dim", "8", "--layers", "1", "--steps", "2", "--seed", "1",
            "--batch-size", "4", "--max-seq-length", "32", "--vocab-size", "100", "--threads", "1", "--quiet"]
    assert main(argv) == 0
    assert f"model written to {out}" in capsys.readouterr().out
    record = json.loads((out / "training.json").read_text())
    assert record["config"]["rank"] == 4 and record["config"]["heads"] == 2
    assert record["config"]["value_dim"] == 8 and record["config"]["layers"] == 1
    vectors = load_encoder(out).encode(["square root"], role="query")
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_train_rejects_bad_settings_with_the_setting_named(tmp_path, capsys):
    corpus = tiny_beir(tmp_path / "beir")
    argv = ["train", "--corpus", str(corpus), "--out", str(tmp_path / "m"), "--preset", "tiny",
            "--rank", "0", "--steps", "1", "--quiet"]
    assert main(argv) == 2
    assert "error: rank: must be >= 1, got 0" in capsys.readouterr().err
    argv[argv.index("--rank") + 1] = "4,4,4"
    assert main(argv) == 2
    assert "error: rank: has 3 entries but layers is 2" in capsys.readouterr().err


def test_convert_through_the_cli(bert_st_folder, tmp_path, capsys):
    out = tmp_path / "converted"
    assert main(["convert", "--model", str(bert_st_folder), "--rank", "4", "--out", str(out)]) == 0
    assert f"model written to {out}" in capsys.readouterr().out
    assert json.loads((out / "ranked_encoder.json").read_text())["encoder"]["rank"] == 4
    assert load_encoder(out).encode(["the query"], role="query").shape == (1, 32)
    assert main(["convert", "--model", str(bert_st_folder), "--rank", "4", "--out", str(out)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err


def test_embed_at_each_precision(bert_st_folder, tmp_path, capsys, monkeypatch):
    from ranksearch.encoder import precision as precisions

    out = tmp_path / "m"
    assert main(["convert", "--model", str(bert_st_folder), "--out", str(out)]) == 0
    capsys.readouterr()
    vectors = {}
    monkeypatch.setattr(precisions, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    for p in ("fp32", "bf16", "int8"):
        assert main(["embed", "--model", str(out), "--precision", p, "the query", "a file"]) == 0
        cap = capsys.readouterr()
        assert f"precision {p}" in cap.err
        assert ("NOTE: int8 changes the vectors" in cap.err) == (p == "int8")  # stated where it applies
        rows = [json.loads(line) for line in cap.out.splitlines()]
        assert [r["text"] for r in rows] == ["the query", "a file"]
        vectors[p] = np.array([r["vector"] for r in rows])
    assert float((vectors["bf16"] * vectors["fp32"]).sum(1).min()) > 0.99
    monkeypatch.setattr(precisions, "cpu_flags", lambda: frozenset())
    assert main(["embed", "--model", str(out), "--precision", "bf16", "--strict", "x"]) == 2
    assert "precision: bf16 requested but this CPU has none of" in capsys.readouterr().err
    assert main(["embed", "--model", str(out), "--precision", "bf16", "x"]) == 0
    assert "precision fp32" in capsys.readouterr().err  # the fallback is visible
