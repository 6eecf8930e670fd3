"""Hybrid variants in the harness: the fused run is ranx's fusion of the saved runs,
tuning fits on the train qrels and reports on test, spec errors name the key."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from ranksearch.errors import ConfigError, InvalidArgument
from ranksearch.evaluation import metrics as M
from ranksearch.evaluation.hybrid import HybridSource, fuse, tuning_split
from ranksearch.evaluation.spec import parse_spec

HYBRID_SPEC = """
name: tiny_hybrid
baseline: tiny16
attention_check: none
latency_queries: 5
variants:
  - name: tiny
    train: {preset: tiny, heads: 2, rank: [16], steps: 4, batch_size: 8}
  - name: rrf
    hybrid: {dense: tiny16, lexical: bm25, fusion: rrf, k: 60, weights: [1, 1]}
  - name: zsum
    hybrid: {dense: tiny16, fusion: weighted, norm: z-score, weights: [0.7, 0.3], depth: 5}
  - name: tuned
    hybrid: {dense: tiny16, fusion: rrf, tune: true}
"""


@pytest.fixture(scope="module")
def hybrid_results(tmp_path_factory, tiny_corpus):
    """One real `ranksearch eval` through the CLI with hybrid variants (tiny model + BM25)."""
    from ranksearch.cli import main

    root = tmp_path_factory.mktemp("hybrid")
    (root / "spec.yaml").write_text(HYBRID_SPEC)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RANKSEARCH_CACHE", str(root / "cache"))
        rc = main(["eval", "--corpus", str(tiny_corpus), "--spec", str(root / "spec.yaml"),
                   "--out", str(root / "out"), "--threads", "1", "--lang", "ja"])
    assert rc == 0
    out = root / "out"
    return out, json.loads((out / "results.json").read_text())


def _qrels(corpus, split):
    out = {}
    for line in (corpus / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]:
        q, d, s = line.split("\t")
        out.setdefault(q, {})[d] = int(s)
    return out


def _variant(results, name):
    return next(v for v in results["variants"] if v["name"] == name)


def _assert_is_ordering_of(saved: M.Run, reference: M.Run):
    """``saved`` (read back from a TREC file, 6 decimals) holds the reference's documents
    and scores, in an order the reference scores never contradict."""
    assert set(saved) == set(reference)
    for q, docs in saved.items():
        ref = reference[q]
        assert set(docs) == set(ref), q
        ordered = [ref[d] for d in docs]
        assert all(a >= b - 1e-12 for a, b in zip(ordered, ordered[1:])), q
        assert all(abs(docs[d] - ref[d]) < 1e-6 for d in docs), q


def test_hybrid_rrf_run_is_ranx_rrf_of_the_two_saved_runs(hybrid_results):
    from ranx import Run, fuse as ranx_fuse

    out, res = hybrid_results
    dense = M.read_trec(out / "runs" / "tiny16.trec")
    lexical = M.read_trec(out / "runs" / "bm25.trec")
    # RRF reads ranks: give ranx the saved rank order as scores
    ref = ranx_fuse([Run(M.by_rank(dense)), Run(M.by_rank(lexical))], norm=None, method="rrf",
                    params={"k": 60})
    _assert_is_ordering_of(M.read_trec(out / "runs" / "rrf.trec"), {q: ref[q] for q in dense})
    rec = _variant(res, "rrf")
    assert rec["kind"] == "hybrid" and rec["fusion"]["params"] == {"k": 60, "weights": [1.0, 1.0]}
    assert rec["fusion"]["fitted_on"] is None


def test_weighted_hybrid_is_ranx_zscore_weighted_sum_over_depth(hybrid_results):
    from ranx import Run, fuse as ranx_fuse

    out, _ = hybrid_results
    cut = lambda run: {q: dict(list(d.items())[:5]) for q, d in run.items()}  # noqa: E731
    dense = cut(M.read_trec(out / "runs" / "tiny16.trec"))
    lexical = cut(M.read_trec(out / "runs" / "bm25.trec"))
    ref = ranx_fuse([Run(dense), Run(lexical)], norm="zmuv", method="wsum",
                    params={"weights": [0.7, 0.3]})
    saved = M.read_trec(out / "runs" / "zsum.trec")
    _assert_is_ordering_of(saved, {q: ref[q] for q in dense})
    assert all(len(d) <= 10 for d in saved.values())  # at most depth from each run


def test_tuning_fits_on_train_runs_and_reports_on_test(hybrid_results, tiny_corpus):
    from ranx import Qrels, Run, optimize_fusion
    from ranx.fusion import rrf

    out, res = hybrid_results
    test_q, train_q = _qrels(tiny_corpus, "test"), _qrels(tiny_corpus, "train")
    # every run file the report scores holds test queries only; the train part is apart
    for name in ("tiny16", "bm25", "rrf", "tuned"):
        assert set(M.read_trec(out / "runs" / f"{name}.trec")) == set(test_q)
    train = [M.read_trec(out / "runs" / "train" / f"{n}.trec") for n in ("tiny16", "bm25")]
    assert all(set(r) == set(train_q) for r in train)
    # refit independently on the train run files with ranx
    ranked = [Run(M.by_rank(r)) for r in train]
    metric = {"metric": "ndcg@10", "show_progress": False}
    k = optimize_fusion(Qrels(train_q), ranked, norm=None, method="rrf", min_k=10, max_k=100,
                        step=10, **metric)["k"]
    weights = optimize_fusion(Qrels(train_q), [rrf([r], k=k) for r in ranked], norm=None,
                              method="wsum", step=0.1, **metric)["weights"]
    rec = _variant(res, "tuned")
    assert rec["fusion"]["params"] == {"k": k, "weights": list(weights)}
    assert rec["fusion"]["fitted_on"]["split"] == "train"
    assert rec["fusion"]["fitted_on"]["queries"] == len(train_q)
    # the reported run is the test runs fused with the fitted parameters
    test_runs = [M.read_trec(out / "runs" / f"{n}.trec") for n in ("tiny16", "bm25")]
    src = HybridSource(dense="tiny16", tune=True)
    _assert_is_ordering_of(M.read_trec(out / "runs" / "tuned.trec"),
                           fuse(src, *test_runs, rec["fusion"]["params"]))
    assert rec["metrics"] == M.evaluate(test_q, M.read_trec(out / "runs" / "tuned.trec"))
    # significance is computed for hybrids like for any variant
    assert "tiny16|tuned" in res["significance"]["pairs"] and "bm25|tuned" in res["significance"]["pairs"]


def test_report_shows_dense_lexical_and_hybrid_in_both_languages(hybrid_results):
    from ranksearch.evaluation.report import write_report

    out, _ = hybrid_results
    ja = (out / "report.ja.html").read_text(encoding="utf-8")
    en = write_report(out, lang="en").read_text(encoding="utf-8")
    for page, heading in ((en, "Dense, lexical and hybrid retrieval"), (ja, "ハイブリッド検索")):
        assert heading in page
        assert 'id="plot-hybrid"' in page and 'id="hybrid"' in page
        assert "[[" not in page
    assert "train で当てはめ" in ja
    from ranksearch.evaluation.strings import STRINGS
    for key, en_text in STRINGS["en"].items():  # no English phrase leaked into the ja page
        if len(en_text) > 12 and "{" not in en_text and en_text != STRINGS["ja"][key]:
            assert en_text not in ja, key
    from ranksearch.evaluation.results import load_results, summary_text
    text = summary_text(load_results(out))
    assert "vs dense (p)" in text and any(l.startswith("tuned ") and " train " in l
                                          for l in text.splitlines())


def test_weighted_rrf_follows_the_formula_and_keeps_queries_one_run_missed():
    dense = {"q1": {"a": 0.9, "b": 0.5}}
    lexical = {"q1": {"b": 7.0, "c": 3.0}, "q2": {"c": 1.0}}
    got = fuse(HybridSource(dense="d", k=10, weights=[2.0, 1.0]), dense, lexical,
               {"k": 10, "weights": [2.0, 1.0]})
    want = {"a": 2 / 11, "b": 2 / 12 + 1 / 11, "c": 1 / 12}
    assert got["q1"].keys() == want.keys()
    assert all(abs(got["q1"][d] - s) < 1e-12 for d, s in want.items())
    assert list(got["q1"]) == ["b", "a", "c"]
    assert got["q2"] == pytest.approx({"c": 1 / 11})  # no placeholder document leaks out


def _spec(text):
    return parse_spec(yaml.safe_load(textwrap.dedent(text)))


BASE = """
    baseline: full
    variants:
      - name: full
        convert: {rank: null}
      - name: h
        hybrid: %s
