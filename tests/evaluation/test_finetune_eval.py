"""`finetune:` variants in the eval harness: one run compares a model folder with its
fine-tuned copy (trained on the corpus's train judgements, cached like every build),
and evaluating a fine-tuned variant on the train split itself is refused."""
import json

import pytest
import yaml

from ranksearch.encoder.config import EncoderConfig
from ranksearch.encoder.train import train_model
from ranksearch.errors import InvalidArgument
from ranksearch.evaluation.runner import run_eval
from ranksearch.evaluation.spec import parse_spec


@pytest.fixture(scope="module")
def base_model(tmp_path_factory, tiny_corpus):
    config = EncoderConfig.preset("tiny", layers=1, ffn_dim=32, max_len=64)
    return train_model(tiny_corpus, tmp_path_factory.mktemp("base") / "model", config, steps=2, seed=0,
                       batch_size=4, max_seq_length=32, vocab_size=120, show_progress=False, threads=1)


def _spec(base):
    return parse_spec(yaml.safe_load(f"""
        name: ft
        baseline: base
        attention_check: none
        latency_queries: 2
        variants:
          - name: base
            folder: {base}
          - name: ft
            finetune: {{source: {base}, steps: 3, batch_size: 4, lr: 1.0e-3}}
    """))


def test_one_eval_compares_a_model_and_its_fine_tuned_copy(base_model, tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("RANKSEARCH_CACHE", str(tmp_path / "cache"))
    out = run_eval(tiny_corpus, _spec(base_model), tmp_path / "out", threads=1)
    res = json.loads((out / "results.json").read_text())
    rows = {v["name"]: v for v in res["variants"]}
    assert set(rows) == {"base", "ft", "bm25"}
    folder = rows["ft"]["model_folder"]
    record = json.loads((tmp_path / "cache" / "models" / folder.rsplit("/", 1)[-1] / "training.json").read_text())
    assert record["pairs_from_qrels"] == 10 and record["steps"] == 3  # the corpus's 10 train pairs
    assert "ndcg@10" in rows["ft"]["metrics"]
    # a second run reuses the cached fine-tuned folder
    again = run_eval(tiny_corpus, _spec(base_model), tmp_path / "out2", threads=1)
    rows2 = {v["name"]: v for v in json.loads((again / "results.json").read_text())["variants"]}
    assert rows2["ft"]["model_folder"] == folder and rows2["ft"]["seeds"][0]["built_now"] is False


def test_evaluating_a_fine_tuned_variant_on_its_own_train_split_is_refused(base_model, tiny_corpus, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("RANKSEARCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(InvalidArgument) as err:
        run_eval(tiny_corpus, _spec(base_model), tmp_path / "out", split="train", threads=1)
    assert err.value.field == "variants.ft.finetune"
    assert not (tmp_path / "cache" / "models").exists()


def test_a_finetune_variant_also_trains_on_its_extra_corpora(base_model, tiny_corpus, tmp_path, monkeypatch):
    from ranksearch.encoder.corpus import write_beir

    monkeypatch.setenv("RANKSEARCH_CACHE", str(tmp_path / "cache"))
    extra = tmp_path / "extra"
    write_beir(extra, [{"_id": f"extra.{i}", "text": f"extra document number {i}"}
                                            for i in range(4)],
                       [{"_id": f"qx.{i}", "text": f"number {i}"} for i in range(4)],
                       {"train": [("qx.0", "extra.0")], "test": [(f"qx.{i}", f"extra.{i}") for i in (1, 2, 3)]})
    spec = parse_spec(yaml.safe_load(f"""
        name: ft-extra
        baseline: ft
        attention_check: none
        latency_queries: 2
        variants:
          - name: ft
            finetune: {{source: {base_model}, steps: 2, batch_size: 4, lr: 1.0e-3}}
          - name: ft-extra
            finetune: {{source: {base_model}, steps: 2, batch_size: 4, lr: 1.0e-3, extra_corpora: [{extra}]}}
    """))
    missing = parse_spec(yaml.safe_load(f"""
        name: missing
        baseline: ft
        attention_check: none
        variants:
          - name: base
            folder: {base_model}
          - name: ft
            finetune: {{source: {base_model}, steps: 2, batch_size: 4, extra_corpora: [{tmp_path / 'nowhere'}]}}
    """))
    with pytest.raises(InvalidArgument) as err:  # refused before any variant is built or scored
        run_eval(tiny_corpus, missing, tmp_path / "out0", threads=1)
    assert err.value.field == "variants.ft.finetune.extra_corpora"
    assert not (tmp_path / "cache" / "models").exists()
    plain, more = spec.variant("ft"), spec.variant("ft-extra")
    assert "extra_corpora" not in plain.resolved()["source"]  # model keys of older specs are kept
    assert plain.model_key() != more.model_key()
    out = run_eval(tiny_corpus, spec, tmp_path / "out", threads=1)
    rows = {v["name"]: v for v in json.loads((out / "results.json").read_text())["variants"]}
    folder = tmp_path / "cache" / "models" / rows["ft-extra"]["model_folder"].rsplit("/", 1)[-1]
    record = json.loads((folder / "training.json").read_text())
    assert record["pairs_from_qrels"] == 10 + 4 and record["extra_corpora"] == [str(extra)]
