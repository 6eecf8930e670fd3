"""`ranksearch import` against a real server: whole-file validation with
FILE:LINE: field: reason errors, acknowledged progress, per-batch deadlines, and a
re-run that skips unchanged documents (server-side content hash)."""
from __future__ import annotations

import json

import pytest

from ranksearch.cli import main
from ranksearch.client import RpcFailed


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _write(path, rows, prefix: bytes = b""):
    lines = (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows)
    path.write_bytes(prefix + b"".join(line.encode("utf-8") + b"\n" for line in lines))
    return path


GOOD = [{"id": f"d{i}", "text": f"document number {i}", "metadata": {"n": str(i)}} for i in range(5)]


@pytest.mark.parametrize("rows, prefix, expect", [
    (None, b"", "error: {path}: file not found"),
    ([GOOD[0], "{broken"], b"", "error: {path}:2: invalid JSON"),
    ([GOOD[0], {"id": "x"}], b"", "error: {path}:2: text: missing"),
    ([GOOD[0], GOOD[1], {"text": "no id"}], b"", "error: {path}:3: id: missing"),
    ([GOOD[0], {"id": "x", "text": "t", "metadata": {"n": 3}}], b"", "error: {path}:2: metadata.n: must be a string, got int"),
    ([GOOD[0], {"id": "x", "text": "t", "metadata": ["a"]}], b"", "error: {path}:2: metadata: must be an object, got list"),
])
def test_bad_files_name_file_line_and_field_and_write_nothing(server, capsys, tmp_path, rows, prefix, expect):
    path = tmp_path / "docs.jsonl"
    if rows is not None:
        _write(path, rows, prefix)
    code, out, err = _run(capsys, "import", str(path), "--collection", "docs", "--quiet",
                          "--server", server.address)
    assert code != 0 and err.startswith(expect.format(path=path)), err
    assert "Exception iterating requests" not in err and "UNKNOWN" not in err
    assert server.client().get("docs", ["d0"]) == []  # the whole file is validated first


def test_bom_and_japanese_are_accepted(server, capsys, tmp_path):
    path = _write(tmp_path / "ja.jsonl", [{"id": "j1", "text": "東京の天気", "metadata": {"県": "東京"}}],
                  prefix=b"\xef\xbb\xbf")
    code, out, err = _run(capsys, "import", str(path), "--collection", "docs", "--quiet",
                          "--server", server.address)
    assert code == 0, err
    code, out, _ = _run(capsys, "get", "j1", "--collection", "docs", "--server", server.address)
    assert out == '{"id": "j1", "text": "東京の天気", "metadata": {"県": "東京"}}\n'


def test_server_rejection_names_the_line_and_what_was_written(make_server, capsys, tmp_path):
    server = make_server(**{"limits": {"max_text_chars": 50}})
    server.client().create_collection("docs")
    rows = GOOD[:4] + [{"id": "long", "text": "x" * 60}] + GOOD[4:]
    path = _write(tmp_path / "docs.jsonl", rows)
    code, _, err = _run(capsys, "import", str(path), "--collection", "docs", "--quiet", "--batch-size", "2",
                        "--server", server.address)
    assert code == 1
    assert err.startswith(f"error: {path}:5: text: has 60 characters; the limit is 50"), err
    assert f"the 4 documents before {path}:5 were written" in err
    assert len(server.client().get("docs", [d["id"] for d in GOOD])) == 4


def test_rerun_skips_unchanged_documents_and_progress_counts_acknowledged(server, capsys, tmp_path):
    rows = [{"id": f"d{i}", "text": f"text {i}", "metadata": {"k": "v"}} for i in range(30)]
    path = _write(tmp_path / "docs.jsonl", rows)
    argv = ["import", str(path), "--collection", "docs", "--batch-size", "7", "--server", server.address]
    code, out, err = _run(capsys, *argv)
    assert code == 0 and out == "imported 30 into docs (30 written, 0 unchanged and skipped)\n"
    assert "30/30" in err  # the bar's total is the validated file, counted in acknowledged documents
    before = {d.id: d for d in server.client().get("docs", [r["id"] for r in rows])}
    rows[3]["text"] = "changed"
    rows[5]["metadata"] = {"k": "other"}
    _write(path, rows)
    code, out, _ = _run(capsys, *argv, "--quiet")
    assert code == 0 and out == "imported 30 into docs (2 written, 28 unchanged and skipped)\n"
    after = server.client().get("docs", ["d3", "d5"])
    assert {d.id: (d.text, d.metadata) for d in after} == {"d3": ("changed", {"k": "v"}),
                                                           "d5": ("text 5", {"k": "other"})}
    assert before["d0"].text == "text 0"
    hits = server.client().search("changed", collection="docs", k=1).hits
    assert hits[0].id == "d3"  # the rewritten document was re-encoded


def test_writes_require_a_collection(server, capsys, tmp_path):
    for argv in (["upsert", "n2", "hello"], ["delete", "n2"], ["import", str(tmp_path / "x.jsonl")]):
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--server", server.address])
        assert exc.value.code == 2
        assert "--collection" in capsys.readouterr().err


def test_k_zero_is_an_error_and_drop_needs_yes(server, capsys):
    with pytest.raises(SystemExit):
        main(["query", "x", "--k", "0", "--server", server.address])
    assert "--k: must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(RpcFailed) as err:  # not sent: on the wire 0 means "the default, 10"
        server.client().search("x", collection="docs", k=0)
    assert (err.value.code.name, err.value.field) == ("INVALID_ARGUMENT", "k")
    assert server.server.access.counts.get("Search", 0) == 0
    code, _, err = _run(capsys, "collections", "--drop", "docs", "--server", server.address)
    assert code == 2 and "--yes" in err
    assert [c.name for c in server.client().list_collections().collections] == ["docs"]
    code, out, _ = _run(capsys, "collections", "--drop", "docs", "--yes", "--server", server.address)
    assert code == 0 and out == "deleted docs\n"


def test_japanese_prints_as_utf8(server, capsys):
    server.client().upsert("docs", [{"id": "j", "text": "日本語の文書", "metadata": {"部署": "開発"}}])
    code, out, _ = _run(capsys, "query", "日本語", "--json", "--collection", "docs", "--server", server.address)
    assert code == 0 and "日本語の文書" in out and "\\u" not in out
    code, out, _ = _run(capsys, "query", "日本語", "--collection", "docs", "--server", server.address)
    assert "日本語の文書" in out
    code, out, _ = _run(capsys, "stats", "--server", server.address)
    assert "\\u" not in out and isinstance(json.loads(out)["collections"][0]["documents"], int)


def test_an_interrupted_import_says_what_was_acknowledged(server, capsys, tmp_path, monkeypatch):
    from ranksearch.client import SearchClient

    rows = [{"id": f"d{i}", "text": f"text {i}"} for i in range(10)]
    path = _write(tmp_path / "docs.jsonl", rows)
    real = SearchClient._upsert_batch
    calls = []

    def interrupt_on_the_third(self, *args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(SearchClient, "_upsert_batch", interrupt_on_the_third)
    code, _, err = _run(capsys, "import", str(path), "--collection", "docs", "--batch-size", "4",
                        "--quiet", "--server", server.address)
    assert code == 130 and "interrupted: 8 documents were acknowledged" in err
    monkeypatch.undo()
    code, out, _ = _run(capsys, "import", str(path), "--collection", "docs", "--quiet", "--server", server.address)
    assert out == "imported 10 into docs (2 written, 8 unchanged and skipped)\n"
