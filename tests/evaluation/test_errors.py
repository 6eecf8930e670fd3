"""Corpus and spec problems surface as clear errors through the CLI."""
import shutil

import pytest

from ranksearch.cli import main

SPEC = "baseline: a\nvariants: [{name: a, folder: /nonexistent}]\n"


@pytest.fixture
def spec(tmp_path):
    p = tmp_path / "spec.yaml"
    p.write_text(SPEC)
    return p


def _run(corpus, spec, tmp_path, capsys):
    rc = main(["eval", "--corpus", str(corpus), "--spec", str(spec), "--out", str(tmp_path / "out")])
    return rc, capsys.readouterr().err


def test_corrupt_corpus_line_names_file_and_line(tiny_corpus, spec, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_corpus, bad)
    lines = (bad / "corpus.jsonl").read_text().splitlines()
    lines[2] = '{"_id": "d0_2", "text": '  # truncated JSON on line 3
    (bad / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    rc, err = _run(bad, spec, tmp_path, capsys)
    assert rc == 2
    assert "corpus.jsonl:3" in err and "invalid JSON" in err


def test_missing_qrels_file_is_reported(tiny_corpus, spec, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_corpus, bad)
    (bad / "qrels" / "test.tsv").unlink()
    rc, err = _run(bad, spec, tmp_path, capsys)
    assert rc == 2
    assert "test.tsv" in err and "qrels file not found" in err


def test_qrel_naming_a_missing_document_is_reported(tiny_corpus, spec, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_corpus, bad)
    with open(bad / "qrels" / "test.tsv", "a") as f:
        f.write("q0\tno_such_doc\t1\n")
    rc, err = _run(bad, spec, tmp_path, capsys)
    assert rc == 2
    assert "no_such_doc" in err


def test_unknown_variant_key_is_a_clear_cli_error(tiny_corpus, tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text("baseline: a\nvariants:\n  - name: a\n    convert: {rank: 4}\n    rnak: 8\n")
    rc, err = _run(tiny_corpus, spec, tmp_path, capsys)
    assert rc == 2
    assert "error: variants[0].rnak: unknown key" in err


def test_report_of_a_missing_results_folder(tmp_path, capsys):
    assert main(["eval", "report", str(tmp_path)]) == 2
    assert "results.json not found" in capsys.readouterr().err
