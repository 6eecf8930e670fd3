import pytest

from ranksearch.encoder.config import PRESETS, EncoderConfig
from ranksearch.errors import ConfigError


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_and_round_trip(name):
    cfg = EncoderConfig.preset(name)
    assert EncoderConfig.from_dict(cfg.to_dict()) == cfg
    assert len(cfg.ranks) == cfg.layers


def test_overrides_and_per_layer_rank():
    cfg = EncoderConfig.preset("tiny", rank=[2, 8], heads=4)
    assert cfg.ranks == [2, 8] and cfg.heads == 4
    assert EncoderConfig.preset("tiny", rank=3).ranks == [3, 3]
    assert cfg.with_overrides(rank=1).ranks == [1, 1]


def test_unknown_key_is_named_with_suggestion():
    with pytest.raises(ConfigError, match=r"rnak: unknown key.*'rank'") as err:
        EncoderConfig.preset("tiny", rnak=4)
    assert err.value.field == "rnak"


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'smal'.*small"):
        EncoderConfig.preset("smal")


@pytest.mark.parametrize("key,value,field", [
    ("rank", 0, "rank"), ("heads", 0, "heads"), ("value_dim", 0, "value_dim"),
    ("layers", 0, "layers"), ("d_model", -1, "d_model"), ("rank", [4, 0], r"rank\[1\]"),
    ("rank", [4], "rank"), ("rank", 2.5, "rank"), ("norm", "middle", "norm"),
    ("pooling", "max", "pooling"), ("dropout", 1.0, "dropout"),
])
def test_impossible_settings_name_the_setting(key, value, field):
    with pytest.raises(ConfigError, match=f"^{field}: "):
        EncoderConfig.preset("tiny", **{key: value})
