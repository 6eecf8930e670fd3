import pytest
import torch

from ranksearch.encoder.attention import RankedAttention
from ranksearch.errors import ConfigError


def _padding_mask(b, t, lengths):
    return torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]  # (b, t)


@pytest.mark.parametrize("heads,rank,value_dim", [(1, 1, 4), (2, 3, 8), (4, 8, 5), (3, 16, 16)])
def test_fused_equals_reference_with_padding(heads, rank, value_dim):
    torch.manual_seed(0)
    att = RankedAttention(d_model=16, heads=heads, rank=rank, value_dim=value_dim).eval()
    x = torch.randn(3, 7, 16)
    mask = _padding_mask(3, 7, [7, 4, 1])
    fused, ref = att(x, mask), att.reference(x, mask)
    assert fused.shape == (3, 7, 16)
    torch.testing.assert_close(fused, ref, atol=1e-5, rtol=1e-5)


def test_padded_keys_do_not_affect_real_tokens():
    torch.manual_seed(0)
    att = RankedAttention(16, heads=2, rank=4, value_dim=8).eval()
    x = torch.randn(1, 5, 16)
    mask = _padding_mask(1, 5, [3])
    noisy = x.clone()
    noisy[:, 3:] = 100 * torch.randn(1, 2, 16)  # garbage in the padded positions
    torch.testing.assert_close(att(x, mask)[:, :3], att(noisy, mask)[:, :3])


def test_cross_attention_and_scores():
    torch.manual_seed(0)
    att = RankedAttention(8, heads=2, rank=3, value_dim=4, bias=False).eval()
    q, ctx = torch.randn(2, 1, 8), torch.randn(2, 6, 8)
    mask = _padding_mask(2, 6, [6, 2])
    torch.testing.assert_close(att(q, mask, context=ctx), att.reference(q, mask, context=ctx))
    s = att.scores(q, context=ctx, mask=mask)
    assert s.shape == (2, 2, 1, 6)
    assert torch.isinf(s[1, :, :, 2:]).all()
    # scaled by 1/sqrt(rank): recompute head 0 by hand
    qh = q @ att.q_proj.weight[:3].T
    kh = ctx @ att.k_proj.weight[:3].T
    torch.testing.assert_close(att.scores(q, context=ctx)[:, 0], qh @ kh.transpose(1, 2) / 3 ** 0.5)


@pytest.mark.parametrize("name", ["heads", "rank", "value_dim"])
def test_impossible_sizes_name_the_setting(name):
    kwargs = dict(d_model=8, heads=2, rank=2, value_dim=2)
    kwargs[name] = 0
    with pytest.raises(ConfigError, match=name):
        RankedAttention(**kwargs)


@pytest.mark.parametrize("rank,value_dim", [(2, 8), (8, 2)])
def test_gradients_match_reference(rank, value_dim):
    torch.manual_seed(0)
    att = RankedAttention(8, heads=2, rank=rank, value_dim=value_dim).train()  # dropout 0
    x = torch.randn(2, 5, 8)
    mask = _padding_mask(2, 5, [5, 3])
    grads = []
    for path in (att.forward, att.reference):
        att.zero_grad()
        path(x, mask).square().sum().backward()
        grads.append([p.grad.clone() for p in att.parameters()])
    for g_fused, g_ref in zip(*grads):
        torch.testing.assert_close(g_fused, g_ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("bias", [True, False])
def test_inference_fused_projection_matches_and_follows_weight_updates(bias):
    torch.manual_seed(0)
    att = RankedAttention(8, heads=2, rank=3, value_dim=5, bias=bias).eval()
    x, mask = torch.randn(2, 6, 8), _padding_mask(2, 6, [6, 4])
    with torch.inference_mode():  # reference keeps three separate projections
        torch.testing.assert_close(att(x, mask), att.reference(x, mask))
    with torch.no_grad():
        att.k_proj.weight.mul_(-2.0)  # in place: the fused copy must be rebuilt
        fused = att(x, mask)
    torch.testing.assert_close(fused, att.reference(x, mask).detach())
    att.load_state_dict({k: torch.randn_like(v) for k, v in att.state_dict().items()})
    with torch.inference_mode():
        torch.testing.assert_close(att(x, mask), att.reference(x, mask), atol=1e-4, rtol=1e-4)
