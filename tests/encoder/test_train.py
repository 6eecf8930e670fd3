"""Contrastive training: determinism, resume after interruption, model folder, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from ranksearch.encoder.config import EncoderConfig
from ranksearch.encoder.corpus import write_beir
from ranksearch.encoder.embedder import load_encoder
from ranksearch.encoder.train import Example, batch_for_step, train_model
from ranksearch.errors import AlreadyExists, FailedPrecondition, InvalidArgument

TOPICS = [
    ("sqrt", "Return the square root of x as a floating point number"),
    ("dumps", "Serialize an object to a JSON formatted string using the encoder"),
    ("open", "Open a file and return a stream object for reading or writing"),
    ("sleep", "Delay execution of the current thread for a number of seconds"),
    ("sort", "Sort the list in place using only less than comparisons"),
    ("join", "Concatenate any number of strings with a separator between them"),
    ("choice", "Choose a random element from a non-empty sequence"),
    ("copy", "Copy data and mode bits from one file to another path"),
    ("hash", "Return a hash digest of the data given so far in hexadecimal"),
    ("walk", "Directory tree generator yielding the path, folders and files"),
    ("split", "Split the string at every occurrence of the separator"),
    ("compile", "Compile a regular expression pattern into a pattern object"),
]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny_beir")
    corpus = [{"_id": f"m.{name}", "title": f"m.{name}", "text": f"{text}. Details about {name} and its arguments."}
              for name, text in TOPICS]
    queries = [{"_id": f"q:m.{name}", "text": text.split(" ", 3)[-1]} for name, text in TOPICS]
    pairs = [(q["_id"], d["_id"]) for q, d in zip(queries, corpus)]
    write_beir(root, corpus, queries, {"train": pairs[:10], "test": pairs[10:]})
    return root


CONFIG = EncoderConfig.preset("tiny", layers=1, ffn_dim=32, max_len=64)
FAST = dict(batch_size=4, lr=1e-3, max_seq_length=32, vocab_size=120, show_progress=False, threads=1)


def weights(folder: Path) -> dict[str, np.ndarray]:
    return load_file(str(folder / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)


def test_two_runs_with_the_same_seed_give_identical_weights(tiny_corpus, tmp_path):
    a = train_model(tiny_corpus, tmp_path / "a", CONFIG, steps=4, seed=7, **FAST)
    b = train_model(tiny_corpus, tmp_path / "b", CONFIG, steps=4, seed=7, **FAST)
    assert_same_weights(a, b)
    c = train_model(tiny_corpus, tmp_path / "c", CONFIG, steps=4, seed=8, **FAST)
    assert any(not np.array_equal(weights(a)[k], weights(c)[k]) for k in weights(a))


def test_interrupted_run_resumes_to_the_same_weights(tiny_corpus, tmp_path):
    whole = train_model(tiny_corpus, tmp_path / "whole", CONFIG, steps=6, seed=3, checkpoint_every=3, **FAST)

    out = tmp_path / "resumed"
    train_model(tiny_corpus, out, CONFIG, steps=6, seed=3, checkpoint_every=3, stop_after=3, **FAST)
    assert (out / "checkpoints" / "state.safetensors").is_file()
    assert not (out / "modules.json").exists()  # no half-finished model folder
    train_model(tiny_corpus, out, CONFIG, steps=6, seed=3, checkpoint_every=3, **FAST)

    assert_same_weights(whole, out)
    record = json.loads((out / "training.json").read_text())
    assert record["resumed_from_step"] == 3
    assert not (out / "checkpoints").exists()


def test_model_folder_loads_and_records_the_run(tiny_corpus, tmp_path):
    out = train_model(tiny_corpus, tmp_path / "m", CONFIG, steps=3, seed=0, **FAST)
    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == 3 and record["seed"] == 0
    assert record["corpus"] == str(tiny_corpus)
    assert record["pairs_from_qrels"] == 10
    assert record["config"]["vocab_size"] <= 200 and record["config"]["heads"] == CONFIG.heads
    assert np.isfinite(record["final_loss"]) and record["wall_time_s"] > 0
    embedder = load_encoder(out)
    vectors = embedder.encode(["square root", "json string"], role="document")
    assert vectors.shape == (2, CONFIG.d_model)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # a finished model with the same settings is reused, not retrained
    before = (out / "model.safetensors").stat().st_mtime_ns
    assert train_model(tiny_corpus, out, CONFIG, steps=3, seed=0, **FAST) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == before


def test_self_supervised_spans_on_a_plain_jsonl_corpus(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": f"{text}. {text} again with more words here"}) + "\n"
                            for i, (_, text) in enumerate(TOPICS)), encoding="utf-8")
    out = train_model(path, tmp_path / "m", CONFIG, steps=2, seed=0, **FAST)
    record = json.loads((out / "training.json").read_text())
    assert record["pairs_from_qrels"] == 0 and record["training_examples"] == len(TOPICS)


def test_changed_settings_refuse_to_resume_and_name_the_setting(tiny_corpus, tmp_path):
    out = tmp_path / "m"
    train_model(tiny_corpus, out, CONFIG, steps=4, seed=1, stop_after=2, checkpoint_every=2, **FAST)
    with pytest.raises(FailedPrecondition) as err:
        train_model(tiny_corpus, out, CONFIG, steps=4, seed=2, **FAST)
    assert err.value.field == "out"
    assert "different settings.seed (before: 1, now: 2)" in str(err.value)
    with pytest.raises(FailedPrecondition, match=r"config.rank \(before: 16, now: 4\)"):
        train_model(tiny_corpus, out, CONFIG.with_overrides(rank=4), steps=4, seed=1, **FAST)
    # resume=False starts over
    train_model(tiny_corpus, out, CONFIG, steps=2, seed=2, resume=False, **FAST)
    assert (out / "modules.json").is_file()


def test_bad_settings_name_the_setting(tiny_corpus, tmp_path):
    with pytest.raises(InvalidArgument, match="batch_size: must be >= 2"):
        train_model(tiny_corpus, tmp_path / "x", CONFIG, steps=2, seed=0, **{**FAST, "batch_size": 1})
    with pytest.raises(InvalidArgument, match="pairs: must be one of"):
        train_model(tiny_corpus, tmp_path / "x", CONFIG, steps=2, seed=0, pairs="both", **FAST)
    with pytest.raises(InvalidArgument, match="max_seq_length: is 100 but the config's max_len is 64"):
        train_model(tiny_corpus, tmp_path / "x", CONFIG, steps=2, seed=0, **{**FAST, "max_seq_length": 100})
    with pytest.raises(InvalidArgument, match="corpus: .*missing does not exist"):
        train_model(tmp_path / "missing", tmp_path / "x", CONFIG, steps=2, seed=0, **FAST)


def test_batches_are_a_pure_function_of_seed_and_step():
    examples = [Example(None, " ".join(f"w{i}_{j}" for j in range(30))) for i in range(10)] + \
               [Example(f"q{i}", f"d{i}") for i in range(6)]
    for step in range(8):
        a = batch_for_step(examples, step, 4, seed=5)
        assert a == batch_for_step(examples, step, 4, seed=5)
        assert len(set(a[1])) == 4  # no example twice in a batch
    assert batch_for_step(examples, 0, 4, seed=5) != batch_for_step(examples, 0, 4, seed=6)
    queries, documents = batch_for_step(examples, 0, 16, seed=0)
    for q, d in zip(queries, documents):
        if q.startswith("w"):  # two spans of the same document
            assert q.split()[0].split("_")[0] == d.split()[0].split("_")[0]
            assert 8 <= len(q.split()) <= 30


def test_refuses_to_write_into_a_folder_it_did_not_make(tiny_corpus, tmp_path):
    other = tmp_path / "precious"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    for resume in (True, False):
        with pytest.raises(AlreadyExists, match="precious exists and is neither empty nor a training output folder"):
            train_model(tiny_corpus, other, CONFIG, steps=2, seed=0, resume=resume, **FAST)
    assert (other / "notes.txt").read_text() == "keep me"


class _Planted:
    """A pickle that, when unpickled, creates a marker file (stands for any code)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("name", ["state.safetensors", "state.pt"])
