"""`ranksearch eval`: every variant of a spec on one corpus -> a results folder.

Flow per dense variant and seed: build/cached model -> encode corpus -> Indexer ->
queries -> TREC run file; latency and cost measured in the same process; BM25 beside
them; hybrid variants fuse those runs afterwards (evaluation/hybrid.py; a tuned one
makes its components also answer the train queries, saved under runs/train/); then
metrics, paired significance against the baseline (and the best), the attention-use
check, and results.json (the contract the report is rendered from).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from ranksearch.analysis import language_analyzer
from ranksearch.errors import InvalidArgument

from . import metrics as M
from .environment import git_revision, hardware, now, versions
from .latency import peak_rss_bytes
from .results import decide, write_csv
from .hybrid import TuningSplit, hybrid_record, train_run_path, tuning_split
from .spec import EvalSpec, VariantSpec

#: queries used by the attention check (uniform ablation re-encodes the corpus)
ENTROPY_TEXTS = 64


def _load_corpus(corpus: str | Path, split: str):
    from ranksearch.encoder.corpus import document_text, load_beir, resolve_corpus

    corpus_dir = resolve_corpus(corpus)
    beir = load_beir(corpus_dir, split)
    doc_ids = list(beir.corpus)
    doc_texts = [document_text(d) for d in beir.corpus.values()]  # the form models train on
    qids = [q for q in beir.queries if q in beir.qrels]
    if not qids:
        raise InvalidArgument("qrels", f"no query of {corpus_dir} has judgements in split {split!r}")
    q_texts = [beir.queries[q] for q in qids]
    qrels = {q: {d: int(r) for d, r in beir.qrels[q].items()} for q in qids}
    return Path(corpus_dir), beir, doc_ids, doc_texts, qids, q_texts, qrels


def _stage(variant: str, what: str, since: float | None = None) -> None:
    """One progress line between the bars (tqdm.write keeps the bars intact)."""
    took = f" (variant at {time.perf_counter() - since:.0f} s)" if since is not None else ""
    tqdm.write(f"[{time.strftime('%H:%M:%S')}] {variant}: {what}{took}", file=sys.stderr)


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)
    try:
        import faiss
        faiss.omp_set_num_threads(n)
    except ImportError:
        pass


def _attention_check(embedder, doc_texts, doc_ids, qids, q_texts, qrels, run_metrics: dict) -> dict:
    from .attention_use import attention_entropy, attention_modules, uniform_attention
    from .dense import exact_top

    model = embedder.model
    if not attention_modules(model):
        return {"available": False, "reason": "the model has no RankedAttention modules"}
    entropy = attention_entropy(model, lambda t: embedder.encode(t, batch_size=16, role="document"),
                                doc_texts[:ENTROPY_TEXTS])
    with uniform_attention(model):
        docs = embedder.encode(doc_texts, batch_size=64, show_progress=True, role="document")
        qs = embedder.encode(q_texts, batch_size=64, role="query")
    top = exact_top(docs, qs, 100, farthest=False)
    sims = qs @ docs.T
    run = {qid: {doc_ids[j]: float(sims[i, j]) for j in top[i]} for i, qid in enumerate(qids)}
    ablated = M.evaluate(qrels, run)
    return {"available": True, "entropy_per_layer": entropy,
            "ndcg@10": run_metrics[M.HEADLINE], "ablated_ndcg@10": ablated[M.HEADLINE],
            "drop": run_metrics[M.HEADLINE] - ablated[M.HEADLINE],
            "ablation": "every RankedAttention output replaced by out_proj(mean of values over real tokens)"}


def lexical_setting(spec: EvalSpec, corpus_dir: Path, override: str | None) -> dict:
    """The language BM25 analyses with: ``--language`` > the spec's ``language`` > the
    corpus's recorded language (``ranksearch-corpus.json``) > ``en``."""
    from ranksearch.analysis import language_analyzer
    from ranksearch.encoder.corpus import corpus_language

    for source, lang in (("--language", override), ("spec", spec.language),
                         ("corpus", corpus_language(corpus_dir))):
        if lang is not None:
            break
    else:
        source, lang = "default", "en"
    return {"language": lang, "analyzer": language_analyzer(lang), "from": source}


