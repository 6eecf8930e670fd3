"""Rank sweep on the built-in corpus: test-query MRR@10 per attention rank, next to BM25.

Trains (or reuses, when the model folder already holds a run with the same settings)
small ranked encoders on the stdlib corpus — rank 2, 8 and 32 at 4 heads, and 1 head
of rank 128 (the same total query/key width as 4 x 32) — through the same code path
as `ranksearch train` (the first variant is exactly the CLI's default `small` run), then
on the same test queries reports:

- MRR@10 and nDCG@10 (ranx) of each model, exact cosine search over all documents;
- the same with the attention replaced by uniform attention (every token attends
  equally to every real token), which tells whether the model uses its attention at
  all — if not, its rank cannot matter (docs/BACKGROUND.md);
- BM25 (bm25s, English stop words) on the same document texts;
- the default model (all-MiniLM-L6-v2 converted at full rank) unless --no-default.

Run it in the background; it prints a Markdown table and writes a JSON results file::

    nohup .venv/bin/python benchmarks/rank_sweep.py > /tmp/rank_sweep.log 2>&1 &

Timing columns are wall-clock and process CPU seconds on whatever machine it runs on;
on a shared machine wall time overstates the cost, CPU seconds / threads does less.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ranksearch.cli import main as cli_main  # noqa: E402
from ranksearch.encoder.attention import RankedAttention  # noqa: E402
from ranksearch.encoder.cli import DEFAULT_STEPS  # noqa: E402
from ranksearch.encoder.corpus import cache_root, document_text, load_beir, resolve_corpus  # noqa: E402
from ranksearch.encoder.embedder import load_encoder  # noqa: E402

VARIANTS = [  # (name, heads, rank)
    ("h4-r32", 4, 32),
    ("h4-r8", 4, 8),
    ("h4-r2", 4, 2),
    ("h1-r128", 1, 128),
]
K = 10


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def evaluate(qrels: dict, run: dict) -> dict[str, float]:
    from ranx import Qrels, Run, evaluate as ranx_evaluate

    scores = ranx_evaluate(Qrels(qrels), Run(run), [f"mrr@{K}", f"ndcg@{K}"])
    return {"mrr@10": float(scores[f"mrr@{K}"]), "ndcg@10": float(scores[f"ndcg@{K}"])}


def dense_run(embedder, doc_ids: list[str], doc_texts: list[str], queries: dict[str, str]) -> dict:
    docs = embedder.encode(doc_texts, batch_size=64, role="document")  # (n, d)
    qids = list(queries)
    qs = embedder.encode([queries[q] for q in qids], batch_size=64, role="query")  # (q, d)
    scores = qs @ docs.T  # (q, n) cosine: rows are unit vectors
    top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return {qid: {doc_ids[j]: float(scores[i, j]) for j in top[i]} for i, qid in enumerate(qids)}


def bm25_run(doc_ids: list[str], doc_texts: list[str], queries: dict[str, str]) -> dict:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(doc_texts, stopwords="en", show_progress=False), show_progress=False)
    qids = list(queries)
    results, scores = retriever.retrieve(bm25s.tokenize([queries[q] for q in qids], stopwords="en",
                                                        show_progress=False), k=K, show_progress=False)
    return {qid: {doc_ids[int(j)]: float(s) for j, s in zip(results[i], scores[i])} for i, qid in enumerate(qids)}


@contextlib.contextmanager
def uniform_attention(model):
    """Replace every RankedAttention by uniform attention over the real tokens."""
    def uniform(attn: RankedAttention):
        def forward(x, mask=None, context=None):
            ctx = x if context is None else context
            v = attn.v_proj(ctx)  # (b, tk, h*e)
            if mask is None:
                pooled = v.mean(dim=1, keepdim=True)  # (b, 1, h*e)
            else:
                m = mask.to(v.dtype)[:, :, None]  # (b, tk, 1)
                pooled = (v * m).sum(dim=1, keepdim=True) / m.sum(dim=1, keepdim=True).clamp(min=1)
            return attn.out_proj(pooled.expand(-1, x.shape[1], -1))  # (b, tq, d)
        return forward

    patched = [m for m in model.modules() if isinstance(m, RankedAttention)]
    for m in patched:
        m.forward = uniform(m)
    try:
        yield len(patched)
    finally:
        for m in patched:
            del m.forward


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, help="training steps per model (default: the CLI's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models-dir", type=Path, default=None, help="where trained models are cached")
    ap.add_argument("--out", type=Path, default=Path("/tmp/rank_sweep.json"), help="results JSON")
    ap.add_argument("--no-default", action="store_true", help="skip the converted all-MiniLM-L6-v2 row")
    ap.add_argument("--default-ablation", action="store_true",
                    help="also evaluate the default model with uniform attention (slow)")
    ap.add_argument("--variants", help="comma-separated subset of " + ",".join(v[0] for v in VARIANTS))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    models_dir = args.models_dir or cache_root() / "models" / "rank-sweep"

    corpus = resolve_corpus("stdlib")
    beir = load_beir(corpus, "test")
    doc_ids = list(beir.corpus)
    doc_texts = [document_text(beir.corpus[d]) for d in doc_ids]
    print(f"corpus {corpus}: {len(doc_ids)} documents, {len(beir.queries)} test queries", flush=True)
    rows: list[dict] = []

    t0 = time.perf_counter()
    rows.append({"name": "BM25 (bm25s)", **evaluate(beir.qrels, bm25_run(doc_ids, doc_texts, beir.queries)),
                 "eval_s": round(time.perf_counter() - t0, 1)})
    print(f"BM25: MRR@10 {rows[-1]['mrr@10']:.4f}", flush=True)

    chosen = [v for v in VARIANTS if not args.variants or v[0] in args.variants.split(",")]
    for name, heads, rank in chosen:
        out = models_dir / f"{name}-s{args.steps or DEFAULT_STEPS}-seed{args.seed}"
        argv_train = ["train", "--corpus", "stdlib", "--out", str(out), "--preset", "small", "--heads", str(heads),
                      "--rank", str(rank), "--seed", str(args.seed), "--threads", str(args.threads)]
        if args.steps:
            argv_train += ["--steps", str(args.steps)]
        wall, cpu = time.perf_counter(), cpu_seconds()
        code = cli_main(argv_train)
        if code != 0:
            print(f"{name}: training failed (exit {code})", flush=True)
            continue
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        record = json.loads((out / "training.json").read_text())
        embedder = load_encoder(out, engine="torch")  # uniform_attention hooks PyTorch modules
        t0 = time.perf_counter()
        full = evaluate(beir.qrels, dense_run(embedder, doc_ids, doc_texts, beir.queries))
        with uniform_attention(embedder.model) as n_patched:
            uni = evaluate(beir.qrels, dense_run(embedder, doc_ids, doc_texts, beir.queries))
        rows.append({
            "name": name, "heads": heads, "rank": rank, "qk_width": heads * rank,
            **full, "mrr@10_uniform_attention": uni["mrr@10"], "attention_layers_patched": n_patched,
            "parameters": sum(p.numel() for p in embedder.model.parameters()),
            "steps": record["steps"], "final_loss": record["final_loss"],
            "train_wall_s_this_call": round(wall, 1), "train_cpu_s_this_call": round(cpu, 1),
            "train_wall_s_recorded": record["wall_time_s"], "eval_s": round(time.perf_counter() - t0, 1),
        })
        print(f"{name}: MRR@10 {full['mrr@10']:.4f} (uniform attention {uni['mrr@10']:.4f}), "
              f"train wall {wall:.0f} s, cpu {cpu:.0f} s", flush=True)

    if not args.no_default:
        from ranksearch.encoder.default_model import ensure_default_model

        t0 = time.perf_counter()
        folder = ensure_default_model(cache_root() / "models" / "default-all-MiniLM-L6-v2")
        embedder = load_encoder(folder, engine="torch")
        full = evaluate(beir.qrels, dense_run(embedder, doc_ids, doc_texts, beir.queries))
        row = {"name": "default: all-MiniLM-L6-v2 (converted, full rank)", "heads": 12, "rank": 32,
               "qk_width": 384, **full, "parameters": sum(p.numel() for p in embedder.model.parameters())}
        if args.default_ablation:  # a second full encode of the corpus with a 22M-parameter model
            with uniform_attention(embedder.model) as n_patched:
                row["mrr@10_uniform_attention"] = evaluate(
                    beir.qrels, dense_run(embedder, doc_ids, doc_texts, beir.queries))["mrr@10"]
            row["attention_layers_patched"] = n_patched
        row["eval_s"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(f"default: MRR@10 {full['mrr@10']:.4f}", flush=True)

    results = {
        "corpus": str(corpus), "documents": len(doc_ids), "test_queries": len(beir.queries),
        "seed": args.seed, "threads": args.threads, "git": git_revision(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__},
        "rows": rows,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(render(results))
    return 0


def render(results: dict) -> str:
    lines = [f"Test queries: {results['test_queries']}, documents: {results['documents']} "
             f"(threads {results['threads']}, git {results['git']})", "",
             "| model | heads | rank | q/k width | MRR@10 | nDCG@10 | MRR@10, uniform attention | steps | train wall s | train CPU s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        def f(key, fmt="{:.4f}"):
            return fmt.format(r[key]) if key in r else "—"
        lines.append(f"| {r['name']} | {f('heads', '{}')} | {f('rank', '{}')} | {f('qk_width', '{}')} | "
                     f"{f('mrr@10')} | {f('ndcg@10')} | {f('mrr@10_uniform_attention')} | {f('steps', '{}')} | "
                     f"{f('train_wall_s_this_call', '{:.0f}')} | {f('train_cpu_s_this_call', '{:.0f}')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