def test_a_planted_pickle_checkpoint_is_never_executed(tiny_corpus, tmp_path, name):
    """A pickle placed where a checkpoint goes (under the current name, or the
    earlier versions' state.pt) is refused with a message, and its code never runs."""
    import pickle

    from ranksearch.errors import FailedPrecondition

    out, marker = tmp_path / "run", tmp_path / "pwned"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / name).write_bytes(pickle.dumps({"model": _Planted(marker)}))
    with pytest.raises(FailedPrecondition) as err:
        train_model(tiny_corpus, out, CONFIG, steps=4, seed=0, **FAST)
    assert not marker.exists()
    assert str(out / "checkpoints" / name) in str(err.value)
    # the same with torch.save's zip container
    torch.save({"model": _Planted(marker)}, out / "checkpoints" / name)
    with pytest.raises(FailedPrecondition):
        train_model(tiny_corpus, out, CONFIG, steps=4, seed=0, **FAST)
    assert not marker.exists()


def test_checkpoint_round_trips_optimizer_state(tmp_path):
    from ranksearch.encoder.checkpoint import load_checkpoint, save_checkpoint

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = {"step": 3, "losses": [0.5, 0.25], "optimizer": opt.state_dict(),
             "rng": torch.get_rng_state(), "request": {"settings": {"lr": 0.1}}}
    save_checkpoint(state, tmp_path / "s.safetensors")
    back = load_checkpoint(tmp_path / "s.safetensors")
    assert back["step"] == 3 and back["losses"] == [0.5, 0.25] and back["request"] == state["request"]
    assert torch.equal(back["rng"], state["rng"])
    again = torch.optim.AdamW(model.parameters(), lr=0.1)
    again.load_state_dict(back["optimizer"])
    assert torch.equal(again.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
