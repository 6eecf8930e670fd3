"""Child process of the crash test: writes batches forever and prints one line per
acknowledged operation (flushed), until the parent kills it.

usage: crash_writer.py DATA_DIR FIRST_BATCH
Batch b (deterministic from b alone, so a batch re-run after a crash is harmless):
- upsert k{b}-0..7 (new) and replace k{b-1}-0 and k{b-2}-1 with text "<id>@<b>";
- even b: upsert d{b}-0..2; odd b: delete d{b-1}-0..2.
A document's text is "<id>@<b> <word>", where <word> is a term only that version
contains (so the parent can find it by a lexical query); its vector is a function
of its text, so the parent can check it.
"""
from __future__ import annotations

import hashlib
import sys

import numpy as np

from ranksearch.indexer import Document, Indexer, IndexerConfig, IndexSpec, VariantSpec

DIM = 16
VARIANTS = {"f": IndexSpec("flat"), "h": IndexSpec("hnsw", {"M": 8, "efConstruction": 20}),
            "i": IndexSpec("ivf", {"nlist": 4, "train_min": 60})}


def vector(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def unique_word(tag: str) -> str:
    """A term the standard analyzer keeps whole and no other document version has."""
    return "u" + hashlib.sha256(tag.encode()).hexdigest()[:16]


def batch_ops(b: int):
    ups = [f"k{b}-{j}" for j in range(8)] + [f"k{b - 1}-0", f"k{b - 2}-1"] * (b >= 2)
    if b % 2 == 0:
        ups += [f"d{b}-{j}" for j in range(3)]
    docs = [Document(i, f"{i}@{b} {unique_word(f'{i}@{b}')}", {"batch": str(b)}) for i in dict.fromkeys(ups)]
    deletes = [f"d{b - 1}-{j}" for j in range(3)] if b % 2 else []
    return docs, deletes


def ack(line: str) -> None:
    """One acknowledgement = one complete line, written in one call. A SIGKILL can
    still tear it (the parent then sees no newline and counts it as unsaid)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    data_dir, first = sys.argv[1], int(sys.argv[2])
    ix = Indexer(data_dir, IndexerConfig(snapshot_interval_s=0.05, tombstone_rebuild_ratio=0.3))
    ix.open()
    if not ix.list_collections():
        ix.create_collection("c", [VariantSpec(n, DIM, spec) for n, spec in VARIANTS.items()])
    print("READY", flush=True)
    b = first
    while True:
        docs, deletes = batch_ops(b)
        vecs = np.stack([vector(d.text) for d in docs])
        ix.upsert("c", docs, {n: vecs for n in VARIANTS})
        ack(f"U {b} " + " ".join(d.text.split()[0] for d in docs))
        if deletes:
            ix.delete("c", deletes)
            ack(f"D {b} " + " ".join(deletes))
        ack(f"B {b}")
        if b % 3 == 0:
            ix.snapshot()
        b += 1


if __name__ == "__main__":
    main()
