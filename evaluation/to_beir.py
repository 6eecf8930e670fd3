"""Turn your own documents into a BEIR folder that `ranksearch eval` can measure on.

    python -m ranksearch.evaluation.to_beir faq.csv --out data/my-faq --lang ja

Input, one record per row (CSV with a header row, or JSONL):
- FAQ: ``question`` and ``answer``: the question is the query, the answer the
  document that must be found for it;
- articles: ``title`` and ``body`` (or ``text``): the title is the query, the body
  the document (the title is not put into the document, or the query would be found
  by copying it);
- optional ``id`` (default: the row number) and, in CSV or JSON, nothing else is read.

Each record gives one document and one known-item query; a record whose query is
empty is kept as a distractor document. Queries are split deterministically into
``qrels/test.tsv`` (about half) and ``qrels/train.tsv``; ``--lang`` is recorded in
``ranksearch-corpus.json`` so the BM25 reference uses the matching analyzer.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from ranksearch.encoder.corpus import hash_split, replace_beir
from ranksearch.errors import InvalidArgument

QUERY_KEYS = ("question", "title")
DOC_KEYS = ("answer", "body", "text")


def read_records(path: Path) -> list[dict]:
    """Rows of a CSV (header row) or JSONL file, each with its ``file:line``."""
    if not path.is_file():
        raise InvalidArgument(str(path), "file not found")
    rows = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        if path.suffix.lower() == ".csv":
            for i, row in enumerate(csv.DictReader(f), 2):
                rows.append({"where": f"{path}:{i}", **row})
        else:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidArgument(f"{path}:{i}", f"invalid JSON ({exc.msg})") from None
                if not isinstance(obj, dict):
                    raise InvalidArgument(f"{path}:{i}", "expected a JSON object")
                rows.append({"where": f"{path}:{i}", **obj})
    return rows


def _field(row: dict, keys: tuple[str, ...], required: bool) -> str:
    for k in keys:
        value = row.get(k)
        if value is not None:
            if not isinstance(value, str):
                raise InvalidArgument(f"{row['where']}:{k}", f"must be a string, got {type(value).__name__}")
            return value.strip()
    if required:
        raise InvalidArgument(row["where"], f"needs one of {', '.join(keys)}")
    return ""


def convert(src: Path, out: Path, lang: str) -> Path:
    rows = read_records(src)
    if not rows:
        raise InvalidArgument(str(src), "no records")
    corpus, queries, pairs, seen = [], [], [], set()
    for n, row in enumerate(rows, 1):
        doc_id = str(row.get("id") or n)
        if doc_id in seen:
            raise InvalidArgument(f"{row['where']}:id", f"duplicate id {doc_id!r}")
        seen.add(doc_id)
        text = _field(row, DOC_KEYS, required=True)
        if not text:
            raise InvalidArgument(row["where"], "the document text is empty")
        corpus.append({"_id": doc_id, "title": "", "text": text})
        query = _field(row, QUERY_KEYS, required=False)
        if query:
            queries.append({"_id": f"q:{doc_id}", "text": query})
            pairs.append((f"q:{doc_id}", doc_id))
    meta = {"language": lang, "source": str(src), "query": "question / title",
            "document": "answer / body"}
    return replace_beir(out, corpus, queries, hash_split(pairs, 2), meta)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ranksearch.evaluation.to_beir",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="CSV (header row) or JSONL of question/answer or title/body")
    ap.add_argument("--out", type=Path, required=True, help="BEIR folder to write (replaced)")
    ap.add_argument("--lang", choices=("ja", "en", "auto"), default="ja",
                    help="language of the texts: the BM25 reference's analyzer (default ja)")
    args = ap.parse_args(argv)
    try:
        out = convert(args.src, args.out, args.lang)
    except InvalidArgument as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from ranksearch.encoder.corpus import corpus_stats

    s = corpus_stats(out)
    print(f"wrote {out}: {s['documents']} documents, "
          + ", ".join(f"{k} {v['queries']} queries" for k, v in s["splits"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
