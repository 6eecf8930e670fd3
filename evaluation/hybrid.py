"""Hybrid variants: one dense variant's run and the lexical (BM25) run of the same spec,
fused per query with ranx. The library does the fusion and the tuning; this module
only says which runs, which parameters, and records what was fitted.

```yaml
variants:
  - name: full
    convert: {source: default, rank: null}
  - name: hybrid            # reciprocal-rank fusion, weights (dense, lexical)
    hybrid: {dense: full, lexical: bm25, fusion: rrf, k: 60, weights: [1, 1]}
  - name: hybrid_z          # weighted sum of per-query normalised scores
    hybrid: {dense: full, fusion: weighted, norm: z-score, weights: [0.7, 0.3]}
  - name: hybrid_tuned      # k and weights fitted on the train qrels
    hybrid: {dense: full, fusion: rrf, tune: true}
```

Fusion over each retriever's first ``depth`` hits (default: the spec's ``top_k``):

- ``rrf``: score(d) = Σ_i w_i / (k + rank_i(d)) (Cormack et al. 2009, with per-retriever
  weights as in Elasticsearch's weighted RRF). Ranks are the positions in the saved run
  files. Each run becomes its RRF scores with ``ranx.fusion.rrf`` and
  ``ranx.fuse(method="wsum")`` adds them with the weights; with equal weights this is
  exactly ``ranx.fuse(method="rrf")``.
- ``weighted``: Σ_i w_i · norm(score_i(d)), norm per query ``min-max`` or ``z-score``
  (ranx ``min-max`` / ``zmuv``); a document missing from one run gets 0 from it.

``tune: true`` fits the parameters on the corpus's ``train`` qrels with
``ranx.optimize_fusion`` (metric nDCG@10) and evaluates them on the evaluated split:
RRF fits k on ranx's grid (10..100, step 10), then the weights at that k (grid step 0.1,
summing to 1); ``weighted`` fits the weights. Train queries that are also in the
evaluated split are left out of the fit. results.json records the fitted values.
"""
from __future__ import annotations

import difflib
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ranksearch.errors import ConfigError, InvalidArgument
from ranksearch.typed import reject_unknown

from . import metrics as M

FUSIONS = ("rrf", "weighted")
NORMS = {"min-max": "min-max", "z-score": "zmuv"}  # spec name -> ranx name
DENSE_KINDS = ("train", "convert", "finetune", "folder")
TUNE_SPLIT = "train"
TUNE_METRIC = M.HEADLINE
RRF_K_GRID = {"min_k": 10, "max_k": 100, "step": 10}  # ranx.optimize_fusion defaults, explicit
WEIGHT_STEP = 0.1
#: a query a retriever answered with nothing still needs an entry in a ranx run
_EMPTY = "__none__"


@dataclass
class HybridSource:
    """Which runs to fuse and how; ``weights`` are (dense, lexical)."""
    dense: str
    lexical: str = "bm25"
    fusion: str = "rrf"
    k: int = 60
    weights: list[float] = field(default_factory=lambda: [1.0, 1.0])
    norm: str = "min-max"
    depth: int | None = None
    tune: bool = False

    def params(self) -> dict:
        """The fusion parameters as given in the spec (tuning replaces them)."""
        return {"k": self.k, "weights": self.weights} if self.fusion == "rrf" else {"weights": self.weights}


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(where, f"must be a positive integer, got {value!r}")
    return value


def _weights(value: Any, where: str) -> list[float]:
    ok = (isinstance(value, list) and len(value) == 2
          and all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in value)
          and sum(value) > 0)
    if not ok:
        raise ConfigError(where, f"must be two non-negative numbers [dense, lexical], not both 0, "
                          f"got {value!r}")
    return [float(w) for w in value]


