"""Man-page known-item corpora (`ranksearch corpus build manpages`): troff stripping on
hand-written pages, and real builds from Debian's manpages-ja-dev / manpages-dev."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ranksearch.cli import main
from ranksearch.encoder.corpus import corpus_language, load_beir
from ranksearch.encoder.manpages import (LANGUAGES, build_manpage_corpus, parse_page, parse_sections,
                                         section_packages, translated_share)
from ranksearch.errors import InvalidArgument

JA_ROOT = Path(LANGUAGES["ja"]["root"])
EN_ROOT = Path(LANGUAGES["en"]["root"])
needs_ja = pytest.mark.skipif(not (JA_ROOT / "man2").is_dir(),
                              reason="Debian's manpages-ja-dev is not installed and could not be "
                                     "(make test-deps installs it: apt-get install -y manpages-ja-dev)")
needs_en = pytest.mark.skipif(not (EN_ROOT / "man2" / "accept.2.gz").is_file(),
                              reason="Debian's manpages-dev is not installed and could not be "
                                     "(make test-deps installs it: apt-get install -y manpages-dev)")

PAGE = r""".\" a comment that must vanish
.TH FOO 2 2020\-01\-01 Linux
.SH 名前
foo, bar \- ファイルを\fB開く\fP
.SH 書式
.nf
\fBint foo(int \fP\fIfd\fP\fB);\fP
.fi
.SH 説明
\fBfoo\fP()  は \fIfd\fP を開く。
二行目は\(aqここ\(aqに続く。
.PP
.BR open (2)
と
.I 同じ
である\e0。
.TS
l l.
\fBA\fP	説明A
.TE
.IP \(bu 2
箇条書き
.SH 関連項目
bar(3)
"""


def test_parse_page_strips_troff_and_keeps_paragraphs():
    page = parse_page(PAGE)
    assert page.sections["名前"] == ["foo, bar - ファイルを開く"]
    assert page.sections["説明"] == [
        "foo() は fd を開く。 二行目は'ここ'に続く。",
        "open(2) と 同じ である\\0。",
        "A 説明A",
        "•",
        "箇条書き",
    ]
    assert "comment" not in json.dumps(page.sections, ensure_ascii=False)


def _tree(root: Path, pages: dict[str, str]) -> Path:
    for name, text in pages.items():
        sec = name.rsplit(".", 1)[1]
        (root / f"man{sec}").mkdir(parents=True, exist_ok=True)
        (root / f"man{sec}" / f"{name}.gz").write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
    return root


def test_build_rules_on_a_small_tree(tmp_path):
    body = "ここに十分に長い説明の本文が入る。" * 5
    english = "This paragraph was left in English by the translators of the page. "
    pages = {
        "foo.2": f".SH 名前\nfoo \\- 何かを開く\n.SH 説明\n{body}\n",
        "same.2": f".SH 名前\nsame \\- 何かを開く\n.SH 説明\n{body}別\n",     # shared query text
        "other.3": f".SH 名前\nother \\- 別のことをする\n.SH 説明\n{body}他\n",
        "english.3": f".SH 名前\nenglish \\- not translated\n.SH 説明\n{body}英\n",
        "untranslated.3": ".SH 名前\nuntranslated \\- 本文が英語のページ\n.SH 説明\n"
                          + english * 3 + "\n",
        # more English prose than Japanese: not a Japanese page
        "mixed.3": f".SH 名前\nmixed \\- 半分だけ訳したページ\n.SH 説明\n{body}混\n.PP\n"
                   + english * 2 + "\n.PP\n" + english * 2 + "\n",
        # mostly Japanese; a code line is neither language
        "mostly.3": f".SH 名前\nmostly \\- ほとんど訳したページ\n.SH 説明\n{body}{body}\n.PP\n"
                    + english + "\n.PP\nint mostly(int fd, char *buf);\n",
        "short.3": ".SH 名前\nshort \\- 短い説明のページ\n.SH 説明\n短い。\n",
        # the same description as foo.2 (functions documented together): one document
        "dup.3": f".SH 名前\ndup, dup_r \\- 重複した本文\n.SH 説明\n{body}\n",
        "alias.3": ".so man3/other.3\n",
        "mdoc.3": ".Sh 名前\n.Nm mdoc\n.Nd 対象外\n.Sh 説明\n" + body + "\n",
    }
    root = _tree(tmp_path / "man", pages)
    (root / "man3" / "link.3.gz").symlink_to(root / "man3" / "other.3.gz")
    out = build_manpage_corpus(tmp_path / "beir", "ja", (2, 3), root=root)
    docs = {d["_id"]: d for d in map(json.loads, (out / "corpus.jsonl").read_text().splitlines())}
    assert set(docs) == {"foo.2", "same.2", "other.3", "english.3", "mostly.3"}
    assert docs["foo.2"]["title"] == "foo, dup, dup_r"
    queries = {json.loads(line)["_id"]: json.loads(line)["text"]
               for line in (out / "queries.jsonl").read_text().splitlines()}
    assert queries == {"q:other.3": "別のことをする", "q:mostly.3": "ほとんど訳したページ",
                       "q:dup.3": "重複した本文"}
    qrels = {}
    for split in ("train", "test"):
        for line in (out / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]:
            qid, did, _ = line.split("\t")
            qrels[qid] = did
    assert qrels == {"q:other.3": "other.3", "q:mostly.3": "mostly.3", "q:dup.3": "foo.2"}
    assert corpus_language(out) == "ja"
    with pytest.raises(InvalidArgument, match="manpages-ja"):
        build_manpage_corpus(tmp_path / "none", "ja", (7,), root=root)


def test_translated_share_counts_prose_not_code():
    japanese = "これは日本語の段落である。"
    english = "This sentence is English prose that nobody translated into Japanese."
    assert translated_share([japanese, "int foo(int fd);", "O_RDONLY O_WRONLY"]) == 1.0
    assert translated_share([japanese, english]) == pytest.approx(
        len(japanese) / (len(japanese) + len(english)))
    assert translated_share([english]) == 0.0


def test_parse_sections():
    assert parse_sections("3,2") == (2, 3)
    for bad in ("x", "0", ""):
        if bad:
            with pytest.raises(InvalidArgument, match="sections"):
                parse_sections(bad)


@needs_ja
def test_japanese_manpage_corpus_from_the_debian_package(tmp_path, capsys):
    out = tmp_path / "ja"
    assert main(["corpus", "build", "manpages", "--lang", "ja", "--sections", "2,3",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "documents" in printed and "test" in printed
    test, train = load_beir(out, "test"), load_beir(out, "train")
    assert len(test.corpus) > 500 and len(test.queries) > 200 and len(train.queries) > 200
    assert not set(test.queries) & set(train.queries)
    accept = test.corpus.get("accept.2") or train.corpus["accept.2"]
    assert accept["title"] == "accept, accept4"
    assert accept["text"].startswith("accept() システムコールは、接続指向のソケット型")
    assert "\\f" not in accept["text"] and "\\-" not in accept["text"]
    all_queries = {**test.queries, **train.queries}
    assert all_queries["q:accept.2"] == "ソケットへの接続を受ける"
    assert corpus_language(out) == "ja"
    # deterministic: a second build is byte-identical
    again = build_manpage_corpus(tmp_path / "again", "ja", (2, 3))
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "qrels/train.tsv",
                 "ranksearch-corpus.json"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


@needs_en
def test_english_manpage_corpus_from_the_debian_package(tmp_path):
    out = build_manpage_corpus(tmp_path / "en", "en", (2,))
    beir = load_beir(out, "test")
    train = load_beir(out, "train")
    assert {**beir.queries, **train.queries}["q:accept.2"] == "accept a connection on a socket"
    assert corpus_language(out) == "en"


def test_each_section_comes_from_its_debian_package():
    assert section_packages("ja", (2, 3)) == ["manpages-ja-dev"]
    assert section_packages("ja", (1, 5, 8)) == ["manpages-ja"]
    assert section_packages("ja", (1, 2)) == ["manpages-ja-dev", "manpages-ja"]
    assert section_packages("en", (1, 3)) == ["manpages-dev", "manpages"]


needs_ja_user = pytest.mark.skipif(not (JA_ROOT / "man1" / "ls.1.gz").is_file(),
                                   reason="Debian's manpages-ja is not installed and could not be "
                                          "(make test-deps installs it: apt-get install -y manpages-ja)")


@needs_ja_user
@needs_ja
def test_users_sections_make_a_disjoint_corpus_for_extra_training_pairs(tmp_path):
    """Sections 1, 4-8 (manpages-ja): more (NAME line, 説明) pairs of the same kind, with
    no page, document or query id shared with the sections 2/3 corpus."""
    user = build_manpage_corpus(tmp_path / "user", "ja", (1, 4, 5, 6, 7, 8))
    dev = build_manpage_corpus(tmp_path / "dev", "ja", (2, 3))
    meta = json.loads((user / "ranksearch-corpus.json").read_text())
    assert meta["package"] == "manpages-ja" and meta["sections"] == [1, 4, 5, 6, 7, 8]
    users = {**load_beir(user, "train").queries, **load_beir(user, "test").queries}
    assert len(users) > 400 and all(q.split(".")[-1] in "145678" for q in users)
    devs = {**load_beir(dev, "train").queries, **load_beir(dev, "test").queries}
    assert not set(users) & set(devs)
    assert not set(load_beir(user, "test").corpus) & set(load_beir(dev, "test").corpus)