"""


@pytest.mark.parametrize("body, message", [
    ("{dense: full, fuison: rrf}", r"^variants\.h\.hybrid\.fuison: unknown key; did you mean 'fusion'\?"),
    ("{dense: ful}", r"^variants\.h\.hybrid\.dense: must name a dense variant of this spec, got 'ful'; did you mean 'full'\?"),
    ("{dense: bm25}", r"^variants\.h\.hybrid\.dense: must name a dense variant"),
    ("{dense: full, lexical: full}", r"^variants\.h\.hybrid\.lexical: must name a lexical variant"),
    ("{fusion: rrf}", r"^variants\.h\.hybrid\.dense: is required"),
    ("{dense: full, fusion: rff}", r"^variants\.h\.hybrid\.fusion: must be one of rrf, weighted, got 'rff'; did you mean 'rrf'\?"),
    ("{dense: full, fusion: weighted, k: 60}", r"^variants\.h\.hybrid\.k: only used with fusion: rrf"),
    ("{dense: full, norm: z-score}", r"^variants\.h\.hybrid\.norm: only used with fusion: weighted"),
    ("{dense: full, fusion: weighted, norm: zscore}", r"^variants\.h\.hybrid\.norm: must be one of min-max, z-score, got 'zscore'; did you mean 'z-score'\?"),
    ("{dense: full, k: 0}", r"^variants\.h\.hybrid\.k: must be a positive integer, got 0"),
    ("{dense: full, weights: [1]}", r"^variants\.h\.hybrid\.weights: must be two non-negative numbers"),
    ("{dense: full, weights: [0, 0]}", r"^variants\.h\.hybrid\.weights: must be two non-negative numbers"),
    ("{dense: full, tune: true, k: 60}", r"^variants\.h\.hybrid\.k: tune: true fits k on the train qrels"),
    ("{dense: full, tune: yes please}", r"^variants\.h\.hybrid\.tune: must be true or false"),
    ("{dense: full, depth: 500}", r"^variants\.h\.hybrid\.depth: must be at most top_k \(100\)"),
])
def test_hybrid_spec_errors_name_the_key(body, message):
    with pytest.raises(ConfigError, match=message):
        _spec(BASE % body)


def test_hybrid_variant_takes_no_model_keys_and_language_is_checked():
    with pytest.raises(ConfigError, match=r"^variants\.h\.seeds: a hybrid variant has only name and hybrid"):
        _spec(BASE.replace("        hybrid: %s", "        hybrid: {dense: full}\n        seeds: [0]"))
    with pytest.raises(ConfigError, match=r"^language: unknown language 'jp'"):
        _spec("language: jp\n" + textwrap.dedent(BASE % "{dense: full}"))
    s = _spec(BASE % "{dense: full, fusion: weighted, norm: z-score, weights: [2, 1], depth: 20}")
    assert [(v.name, v.kind) for v in s.variants] == [("full", "convert"), ("h", "hybrid"), ("bm25", "bm25")]
    assert s.variant("h").source == HybridSource(dense="full", fusion="weighted", norm="z-score",
                                                 weights=[2.0, 1.0], depth=20)
    assert s.to_dict()["variants"][1]["source"]["norm"] == "z-score"


def test_tuning_needs_a_train_split_apart_from_the_evaluated_one(tmp_path, tiny_corpus):
    import shutil

    spec = _spec(BASE % "{dense: full, tune: true}")
    corpus = Path(shutil.copytree(tiny_corpus, tmp_path / "beir"))
    with pytest.raises(InvalidArgument, match=r"^variants\.h\.hybrid\.tune: fits on the train qrels "
                                              r"and must report on another split"):
        tuning_split(spec.variants, corpus, "train", [])
    got = tuning_split(spec.variants, corpus, "test", ["t0"])  # t0 is also evaluated: left out
    assert "t0" not in got.qids and got.dropped_overlap == 1 and got.components == {"full", "bm25"}
    (corpus / "qrels" / "train.tsv").unlink()
    with pytest.raises(InvalidArgument, match=r"^variants\.h\.hybrid\.tune: needs train judgements"):
        tuning_split(spec.variants, corpus, "test", [])
    assert tuning_split(_spec(BASE % "{dense: full}").variants, corpus, "test", []) is None
