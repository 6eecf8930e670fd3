import json

import pytest
import torch

from ranksearch.cli import main
from ranksearch.errors import InvalidArgument
from ranksearch.evaluation.probe import (ProbeConfig, attention_free_baseline, exact_head,
                                         hard_attention, make_batch, mse, run_probe,
                                         top1_accuracy)


@pytest.mark.parametrize("task", ["nearest", "farthest"])
@pytest.mark.parametrize("dim,points", [(4, 2), (8, 16), (16, 16), (16, 200), (32, 1000)])
def test_full_rank_hard_head_with_identity_maps_is_exact(task, dim, points):
    """docs/BACKGROUND.md: Q = ±I, K = V = I, one head, hard attention -> zero error for any N."""
    g = torch.Generator().manual_seed(dim * 1000 + points)
    tokens, pts, tgt, idx = make_batch(task, 8, points, dim, g)
    head = exact_head(dim, task)
    with torch.no_grad():
        pred = hard_attention(head, tokens, None if task == "farthest" else pts)
    assert mse(pred, tgt) == pytest.approx(0.0, abs=1e-10)
    assert top1_accuracy(pred, pts, idx) == 1.0


def test_farthest_needs_the_negated_query_map():
    g = torch.Generator().manual_seed(0)
    tokens, pts, tgt, _ = make_batch("farthest", 8, 16, 8, g)
    with torch.no_grad():
        wrong = hard_attention(exact_head(8, "nearest"), tokens)  # Q = +I finds itself
    assert mse(wrong, tgt) > 1.0


def test_zero_predictor_scores_one_and_attention_free_is_between():
    g = torch.Generator().manual_seed(0)
    _, _, tgt, _ = make_batch("farthest", 64, 16, 16, g)
    assert mse(torch.zeros_like(tgt), tgt) == pytest.approx(1.0, abs=1e-6)
    base = attention_free_baseline("farthest", 16, 16, seed=0, samples=512)
    assert 0.3 < base["mse"] < 1.0


def test_probe_smoke_tiny_settings():
    cfg = ProbeConfig(dim=4, points=4, ranks=[1, 4], steps=15, seeds=2, batch=16, eval_sets=32)
    res = run_probe(cfg, progress=False)
    assert len(res["records"]) == 4
    rec = res["records"][0]
    for key in ("rank", "heads", "layers", "points", "seed", "mse", "accuracy", "qk_parameters"):
        assert key in rec
    # equal budget: heads = ceil(dim / rank), so q/k parameters are equal here
    assert {r["qk_parameters"] for r in res["records"]} == {2 * 4 * 4}
    assert [s["rank"] for s in res["summary"]] == [1, 4]
    assert res["baselines"]["zero"]["mse"] == 1.0


def test_probe_cli_writes_results_and_report(tmp_path, capsys):
    out = tmp_path / "probe"
    rc = main(["probe", "--out", str(out), "--dim", "4", "--points", "4", "--ranks", "1,2,4",
               "--steps", "10", "--seeds", "1", "--task", "nearest", "--layers", "2"])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert [r["rank"] for r in res["records"]] == [1, 2, 4]
    assert res["config"]["task"] == "nearest" and res["config"]["layers"] == 2
    assert "attention_free" in res["baselines"] and "git_revision" in res
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html
    assert "rank heads" in capsys.readouterr().out


def test_probe_rejects_bad_settings_naming_them():
    with pytest.raises(InvalidArgument, match=r"ranks: each rank must be in \[1, dim=8\], got 9"):
        ProbeConfig(dim=8, ranks=[9])
    with pytest.raises(InvalidArgument, match="task: must be one of"):
        ProbeConfig(task="middle")
    with pytest.raises(InvalidArgument, match="orthonormal sets need points <= dim"):
        make_batch("farthest", 2, 9, 8, torch.Generator(), kind="orthonormal")


@pytest.mark.slow  # the full default probe: ~1 min of CPU time (minutes on busy shared cores)
def test_default_probe_reproduces_the_rank_effect(tmp_path):
    from ranksearch.evaluation.probe_report import probe_effect

    res = run_probe(ProbeConfig(), progress=False)
    effect = probe_effect(res)
    assert effect["reproduced"] and effect["equal_or_larger_budget"]
    assert effect["full_mse"] < 0.1
    assert effect["best_low_mse"] > 0.5


def test_probe_report_in_japanese_has_no_untranslated_keys():
    from ranksearch.evaluation.probe_report import render_probe

    res = run_probe(ProbeConfig(dim=4, points=4, ranks=[2, 4], steps=5, seeds=1, batch=8,
                                eval_sets=16), progress=False)
    html = render_probe(res, "ja")
    assert '<html lang="ja">' in html and "[[" not in html
    assert "合成ランクプローブ" in html and "自明な基準予測" in html
