import pytest
import torch

from ranksearch.encoder.config import EncoderConfig
from ranksearch.encoder.model import RankedEncoder
from ranksearch.errors import InvalidArgument


def _model(**overrides):
    torch.manual_seed(0)
    cfg = EncoderConfig.preset("tiny", vocab_size=50, max_len=16, **overrides)
    return RankedEncoder(cfg).eval()


@pytest.mark.parametrize("overrides", [
    dict(norm="post"), dict(norm="pre"), dict(rank=[1, 7], heads=3, value_dim=5),
    dict(type_vocab_size=2),
])
def test_fused_equals_reference_and_shapes(overrides):
    model = _model(**overrides)
    ids = torch.randint(1, 50, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 5:] = 0
    out = model(ids, mask)
    assert out.shape == (3, 9, 32)
    torch.testing.assert_close(out, model(ids, mask, reference=True), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("overrides", [dict(norm="post"), dict(norm="pre"), dict(rank=[1, 7], heads=3, value_dim=5)])
def test_inference_on_real_tokens_only_equals_the_padded_path(overrides):
    model = _model(**overrides)
    ids = torch.randint(1, 50, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 5:] = 0
    mask[2, 2:] = 0
    padded = model(ids, mask)  # autograd on: the padded layout
    with torch.inference_mode():
        unpadded = model(ids, mask)
    real = mask.bool()
    torch.testing.assert_close(unpadded[real], padded.detach()[real], atol=1e-5, rtol=1e-5)
    assert not unpadded[~real].any()  # padded positions are zeros


def test_padding_does_not_change_real_tokens():
    model = _model()
    ids = torch.randint(1, 50, (1, 6))
    padded = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 6), torch.zeros(1, 4)], dim=1)
    torch.testing.assert_close(model(padded, mask)[:, :6], model(ids, torch.ones(1, 6)),
                               atol=1e-5, rtol=1e-5)


def test_per_layer_rank_shapes_the_projections():
    model = _model(rank=[2, 5], heads=3)
    assert [b.attn.q_proj.out_features for b in model.blocks] == [6, 15]
    assert [b.attn.v_proj.out_features for b in model.blocks] == [48, 48]  # value_dim 16


def test_too_long_input_names_the_field():
    with pytest.raises(InvalidArgument, match="input_ids: 17 tokens exceed max_len 16"):
        _model()(torch.ones(1, 17, dtype=torch.long))
