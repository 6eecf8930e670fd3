"""Carve a development split out of a BEIR folder's train judgements, to choose
fine-tuning settings without ever looking at the test split.

The held-out queries are the ``--fraction`` of train queries with the smallest
sha256 of ``seed:query id`` (deterministic, independent of file order). The new
folder has the same documents and queries, ``qrels/train.tsv`` with the rest of the
train judgements and ``qrels/dev.tsv`` with the held-out ones, and no test split:

    .venv/bin/python benchmarks/finetune_dev.py --corpus data/manpages-ja --out data/manpages-ja-dev
    ranksearch eval --corpus data/manpages-ja-dev --split dev \\
        --spec evaluation/specs/finetune_dev_ja.yaml --out results/finetune-dev

(docs/JAPANESE.md, "Fine-tuning on labelled pairs".)
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path


def carve(corpus: Path, out: Path, fraction: float, seed: int) -> tuple[int, int]:
    lines = (corpus / "qrels" / "train.tsv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [line for line in lines[1:] if line.strip()]
    qids = sorted({row.split("\t")[0] for row in rows},
                  key=lambda q: hashlib.sha256(f"{seed}:{q}".encode()).hexdigest())
    dev = set(qids[:round(len(qids) * fraction)])
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    for name in ("corpus.jsonl", "queries.jsonl", "ranksearch-corpus.json"):
        if (corpus / name).is_file():
            shutil.copyfile(corpus / name, out / name)
    for name, keep in (("train", lambda q: q not in dev), ("dev", lambda q: q in dev)):
        kept = [row for row in rows if keep(row.split("\t")[0])]
        (out / "qrels" / f"{name}.tsv").write_text("\n".join([header, *kept]) + "\n", encoding="utf-8")
    return len(qids) - len(dev), len(dev)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, required=True, help="BEIR folder with qrels/train.tsv")
    p.add_argument("--out", type=Path, required=True, help="folder to write (train + dev splits)")
    p.add_argument("--fraction", type=float, default=0.2, help="share of train queries held out (0.2)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    train, dev = carve(args.corpus, args.out, args.fraction, args.seed)
    print(f"{args.out}: {train} train queries, {dev} dev queries")


if __name__ == "__main__":
    main()
