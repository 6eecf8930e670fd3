import pytest

from ranksearch.errors import ConfigError
from ranksearch.evaluation.results import decide, pareto
from ranksearch.evaluation.roi import parse_roi, roi_rows


def _variant(name, ndcg, hit, enc_ms, search_ms, flops):
    return {"name": name, "kind": "convert", "metrics": {"ndcg@10": ndcg, "hit_rate@10": hit},
            "latency": {"query_encode": {"p50_ms": enc_ms, "p95_ms": 2 * enc_ms},
                        "search": {"p50_ms": search_ms, "p95_ms": 2 * search_ms}},
            "cost": {"flops_per_token": flops}}


def _results(sig_best_vs_cheap: bool):
    return {"baseline": "full", "variants": [_variant("full", 0.50, 0.80, 9.0, 1.0, 100),
                                             _variant("r4", 0.48, 0.70, 7.0, 1.0, 60)],
            "significance": {"test": "student", "max_p": 0.05, "pairs": {
                "full|r4": {"ndcg@10": {"p_value": 0.01 if sig_best_vs_cheap else 0.4,
                                        "significant": sig_best_vs_cheap}},
                "r4|full": {"ndcg@10": {"p_value": 0.01 if sig_best_vs_cheap else 0.4,
                                        "significant": sig_best_vs_cheap}}}}}


def test_recommendation_is_cheapest_not_significantly_worse():
    assert decide(_results(False))["name"] == "r4"
    assert decide(_results(True))["name"] == "full"


def test_roi_figures_follow_the_printed_model():
    roi = parse_roi({"queries_per_day": 10000, "value_per_answered_query": 0.1,
                     "server_cost_per_hour": 3.6, "latency_budget_ms": 17})
    rows = {r["variant"]: r for r in roi_rows(_results(False), roi)}
    r4 = rows["r4"]
    assert r4["delta_value_per_day"] == pytest.approx(10000 * -0.10 * 0.1)   # -100
    # 10 ms vs 8 ms per query: 10000 * 0.002 s / 3600 * 3.6 = -0.02 per day
    assert r4["delta_compute_per_day"] == pytest.approx(-0.02)
    assert r4["net_per_year"] == pytest.approx((-100 + 0.02) * 365)
    assert rows["full"]["within_latency_budget"] is False and r4["within_latency_budget"] is True


def test_roi_rejects_unknown_and_missing_keys():
    with pytest.raises(ConfigError, match=r"^roi\.queries_per_dya: unknown key"):
        parse_roi({"queries_per_dya": 1, "server_cost_per_hour": 1, "cost_per_miss": 1})
    with pytest.raises(ConfigError, match=r"^roi\.server_cost_per_hour: is required"):
        parse_roi({"queries_per_day": 1, "cost_per_miss": 1})


def test_pareto_frontier():
    pts = [("a", 1.0, 0.3), ("b", 2.0, 0.5), ("c", 3.0, 0.4), ("d", 4.0, 0.6)]
    assert pareto(pts) == ["a", "b", "d"]