def _run_variant(v: VariantSpec, spec: EvalSpec, corpus_dir, data, runs_dir: Path,
                 check_attention: bool, analyzer: str, tuning: TuningSplit | None = None) -> dict:
    from ranksearch.encoder.embedder import load_encoder

    from .build import build_model
    from .dense import run_dense
    from .lexical import run_bm25
    from .metrics import write_trec

    doc_ids, doc_texts, qids, q_texts, qrels = data
    # a tuned hybrid needs this variant's run on the train queries too (after the
    # evaluated ones, so latency is still measured on evaluated queries)
    all_qids, all_texts = (qids + tuning.qids, q_texts + tuning.q_texts) if tuning else (qids, q_texts)
    seeds_out = []
    attention = None
    model_info = None
    for seed in v.seeds:
        tag = v.name if len(v.seeds) == 1 else f"{v.name}.seed{seed}"
        t0 = time.perf_counter()
        if v.kind == "bm25":
            res = run_bm25(doc_ids, doc_texts, all_qids, all_texts, spec.top_k, spec.latency_queries,
                           analyzer)
            build = {"model_folder": None, "built_now": False, "build_seconds": 0.0}
        else:
            _stage(tag, "model (built once, then cached; training or distillation shows its own bar)")
            folder, built = build_model(v, seed, corpus_dir)
            build = {"model_folder": str(folder), "built_now": built,
                     "build_seconds": time.perf_counter() - t0}
            _stage(tag, f"encoding {len(doc_texts)} documents and {len(q_texts)} queries", t0)
            embedder = load_encoder(folder, precision=v.precision, device=spec.device,
                                    long_text=spec.long_text)
            if spec.max_seq_length:
                embedder.model.max_seq_length = spec.max_seq_length
            res = run_dense(embedder, v.index, doc_ids, doc_texts, all_qids, all_texts, spec.top_k,
                            spec.latency_queries, v.name)
        run_file = runs_dir / f"{tag}.trec"
        write_trec({q: res["run"][q] for q in qids}, run_file, tag)
        if tuning:
            train_file = train_run_path(runs_dir, run_file)
            train_file.parent.mkdir(exist_ok=True)
            write_trec({q: res["run"][q] for q in tuning.qids}, train_file, tag)
        scores = M.evaluate(qrels, M.read_trec(run_file))  # the saved file is the truth
        if v.kind != "bm25" and check_attention and attention is None:
            _stage(tag, "attention check (entropy, then the corpus again under uniform attention)", t0)
            # the check hooks PyTorch modules: run it on the eager engine (an exported
            # ONNX Runtime graph would ignore the hooks and report no attention use)
            eager = load_encoder(folder, precision="bf16" if embedder.precision == "bf16" else "fp32",
                                 device=spec.device, engine="torch")
            eager.model.max_seq_length = embedder.model.max_seq_length
            attention = _attention_check(eager, doc_texts, doc_ids, qids, q_texts, qrels, scores)
        model_info = build
        seeds_out.append({"seed": seed, "run_file": str(run_file.relative_to(runs_dir.parent)),
                          "metrics": scores, "latency": res["latency"],
                          "nearest_agreement": res["nearest_agreement"],
                          "farthest_agreement": res["farthest_agreement"],
                          "seconds": time.perf_counter() - t0, **build})
        cost = res["cost"]
    metrics_mean = {m: M.mean_spread([s["metrics"][m] for s in seeds_out]) for m in M.METRICS}
    first = seeds_out[0]
    if v.kind != "bm25":  # what really ran (a bf16 request may have fallen back to fp32)
        desc = embedder.describe()
        cost = {**cost, "precision": desc["precision"], "engine": desc["engine"], "device": desc["device"]}
    return {"name": v.name, "kind": v.kind, "spec": {**v.resolved(), "seeds": v.seeds},
            "precision": cost.get("precision"),
            "rank": cost.get("rank"), "heads": cost.get("heads"),
            "metrics": {m: metrics_mean[m]["mean"] for m in M.METRICS},
            "spread": metrics_mean, "seeds": seeds_out,
            "latency": first["latency"], "cost": {**cost, "peak_rss_bytes": peak_rss_bytes()},
            "nearest_agreement": first["nearest_agreement"],
            "farthest_agreement": first["farthest_agreement"],
            "attention_use": attention, "model_folder": model_info["model_folder"],
            "analyzer": analyzer if v.kind == "bm25" else None}


