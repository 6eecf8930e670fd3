import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ranksearch.encoder.config import EncoderConfig
from ranksearch.encoder.cost import cost_report, flops_per_token, parameter_counts
from ranksearch.encoder.model import RankedEncoder


@pytest.mark.parametrize("overrides", [
    dict(), dict(rank=[2, 7], heads=3, value_dim=5, norm="pre", type_vocab_size=2),
    dict(rank=1, heads=8, value_dim=4),
])
def test_analytic_counts_match_the_model_and_flop_counter(overrides):
    cfg = EncoderConfig.preset("tiny", vocab_size=50, max_len=16, **overrides)
    model = RankedEncoder(cfg).eval()
    assert parameter_counts(cfg)["total"] == sum(p.numel() for p in model.parameters())
    b, t = 2, 12
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randint(0, 50, (b, t)), torch.ones(b, t), reference=True)
    # Both sides count 2 FLOPs per multiply-add of the matrix products (addmm, bmm) and
    # ignore element-wise work, so the analytic count must match exactly, not roughly.
    assert counter.get_total_flops() == flops_per_token(cfg, t)["total"] * b * t


def test_lower_rank_lowers_attention_flops_as_the_model_says():
    full = EncoderConfig.preset("small")  # rank 32
    low = full.with_overrides(rank=4)
    t = 128
    f_full, f_low = flops_per_token(full, t), flops_per_token(low, t)
    # scoring is proportional to heads · rank · T
    assert f_full["attention_scoring"] == 2 * full.layers * full.heads * 32 * t
    assert f_low["attention_scoring"] * 8 == f_full["attention_scoring"]
    assert f_low["attention_qk_proj"] * 8 == f_full["attention_qk_proj"]
    for part in ("attention_weighted_sum", "attention_vo_proj", "ffn"):
        assert f_low[part] == f_full[part]
    # and the measured count agrees on the difference
    measured = []
    for cfg in (full, low):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            RankedEncoder(cfg.with_overrides(vocab_size=100)).eval()(
                torch.randint(0, 100, (1, t)), torch.ones(1, t), reference=True)
        measured.append(counter.get_total_flops())
    assert measured[0] - measured[1] == (f_full["total"] - f_low["total"]) * t


def test_cost_report_shape():
    rep = cost_report(EncoderConfig.preset("tiny"), seq_len=64)
    assert rep["seq_len"] == 64
    assert rep["weights_bytes"] == 4 * rep["parameters"]["total"]
    assert set(rep["parameters"]) == {"embeddings", "attention_qk", "attention_vo", "ffn", "norms", "total"}
