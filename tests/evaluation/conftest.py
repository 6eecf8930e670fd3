"""A tiny BEIR corpus and one shared eval run on tiny models (session-scoped: the run
is the expensive part, several tests read its results folder)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

TOPICS = ["sqlite database transaction commit", "json parse decode string",
          "socket network connection timeout", "thread lock concurrency queue",
          "regular expression pattern match", "file path directory listing",
          "random number generator seed", "date time timezone format",
          "compress gzip archive bytes", "hash digest sha256 secure"]


def write_beir(root: Path, n_docs_per_topic: int = 3) -> Path:
    rng = random.Random(0)
    root.mkdir(parents=True, exist_ok=True)
    docs, queries, qrels_test, qrels_train = [], [], [], []
    for t, topic in enumerate(TOPICS):
        words = topic.split()
        for j in range(n_docs_per_topic):
            extra = " ".join(rng.sample(words, len(words)))
            docs.append({"_id": f"d{t}_{j}", "title": f"{words[0]} {j}",
                         "text": f"This module handles {topic}. It covers {extra} in detail."})
        queries.append({"_id": f"q{t}", "text": f"how to {words[0]} {words[1]}"})
        qrels_test.append((f"q{t}", f"d{t}_0", 1))
        queries.append({"_id": f"t{t}", "text": f"{words[2]} {words[0]} usage"})
        qrels_train.append((f"t{t}", f"d{t}_1", 1))
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels").mkdir(exist_ok=True)
    for name, rows in (("test", qrels_test), ("train", qrels_train)):
        (root / "qrels" / f"{name}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows))
    return root


TINY_SPEC = """
name: tiny
baseline: tiny16
attention_check: baseline
latency_queries: 5
variants:
  - name: tiny
    train: {preset: tiny, heads: 2, rank: [4, 16], steps: 4, batch_size: 8}
"""


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    return write_beir(tmp_path_factory.mktemp("corpus") / "beir")


@pytest.fixture(scope="session")
def eval_results(tmp_path_factory, tiny_corpus) -> Path:
    """One real `ranksearch eval` through the CLI on tiny trained models + BM25."""
    import contextlib
    import io
    import os

    from ranksearch.cli import main

    root = tmp_path_factory.mktemp("eval")
    spec = root / "spec.yaml"
    spec.write_text(TINY_SPEC)
    roi = root / "roi.yaml"
    roi.write_text("queries_per_day: 10000\nvalue_per_answered_query: 0.05\n"
                   "server_cost_per_hour: 2.0\nlatency_budget_ms: 100\ncurrency: EUR\n")
    old = os.environ.get("RANKSEARCH_CACHE")
    os.environ["RANKSEARCH_CACHE"] = str(root / "cache")
    try:
        err = io.StringIO()  # progress goes to stderr: kept for test_eval's progress test
        with contextlib.redirect_stderr(err):
            rc = main(["eval", "--corpus", str(tiny_corpus), "--spec", str(spec),
                       "--out", str(root / "out"), "--roi", str(roi), "--threads", "1"])
        (root / "stderr.txt").write_text(err.getvalue(), encoding="utf-8")
    finally:
        if old is None:
            os.environ.pop("RANKSEARCH_CACHE", None)
        else:
            os.environ["RANKSEARCH_CACHE"] = old
    assert rc == 0
    return root / "out"