def run_eval(corpus: str | Path, spec: EvalSpec, out: Path, split: str = "test",
             server: str | None = None, threads: int = 2, roi: dict | None = None,
             language: str | None = None) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    _threads(threads)
    started = time.perf_counter()
    corpus_dir, beir, doc_ids, doc_texts, qids, q_texts, qrels = _load_corpus(corpus, split)
    out = Path(out)
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    data = (doc_ids, doc_texts, qids, q_texts, qrels)
    lexical = lexical_setting(spec, corpus_dir, language)
    tuning = tuning_split(spec.variants, corpus_dir, split, qids)
    for v in spec.variants:
        if v.kind == "finetune" and split == "train":
            raise InvalidArgument(f"variants.{v.name}.finetune", "learns from the train judgements and "
                                  "must be evaluated on another split, but --split is 'train'")
        for extra in getattr(v.source, "extra_corpora", None) or []:  # before any variant runs
            if not (Path(extra).expanduser() / "qrels").is_dir():
                raise InvalidArgument(f"variants.{v.name}.finetune.extra_corpora",
                                      f"{extra} is not a BEIR folder with qrels/ (build it first)")
    variants = []
    retrievers = [v for v in spec.variants if v.kind != "hybrid"]
    bar = tqdm(retrievers, desc="variants", unit="variant")
    for v in bar:
        bar.set_postfix_str(v.name)
        check = (spec.attention_check == "all" or
                 (spec.attention_check == "baseline" and v.name == spec.baseline))
        extra = tuning if tuning and v.name in tuning.components else None
        variants.append(_run_variant(v, spec, corpus_dir, data, runs_dir, check,
                                     lexical["analyzer"], extra))
    by_name = {rec["name"]: rec for rec in variants}
    variants += [hybrid_record(v, by_name, out, qrels, tuning)
                 for v in spec.variants if v.kind == "hybrid"]
    if server:
        from .service_latency import measure_service
        e2e = measure_service(server, q_texts[:spec.latency_queries],
                              [v["name"] for v in variants if v["kind"] not in ("bm25", "hybrid")])
        for rec in variants:
            got = e2e.get(rec["name"]) or {}
            rec["latency"]["end_to_end"] = got if "p50_ms" in got else None
        service = {"address": server, "per_variant": e2e}
    else:
        service = None
    # significance on each variant's first seed (one run per variant, paired by query)
    first_runs = {rec["name"]: M.read_trec(out / rec["seeds"][0]["run_file"]) for rec in variants}
    comparisons = M.compare(qrels, first_runs, spec.stat_test, spec.max_p)
    results = {
        "kind": "eval", "schema": 1, "created": now(), "git_revision": git_revision(),
        "versions": versions(), "hardware": {**hardware(), "threads_used": threads},
        "corpus": {"path": str(corpus_dir), "name": str(corpus), "split": split,
                   "documents": len(doc_ids), "queries": len(qids),
                   "judgements": sum(len(d) for d in qrels.values()),
                   "language": lexical["language"]},
        "lexical": lexical,
        "spec": spec.to_dict(), "baseline": spec.baseline, "metrics_list": M.METRICS,
        "headline": M.HEADLINE, "variants": variants,
        "significance": {"test": spec.stat_test, "max_p": spec.max_p,
                         "run": "first seed of each variant", "pairs": comparisons},
        "service": service, "roi_inputs": roi,
        "wall_seconds": time.perf_counter() - started,
    }
    results["recommendation"] = decide(results)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=_json_default))
    write_csv(results, out / "results.csv")
    return out


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
