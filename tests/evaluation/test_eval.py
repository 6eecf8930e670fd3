"""The eval harness end to end on a tiny corpus with tiny trained models + BM25."""
import csv
import json
import math

from ranksearch.cli import main
from ranksearch.evaluation.strings import STRINGS


def _trec(path):
    """Own reader: {qid: [doc ids in rank-column order]}."""
    rows = {}
    for line in path.read_text().splitlines():
        qid, q0, doc, rank, score, tag = line.split()
        assert q0 == "Q0"
        rows.setdefault(qid, []).append((int(rank), doc))
    return {q: [d for _, d in sorted(r)] for q, r in rows.items()}


def _qrels(corpus):
    out = {}
    for line in (corpus / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        q, d, s = line.split("\t")
        out.setdefault(q, {})[d] = int(s)
    return out


def _ndcg10(ranked, rels):
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(rels.values(), reverse=True)[:10]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg


def _mrr10(ranked, rels):
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:10]) if rels.get(d, 0) > 0), 0.0)


def _recall(ranked, rels, k):
    rel = {d for d, r in rels.items() if r > 0}
    return len(rel & set(ranked[:k])) / len(rel)


def test_metrics_recomputed_from_trec_run_files_match_results(eval_results, tiny_corpus):
    res = json.loads((eval_results / "results.json").read_text())
    qrels = _qrels(tiny_corpus)
    assert {v["name"] for v in res["variants"]} == {"tiny4", "tiny16", "bm25"}
    for v in res["variants"]:
        run = _trec(eval_results / v["seeds"][0]["run_file"])
        mine = {
            "ndcg@10": sum(_ndcg10(run.get(q, []), r) for q, r in qrels.items()) / len(qrels),
            "mrr@10": sum(_mrr10(run.get(q, []), r) for q, r in qrels.items()) / len(qrels),
            "recall@1": sum(_recall(run.get(q, []), r, 1) for q, r in qrels.items()) / len(qrels),
            "recall@10": sum(_recall(run.get(q, []), r, 10) for q, r in qrels.items()) / len(qrels),
            "recall@100": sum(_recall(run.get(q, []), r, 100) for q, r in qrels.items()) / len(qrels),
        }
        for metric, value in mine.items():
            assert abs(v["metrics"][metric] - value) < 1e-6, (v["name"], metric)


def test_results_json_is_the_contract(eval_results):
    res = json.loads((eval_results / "results.json").read_text())
    for key in ("spec", "variants", "significance", "versions", "hardware", "git_revision",
                "corpus", "recommendation", "baseline", "roi_inputs"):
        assert key in res, key
    assert res["baseline"] == "tiny16" and res["spec"]["baseline"] == "tiny16"
    assert res["versions"]["ranx"] and res["hardware"]["threads_used"] == 1
    sig = res["significance"]
    assert sig["test"] == "student"
    p = sig["pairs"]["tiny16|tiny4"]["ndcg@10"]["p_value"]
    assert 0.0 <= p <= 1.0
    dense = next(v for v in res["variants"] if v["name"] == "tiny4")
    assert dense["rank"] == [4, 4] and dense["heads"] == 2
    assert dense["latency"]["query_encode"]["n"] == 5 and dense["latency"]["search"]["p95_ms"] > 0
    assert dense["cost"]["flops_per_token"] > 0 and dense["cost"]["index_bytes"] > 0
    assert dense["farthest_agreement"] == 1.0 and dense["nearest_agreement"] == 1.0
    base = next(v for v in res["variants"] if v["name"] == "tiny16")
    att = base["attention_use"]
    assert att["available"] and len(att["entropy_per_layer"]) == 2
    assert all(0.0 <= e <= 1.0 + 1e-6 for e in att["entropy_per_layer"])
    assert res["recommendation"]["name"] in {"tiny4", "tiny16", "bm25"}
    rows = list(csv.DictReader(open(eval_results / "results.csv")))
    assert [r["variant"] for r in rows] == ["tiny4", "tiny16", "bm25"]


def test_models_are_cached_by_spec_hash(eval_results):
    res = json.loads((eval_results / "results.json").read_text())
    folders = [v["model_folder"] for v in res["variants"] if v["kind"] == "train"]
    assert len(set(folders)) == 2
    assert all(v["seeds"][0]["built_now"] for v in res["variants"] if v["kind"] == "train")


def test_report_rerenders_in_japanese_without_untranslated_keys(eval_results):
    assert main(["eval", "report", str(eval_results), "--lang", "ja"]) == 0
    html = (eval_results / "report.ja.html").read_text()
    assert '<html lang="ja">' in html
    assert "[[" not in html
    assert "推奨" in html and "ベースラインとの有意差" in html
    # no English template phrase leaked into the Japanese page
    for key, en in STRINGS["en"].items():
        if len(en) > 12 and "{" not in en and en != STRINGS["ja"][key]:
            assert en not in html, key


def test_string_tables_have_the_same_keys():
    assert set(STRINGS["en"]) == set(STRINGS["ja"])
    assert all(v.strip() for table in STRINGS.values() for v in table.values())
    for key in (k for k in STRINGS["en"] if k.endswith("_head")):  # table headers: same columns
        assert STRINGS["en"][key].count("|") == STRINGS["ja"][key].count("|"), key


def test_report_is_self_contained(eval_results):
    html = (eval_results / "report.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert html.count("data:image/png;base64,") == 3
    assert "ROI" in html and "queries per day" in html


def test_eval_shows_progress_between_and_within_variants(eval_results):
    """A bar over the variants (rate, ETA), a timed line per stage of each variant,
    and the training bar inside a variant."""
    err = (eval_results.parent / "stderr.txt").read_text(encoding="utf-8")
    assert "variants:" in err and "train:" in err
    for line in ("tiny4: model (built once", "tiny4: encoding ", "tiny16: encoding ",
                 "tiny16: attention check"):
        assert f"] {line}" in err, line
