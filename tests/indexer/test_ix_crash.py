"""SIGKILL a writer at random points; every acknowledged write must survive."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ranksearch.indexer import Indexer, IndexerConfig, SearchRequest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from crash_writer import VARIANTS, vector  # noqa: E402


def _run_and_kill(data_dir: Path, first: int, acks_before_kill: int, delay_s: float, acked: dict, deleted: set) -> int:
    """Start the writer at batch `first`, kill it after `acks_before_kill` batches
    plus `delay_s`; record what it acknowledged. Returns the next batch to run."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "crash_writer.py"), str(data_dir), str(first)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    next_batch = first
    try:
        assert proc.stdout.readline().strip() == "READY", proc.stderr.read()
        batches = 0
        while batches < acks_before_kill:
            line = proc.stdout.readline()
            assert line, f"writer died: {proc.stderr.read()}"
            kind, b, *rest = line.split()
            if kind == "U":
                for text in rest:
                    doc_id, _ = text.split("@")
                    acked[doc_id] = text
                    deleted.discard(doc_id)
            elif kind == "D":
                for doc_id in rest:
                    deleted.add(doc_id)
                    acked.pop(doc_id, None)
            else:
                batches += 1
                next_batch = int(b) + 1
        time.sleep(delay_s)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # acknowledged lines already in the pipe when it died still count; a line the
    # kill tore (no newline) was never fully said, so it acknowledges nothing
    for line in proc.stdout.read().splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        kind, b, *rest = line.split()
        if kind == "U":
            for text in rest:
                acked[text.split("@")[0]] = text
                deleted.discard(text.split("@")[0])
        elif kind == "D":
            for doc_id in rest:
                deleted.add(doc_id)
                acked.pop(doc_id, None)
        else:
            next_batch = max(next_batch, int(b) + 1)
    return next_batch


def _batch_of(text: str) -> int:
    return int(text.split("@")[1].split()[0])


def _may_be_deleted(doc_id: str, next_batch: int) -> bool:
    """d{b}-j is deleted by batch b+1: if that batch was not acknowledged, it may
    or may not have committed before the kill."""
    return doc_id.startswith("d") and int(doc_id[1:].split("-")[0]) + 1 >= next_batch


def _check(data_dir: Path, acked: dict, deleted: set, next_batch: int) -> None:
    # the check searches every document at once: lift the per-call limits for it
    check_cfg = IndexerConfig(snapshot_interval_s=0, max_queries=1 << 20, max_k=1 << 20)
    with Indexer(data_dir, check_cfg) as ix:
        report = ix.verify()
        assert report["ok"], report  # FAISS holds exactly the vectors SQLite holds
        docs = ix.get("c", sorted(acked))
        found = {d.id: d for d in docs}
        missing = {i for i in set(acked) - set(found) if not _may_be_deleted(i, next_batch)}
        assert not missing, f"acknowledged documents lost: {sorted(missing)[:10]}"
        for doc_id, text in acked.items():
            if doc_id not in found:
                continue
            # the acked version, or a later one written by an unacknowledged batch
            assert _batch_of(found[doc_id].text) >= _batch_of(text)
        assert not ix.get("c", sorted(deleted)), "acknowledged deletes came back"
        n = ix.get_collection("c").documents
        all_docs = list(found.values())
        queries = np.stack([vector(d.text) for d in all_docs])
        for variant in VARIANTS:
            res = ix.search("c", SearchRequest(variant=variant, k=1, params={"efSearch": 128, "nprobe": 4}), queries)
            assert [row[0].id for row in res] == [d.id for d in all_docs], variant  # searchable
            everything = ix.search("c", SearchRequest(variant=variant, k=n + 10, params={"efSearch": 512, "nprobe": 4}, include_text=False), queries[:1])[0]
            ids = [h.id for h in everything]
            assert len(ids) == len(set(ids)) == n, variant  # no document twice
        # the lexical index is as durable as the documents: each acknowledged document
        # is found by a word only its current version contains
        words = [d.text.split()[1] for d in all_docs]
        res = ix.search("c", SearchRequest(mode="lexical", k=2, include_text=False), texts=words)
        assert [[h.id for h in row] for row in res] == [[d.id] for d in all_docs]
        lexical = ix.stats()["collections"]["c"]["lexical"]
        assert lexical["ready"] and lexical["documents"] == n


@pytest.mark.parametrize("seed, rounds", [(1234, 4)])
def test_sigkill_loses_no_acknowledged_write(tmp_path, seed, rounds):
    rng = np.random.default_rng(seed)
    data_dir = tmp_path / "data"
    acked: dict[str, str] = {}
    deleted: set[str] = set()
    batch = 0
    for _ in range(rounds):
        batch = _run_and_kill(data_dir, batch, int(rng.integers(1, 12)), float(rng.uniform(0, 0.05)), acked, deleted)
        _check(data_dir, acked, deleted, batch)
    assert len(acked) > 50


@pytest.mark.slow
def test_sigkill_many_rounds(tmp_path):
    test_sigkill_loses_no_acknowledged_write(tmp_path, seed=99, rounds=15)
