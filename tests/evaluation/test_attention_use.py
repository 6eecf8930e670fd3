import math

import pytest
import torch
from torch import nn

from ranksearch.encoder.attention import RankedAttention
from ranksearch.evaluation.attention_use import attention_entropy, uniform_attention


class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = RankedAttention(8, heads=2, rank=3, value_dim=4)
        self.b = RankedAttention(8, heads=1, rank=8, value_dim=8)

    def forward(self, x, mask):
        return self.b(self.a(x, mask), mask)


def _mask(lengths, t):
    return torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]  # (b, t)


def test_uniform_ablation_equals_mean_of_values_over_real_tokens():
    torch.manual_seed(0)
    att = RankedAttention(8, heads=2, rank=3, value_dim=4).eval()
    x, mask = torch.randn(2, 5, 8), _mask([5, 3], 5)
    with uniform_attention(att), torch.no_grad():
        got = att(x, mask)
    with torch.no_grad():
        v = att.v_proj(x).view(2, 5, 2, 4)                         # (b, t, h, e)
        expect = []
        for i, n in enumerate([5, 3]):
            mean = v[i, :n].mean(0).reshape(1, 8)                   # (1, h*e)
            expect.append(att.out_proj(mean).expand(5, 8))
        expect = torch.stack(expect)
    torch.testing.assert_close(got, expect, atol=1e-6, rtol=1e-5)
    # hooks are removed afterwards: the module attends normally again
    with torch.no_grad():
        assert not torch.allclose(att(x, mask), got)


def test_uniform_ablation_equals_zero_query_weights():
    """Zero query/key maps give equal scores, i.e. exactly uniform softmax attention."""
    torch.manual_seed(1)
    model = TwoLayers().eval()
    x, mask = torch.randn(3, 6, 8), _mask([6, 4, 2], 6)
    with uniform_attention(model), torch.no_grad():
        ablated = model(x, mask)
    with torch.no_grad():
        for m in (model.a, model.b):
            m.q_proj.weight.zero_()
            m.q_proj.bias.zero_()
        uniform = model(x, mask)
    real = mask[..., None]
    torch.testing.assert_close(ablated * real, uniform * real, atol=1e-5, rtol=1e-5)


def test_entropy_is_one_for_uniform_and_low_for_peaked_attention():
    torch.manual_seed(0)
    model = TwoLayers().eval()
    x, mask = torch.randn(2, 6, 8), _mask([6, 4], 6)
    with torch.no_grad():
        for m in (model.a, model.b):
            m.q_proj.weight.zero_()
            m.q_proj.bias.zero_()
    ent = attention_entropy(model, lambda _: model(x, mask), ["unused"])
    assert ent == [pytest.approx(1.0, abs=1e-5)] * 2
    with torch.no_grad():  # sharp attention: large q and k maps
        for m in (model.a, model.b):
            m.q_proj.weight.copy_(torch.randn_like(m.q_proj.weight) * 30)
            m.k_proj.weight.copy_(torch.randn_like(m.k_proj.weight) * 30)
    ent = attention_entropy(model, lambda _: model(x, mask), ["unused"])
    assert all(e < 0.3 for e in ent) and not any(math.isnan(e) for e in ent)


def _encoder_and_batch():
    """A tiny RankedEncoder (sharp random attention) and three texts of different
    lengths, padded into one batch: the encoder's inference path for it is
    ``forward_unpadded``, which never calls ``RankedAttention.forward``."""
    from ranksearch.encoder.config import EncoderConfig
    from ranksearch.encoder.model import RankedEncoder

    torch.manual_seed(0)
    model = RankedEncoder(EncoderConfig.preset("tiny", vocab_size=50, max_len=16)).eval()
    with torch.no_grad():  # random init attends almost uniformly: sharpen it
        for block in model.blocks:
            block.attn.q_proj.weight.mul_(50)
            block.attn.k_proj.weight.mul_(50)
    lengths = [7, 3, 5]
    ids = torch.randint(1, 50, (3, 7)) * _mask(lengths, 7)            # (b, t), 0 = padding
    return model, ids, _mask(lengths, 7), lengths


def _pooled(model, ids, mask):
    with torch.no_grad():
        h = model(ids, mask.long())                                     # (b, t, d)
    m = mask[..., None].float()
    return (h * m).sum(1) / m.sum(1)                                    # (b, d) mean pooling


def test_entropy_on_a_padded_batch_equals_one_text_at_a_time():
    model, ids, mask, lengths = _encoder_and_batch()
    batch = attention_entropy(model, lambda _: _pooled(model, ids, mask), ["unused"])
    assert not any(math.isnan(e) for e in batch)
    per_text = [attention_entropy(model, lambda _, i=i, n=n: _pooled(model, ids[i:i + 1, :n], mask[i:i + 1, :n]),
                                  ["unused"]) for i, n in enumerate(lengths)]
    # the batch value is the mean over all real query tokens: a length-weighted mean
    expect = [sum(e[layer] * n for e, n in zip(per_text, lengths)) / sum(lengths)
              for layer in range(len(batch))]
    assert batch == pytest.approx(expect, abs=1e-5)


def test_uniform_ablation_changes_a_padded_batch_like_one_text_at_a_time():
    model, ids, mask, lengths = _encoder_and_batch()
    normal = _pooled(model, ids, mask)
    with uniform_attention(model):
        ablated = _pooled(model, ids, mask)
        alone = torch.cat([_pooled(model, ids[i:i + 1, :n], mask[i:i + 1, :n])
                           for i, n in enumerate(lengths)])
    assert float((ablated - normal).abs().max()) > 1e-3  # the ablation reaches the batch
    torch.testing.assert_close(ablated, alone, atol=1e-5, rtol=1e-4)
    # afterwards the modules use their own paths again
    torch.testing.assert_close(_pooled(model, ids, mask), normal)
    assert "forward_unpadded" not in vars(model.blocks[0].attn)