def _one_of(value: Any, allowed, where: str) -> str:
    if value not in allowed:
        close = difflib.get_close_matches(str(value), list(allowed), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(where, f"must be one of {', '.join(allowed)}, got {value!r}{hint}")
    return value


def parse_hybrid(body: Any, where: str) -> HybridSource:
    """The ``hybrid:`` mapping of a variant -> HybridSource; errors name the key."""
    reject_unknown(body, list(HybridSource.__dataclass_fields__), where)
    for key in ("dense", "lexical"):
        if key in body and (not isinstance(body[key], str) or not body[key]):
            raise ConfigError(f"{where}.{key}", f"must be a variant name, got {body[key]!r}")
    if "dense" not in body:
        raise ConfigError(f"{where}.dense", "is required: the name of a dense variant of this spec")
    fusion = _one_of(body.get("fusion", "rrf"), FUSIONS, f"{where}.fusion")
    tune = body.get("tune", False)
    if not isinstance(tune, bool):
        raise ConfigError(f"{where}.tune", f"must be true or false, got {tune!r}")
    if fusion != "rrf" and "k" in body:
        raise ConfigError(f"{where}.k", "only used with fusion: rrf")
    if fusion != "weighted" and "norm" in body:
        raise ConfigError(f"{where}.norm", "only used with fusion: weighted")
    if tune:
        for key in ("k", "weights"):
            if key in body:
                raise ConfigError(f"{where}.{key}", f"tune: true fits {key} on the {TUNE_SPLIT} "
                                  "qrels; remove it or set tune: false")
    depth = body.get("depth")
    return HybridSource(
        dense=body["dense"], lexical=body.get("lexical", "bm25"), fusion=fusion,
        k=_positive_int(body.get("k", 60), f"{where}.k"),
        weights=_weights(body.get("weights", [1, 1]), f"{where}.weights"),
        norm=_one_of(body.get("norm", "min-max"), tuple(NORMS), f"{where}.norm"),
        depth=None if depth is None else _positive_int(depth, f"{where}.depth"), tune=tune)


def check_references(variants: list, top_k: int) -> None:
    """Every hybrid names a dense and a lexical variant of the same spec (after sweep
    expansion) and a depth the runs have."""
    by_kind: dict[str, list[str]] = {}
    for v in variants:
        by_kind.setdefault("dense" if v.kind in DENSE_KINDS else v.kind, []).append(v.name)
    for v in variants:
        if v.kind != "hybrid":
            continue
        src, where = v.source, f"variants.{v.name}.hybrid"
        for key, kind in (("dense", "dense"), ("lexical", "bm25")):
            names = by_kind.get(kind, [])
            name = getattr(src, key)
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f" ({key} variants: {names})"
                raise ConfigError(f"{where}.{key}", f"must name a {key} variant of this spec, "
                                  f"got {name!r}{hint}")
        if src.depth is not None and src.depth > top_k:
            raise ConfigError(f"{where}.depth", f"must be at most top_k ({top_k}), the hits each "
                              f"retriever returns; got {src.depth}")


# ----------------------------------------------------------------------------------
# Fusion (ranx)


def _ranx_run(run: M.Run, queries: list[str], depth: int | None, by_rank: bool, name: str):
    """A ranx Run over exactly ``queries``, each cut to its first ``depth`` hits; with
    ``by_rank`` the scores are replaced by the rank order (RRF reads ranks, and ranks
    must be the saved run's, whatever its ties)."""
    from ranx import Run as RanxRun

    cut = {q: dict(list(run.get(q, {}).items())[:depth]) for q in queries}
    if by_rank:
        cut = M.by_rank(cut)
    return RanxRun({q: docs or {_EMPTY: 0.0} for q, docs in cut.items()}, name=name)


def _inputs(src: HybridSource, dense: M.Run, lexical: M.Run, queries: list[str]) -> list:
    """The two runs as ranx Runs over ``queries`` (by rank for RRF)."""
    return [_ranx_run(r, queries, src.depth, src.fusion == "rrf", name)
            for r, name in ((dense, "dense"), (lexical, "lexical"))]


@contextmanager
def _quiet_rrf():
    """numba, compiling ranx's RRF kernel, warns about its uint64 -> int64 rank index."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="unsafe cast from uint64 to int64")
        yield


def _rrf_scores(runs: list, k: int) -> list:
    """Each run alone scored 1 / (k + rank) by ranx's RRF, ready for a weighted sum."""
    from ranx.fusion import rrf

    with _quiet_rrf():
        return [rrf([r], k=k, name=r.name) for r in runs]


def fuse(src: HybridSource, dense: M.Run, lexical: M.Run, params: dict) -> M.Run:
    """The fused run ``{qid: {doc: score}}``, best first, over the queries of both runs."""
    from ranx import fuse as ranx_fuse

    queries = sorted(set(dense) | set(lexical))
    if not queries:
        return {}
    runs = _inputs(src, dense, lexical, queries)
    if src.fusion == "rrf":
        runs, norm = _rrf_scores(runs, params["k"]), None
    else:
        norm = NORMS[src.norm]
    fused = ranx_fuse(runs, norm=norm, method="wsum",
                      params={"weights": [float(w) for w in params["weights"]]})
    # equal fused scores (common with RRF) are ordered by document id: a deterministic run
    return {q: dict(sorted(((d, float(s)) for d, s in fused[q].items() if d != _EMPTY),
                           key=lambda hit: (-hit[1], hit[0])))
            for q in queries}


def tune(src: HybridSource, dense: M.Run, lexical: M.Run, qrels: dict[str, dict[str, int]]) -> dict:
    """Fusion parameters fitted on ``qrels`` with ranx.optimize_fusion (see module doc)."""
    from ranx import Qrels, optimize_fusion

    q = Qrels(qrels)
    runs = _inputs(src, dense, lexical, list(qrels))
    common = {"metric": TUNE_METRIC, "show_progress": False}
    if src.fusion == "weighted":
        best = optimize_fusion(q, runs, norm=NORMS[src.norm], method="wsum", step=WEIGHT_STEP, **common)
        return {"weights": [float(w) for w in best["weights"]]}
    with _quiet_rrf():
        k = int(optimize_fusion(q, runs, norm=None, method="rrf", **RRF_K_GRID, **common)["k"])
    best = optimize_fusion(q, _rrf_scores(runs, k), norm=None, method="wsum", step=WEIGHT_STEP, **common)
    return {"k": k, "weights": [float(w) for w in best["weights"]]}


# ----------------------------------------------------------------------------------
# The harness side: train queries for tuning, and one results record per hybrid


@dataclass
class TuningSplit:
    """The train queries the component runs must also answer, and their judgements."""
    split: str
    qids: list[str]
    q_texts: list[str]
    qrels: dict[str, dict[str, int]]
    components: set[str]          # variants whose runs the tuned hybrids need
    dropped_overlap: int          # train queries left out: also in the evaluated split


def tuning_split(variants: list, corpus_dir: Path, split: str, evaluated: list[str]) -> TuningSplit | None:
    """None when no hybrid is tuned; else the train split (a missing one is an error
    that names ``tune``)."""
    from ranksearch.encoder.corpus import load_beir

    tuned = [v for v in variants if v.kind == "hybrid" and v.source.tune]
    if not tuned:
        return None
    where = f"variants.{tuned[0].name}.hybrid.tune"
    if split == TUNE_SPLIT:
        raise InvalidArgument(where, f"fits on the {TUNE_SPLIT} qrels and must report on another "
                              f"split, but --split is {split!r}")
    qrels_file = Path(corpus_dir) / "qrels" / f"{TUNE_SPLIT}.tsv"
    if not qrels_file.is_file():
        raise InvalidArgument(where, f"needs {TUNE_SPLIT} judgements, and {qrels_file} does not exist")
    beir = load_beir(corpus_dir, TUNE_SPLIT)
    seen = set(evaluated)
    qids = [q for q in beir.qrels if q not in seen]
    if not qids:
        raise InvalidArgument(where, f"{qrels_file} has no query outside the evaluated split")
    return TuningSplit(split=TUNE_SPLIT, qids=qids, q_texts=[beir.queries[q] for q in qids],
                       qrels={q: beir.qrels[q] for q in qids},
                       components={n for v in tuned for n in (v.source.dense, v.source.lexical)},
                       dropped_overlap=len(beir.qrels) - len(qids))


def train_run_path(runs_dir: Path, run_file: str | Path) -> Path:
    """Where the train-split part of a component's run is saved: ``runs/train/<tag>.trec``."""
    return Path(runs_dir) / TUNE_SPLIT / Path(run_file).name


def _sum_ms(a: dict | None, b: dict | None) -> dict:
    """Per-query latency of running both retrievers one after the other, estimated by
    adding their percentiles (they were timed apart)."""
    a, b = a or {}, b or {}
    out = {}
    for key in ("p50_ms", "p95_ms", "mean_ms"):
        va, vb = a.get(key), b.get(key)
        out[key] = None if va is None and vb is None else (va or 0.0) + (vb or 0.0)
    out["n"] = min(a.get("n", 0), b.get("n", 0))
    return out


def hybrid_record(v, components: dict[str, dict], out: Path, qrels: dict,
                  tuning: TuningSplit | None) -> dict:
    """Fuse the first-seed runs of the two components, write the run file, evaluate it;
    the record has the shape of a dense/BM25 record plus ``fusion``."""
    src: HybridSource = v.source
    dense, lexical = components[src.dense], components[src.lexical]
    runs_dir = Path(out) / "runs"
    params, fitted_on = src.params(), None
    if src.tune:
        train = [M.read_trec(train_run_path(runs_dir, components[n]["seeds"][0]["run_file"]))
                 for n in (src.dense, src.lexical)]
        params = tune(src, train[0], train[1], tuning.qrels)
        fitted_on = {"split": tuning.split, "queries": len(tuning.qids), "metric": TUNE_METRIC,
                     "left_out_overlapping_queries": tuning.dropped_overlap,
                     "rrf_k_grid": RRF_K_GRID if src.fusion == "rrf" else None,
                     "weight_step": WEIGHT_STEP,
                     "train_score": M.evaluate(tuning.qrels, fuse(src, *train, params))[TUNE_METRIC]}
    fused = fuse(src, M.read_trec(Path(out) / dense["seeds"][0]["run_file"]),
                 M.read_trec(Path(out) / lexical["seeds"][0]["run_file"]), params)
    run_file = runs_dir / f"{v.name}.trec"
    M.write_trec(fused, run_file, v.name)
    scores = M.evaluate(qrels, M.read_trec(run_file))
    dl, ll = dense["latency"], lexical["latency"]
    latency = {"corpus_encode_docs_per_s": dl.get("corpus_encode_docs_per_s"),
               "query_encode": dl.get("query_encode"),
               "search": _sum_ms(dl.get("search"), ll.get("search")),
               "note": "search = dense search + BM25 search measured separately (fusion not "
                       "timed); query_encode = the dense variant's"}
    dc, lc = dense["cost"], lexical["cost"]
    cost = {**dc, "index_bytes": (dc.get("index_bytes") or 0) + (lc.get("index_bytes") or 0),
            "note": "the dense variant's encoder plus both indexes"}
    # params: the values used (fitted ones when tuned); the spec's own are under "spec"
    fusion = {"fusion": src.fusion, "norm": src.norm if src.fusion == "weighted" else None,
              "depth": src.depth, "params": params, "tuned": src.tune, "fitted_on": fitted_on,
              "components": {"dense": src.dense, "lexical": src.lexical},
              "component_run": "first seed of each component"}
    seed = {"seed": 0, "run_file": str(run_file.relative_to(Path(out))),
            "metrics": scores, "latency": latency, "nearest_agreement": None,
            "farthest_agreement": None, "seconds": 0.0, "model_folder": dense.get("model_folder"),
            "built_now": False, "build_seconds": 0.0}
    return {"name": v.name, "kind": "hybrid", "spec": {**v.resolved(), "seeds": [0]},
            "rank": dense.get("rank"), "heads": dense.get("heads"), "metrics": scores,
            "spread": {m: M.mean_spread([scores[m]]) for m in M.METRICS}, "seeds": [seed],
            "latency": latency, "cost": cost, "nearest_agreement": None,
            "farthest_agreement": None, "attention_use": None,
            "model_folder": dense.get("model_folder"), "fusion": fusion}
