"""The terminal summary states each bf16/int8 variant's nDCG@10 change against fp32,
loudly where it exceeds the tolerance (issue 12: int8 only with its quality change)."""
from ranksearch.evaluation.results import PRECISION_TOLERANCE, precision_text


def variant(name, precision, ndcg):
    return {"name": name, "precision": precision, "model_folder": "/m",
            "metrics": {"ndcg@10": ndcg}}


RESULTS = {"variants": [variant("full-fp32", "fp32", 0.5000), variant("full-bf16", "bf16", 0.5008),
                        variant("full-int8", "int8", 0.4862),
                        {"name": "bm25", "precision": None, "model_folder": None,
                         "metrics": {"ndcg@10": 0.4}}]}


def test_each_lower_precision_gets_its_change_and_only_large_ones_are_flagged():
    assert PRECISION_TOLERANCE == 0.003
    lines = precision_text(RESULTS)
    assert len(lines) == 2
    bf16, int8 = lines
    assert bf16.startswith("Precision: full-bf16 (bf16) moves nDCG@10 by +0.0008")
    assert int8.startswith("QUALITY CHANGE: full-int8 (int8) moves nDCG@10 by -0.0138")
    assert "not a drop-in replacement" in int8


def test_japanese_summary_says_the_same():
    bf16, int8 = precision_text(RESULTS, lang="ja")
    assert "+0.0008" in bf16 and "以内" in bf16
    assert int8.startswith("品質の変化: full-int8 (int8)") and "-0.0138" in int8
