"""Fine-tuning a ranked-encoder folder on a corpus's train pairs (encoder/finetune.py):
weights and loss move, the folder keeps tokenizer/rank/prompts and loads offline, runs
are deterministic and resumable, training texts carry the prompts encode() uses, bad
input is refused naming the field. Tiny real models and corpora, no mocks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from ranksearch.encoder.convert import convert_model
from ranksearch.encoder.corpus import write_beir
from ranksearch.encoder.embedder import load_encoder
from ranksearch.encoder.finetune import WORD_EMBEDDINGS, finetune_model, labelled_pairs, mine_hard_negatives
from ranksearch.encoder.st_module import RankedEncoderModule, load_sentence_transformer
from ranksearch.errors import FailedPrecondition, InvalidArgument, NotFound

TOPICS = [
    ("sqrt", "return the square root of x as a floating point number"),
    ("dumps", "serialize an object to a json formatted string"),
    ("open", "open a file and return a stream for reading or writing"),
    ("sleep", "delay execution of the current thread for seconds"),
    ("sort", "sort the list in place using less than comparisons"),
    ("join", "concatenate strings with a separator between them"),
    ("choice", "choose a random element from a sequence"),
    ("copy", "copy data and mode bits from one file to another"),
    ("hash", "return a hash digest of the data in hexadecimal"),
    ("walk", "directory tree generator yielding path folders and files"),
]
PROMPTS = {"query": "query: ", "document": "passage: "}
FAST = dict(batch_size=4, lr=1e-3, show_progress=False, threads=1)


def _corpus(root: Path, splits: dict) -> Path:
    corpus = [{"_id": f"m.{n}", "title": n, "text": f"{t}. the {n} function"} for n, t in TOPICS]
    queries = [{"_id": f"q.{n}", "text": t.split(" ", 2)[-1]} for n, t in TOPICS]
    write_beir(root, corpus, queries, splits)
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    pairs = [(f"q.{n}", f"m.{n}") for n, _ in TOPICS]
    return _corpus(tmp_path_factory.mktemp("ft_beir"), {"train": pairs[:8], "test": pairs[8:]})


@pytest.fixture(scope="module")
def source(tmp_path_factory, bert_st_folder) -> Path:
    """A rank-4 ranked-encoder folder with E5's prompts (converted from a tiny BERT)."""
    return convert_model(bert_st_folder, rank=4, out=tmp_path_factory.mktemp("ft_src") / "model",
                         prompts=PROMPTS)


def _weights(folder: Path) -> dict[str, np.ndarray]:
    return load_file(str(folder / "model.safetensors"))


def _pair_loss(folder: Path, corpus: Path) -> float:
    """MultipleNegativesRankingLoss over all train pairs at once, eval mode, prompts on."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = load_sentence_transformer(folder).eval()
    _, docs, pairs = labelled_pairs(corpus)
    queries = [PROMPTS["query"] + q for q, _, _ in pairs]
    documents = [PROMPTS["document"] + docs[d] for _, d, _ in pairs]
    with torch.no_grad():
        loss = MultipleNegativesRankingLoss(model)([model.preprocess(queries), model.preprocess(documents)], None)
    return float(loss)


def test_finetuning_moves_weights_lowers_loss_and_keeps_embeddings_frozen(source, corpus, tmp_path):
    out = finetune_model(source, corpus, tmp_path / "ft", steps=12, seed=0, **FAST)
    before, after = _weights(source), _weights(out)
    assert before.keys() == after.keys()
    moved = [k for k in before if not np.array_equal(before[k], after[k])]
    assert "blocks.0.attn.q_proj.weight" in moved and "blocks.1.ffn.up.weight" in moved
    np.testing.assert_array_equal(before["tok_emb.weight"], after["tok_emb.weight"])  # frozen by default
    assert _pair_loss(out, corpus) < _pair_loss(source, corpus)

    unfrozen = finetune_model(source, corpus, tmp_path / "ft-emb", steps=2, seed=0,
                              freeze_embeddings=False, **FAST)
    assert not np.array_equal(before["tok_emb.weight"], _weights(unfrozen)["tok_emb.weight"])


def test_output_loads_offline_and_keeps_tokenizer_rank_prompts_and_length(source, corpus, tmp_path):
    out = finetune_model(source, corpus, tmp_path / "ft", steps=2, seed=3, max_seq_length=16, **FAST)
    src, emb = load_encoder(source), load_encoder(out)
    assert emb.describe()["rank"] == src.describe()["rank"] == [4, 4]
    assert emb.prompts == src.prompts == PROMPTS
    assert emb.model.max_seq_length == src.model.max_seq_length == 48  # trained at 16, kept 48
    text = "the nearest document to the query"
    assert emb.model.tokenizer(text)["input_ids"] == src.model.tokenizer(text)["input_ids"]
    assert emb.encode([text], role="query").shape == (1, 32)
    record = json.loads((out / "training.json").read_text())
    ft = record["finetune"]
    assert ft["source"]["folder"] == str(source.resolve())
    assert ft["source"]["conversion.json"]["rank"] == [4, 4]  # the source's own record
    assert (ft["lr"], ft["batch_size"], ft["train_max_seq_length"], ft["max_seq_length"]) == (1e-3, 4, 16, 48)
    assert (record["steps"], record["seed"], record["corpus"]) == (2, 3, str(corpus))
    assert record["pairs_from_qrels"] == 8
    assert not (out / "checkpoints").exists()


def test_training_texts_carry_the_prompts_encode_uses(source, corpus, tmp_path, monkeypatch):
    seen: list[list[str]] = []
    real = RankedEncoderModule.preprocess

    def spy(self, inputs, prompt=None, **kwargs):  # records, then runs the real tokenisation
        seen.append(list(inputs))
        return real(self, inputs, prompt=prompt, **kwargs)

    monkeypatch.setattr(RankedEncoderModule, "preprocess", spy)
    finetune_model(source, corpus, tmp_path / "ft", steps=1, seed=0, hard_negatives=1, **FAST)
    queries, documents, negatives = seen[:3]  # one step: query, document, negative columns
    _, docs, pairs = labelled_pairs(corpus)
    assert set(queries) <= {PROMPTS["query"] + q for q, _, _ in pairs}
    assert set(documents) <= {PROMPTS["document"] + t for t in docs.values()}
    assert set(negatives) <= {PROMPTS["document"] + t for t in docs.values()}
    assert len(queries) == len(documents) == len(negatives) == 4


def test_hard_negatives_are_bm25_neighbours_that_are_not_relevant(corpus):
    ids, docs, pairs = labelled_pairs(corpus)
    negatives = mine_hard_negatives(ids, docs, pairs, 2, "standard")
    assert negatives == mine_hard_negatives(ids, docs, pairs, 2, "standard")  # deterministic
    for (_, doc_id, relevant), found in zip(pairs, negatives):
        assert len(found) == 2 and docs[doc_id] not in found
        assert not {docs[r] for r in relevant} & set(found)


def test_same_seed_same_weights_and_resume_matches(source, corpus, tmp_path):
    a = finetune_model(source, corpus, tmp_path / "a", steps=4, seed=7, **FAST)
    b = finetune_model(source, corpus, tmp_path / "b", steps=4, seed=7, **FAST)
    partial = finetune_model(source, corpus, tmp_path / "c", steps=4, seed=7, stop_after=2, **FAST)
    assert (partial / "checkpoints").is_dir() and not (partial / "training.json").exists()
    c = finetune_model(source, corpus, tmp_path / "c", steps=4, seed=7, **FAST)
    wa = _weights(a)
    for other in (b, c):
        wo = _weights(other)
        for key in wa:
            np.testing.assert_array_equal(wa[key], wo[key], err_msg=key)
    d = finetune_model(source, corpus, tmp_path / "d", steps=4, seed=8, **FAST)
    assert not np.array_equal(wa["blocks.0.attn.q_proj.weight"], _weights(d)["blocks.0.attn.q_proj.weight"])


def test_a_corpus_without_train_judgements_is_refused_naming_it(source, tmp_path):
    pairs = [(f"q.{n}", f"m.{n}") for n, _ in TOPICS]
    test_only = _corpus(tmp_path / "test_only", {"test": pairs})
    with pytest.raises(FailedPrecondition) as err:
        finetune_model(source, test_only, tmp_path / "ft", steps=2, **FAST)
    assert err.value.field == "corpus" and "qrels/train.tsv" in str(err.value)
    assert not (tmp_path / "ft").exists()


@pytest.mark.parametrize("kwargs, field", [
    ({"steps": 0}, "steps"), ({"steps": -3}, "steps"), ({"steps": "3"}, "steps"), ({"lr": 0.0}, "lr"),
    ({"lr": -1e-5}, "lr"), ({"lr": "fast"}, "lr"),
    ({"batch_size": 1}, "batch_size"), ({"scale": 0.0}, "scale"), ({"hard_negatives": -1}, "hard_negatives"),
    ({"max_seq_length": 0}, "max_seq_length"), ({"max_seq_length": 4096}, "max_seq_length"),
    ({"freeze_embeddings": "yes"}, "freeze_embeddings"),
])
def test_bad_arguments_are_refused_naming_the_field(source, corpus, tmp_path, kwargs, field):
    args = {"steps": 2, **FAST, **kwargs}
    with pytest.raises(InvalidArgument) as err:
        finetune_model(source, corpus, tmp_path / "ft", **args)
    assert err.value.field == field
    assert not (tmp_path / "ft").exists()


def test_a_missing_source_folder_is_refused_naming_it(corpus, tmp_path):
    with pytest.raises(NotFound) as err:
        finetune_model(tmp_path / "nowhere", corpus, tmp_path / "ft", steps=2, **FAST)
    assert err.value.field == "source"


def test_word_embeddings_name_matches_the_model(source):
    names = dict(load_sentence_transformer(source).named_parameters())
    assert WORD_EMBEDDINGS in names and names[WORD_EMBEDDINGS].ndim == 2


def test_cli_finetunes_and_refuses_a_corpus_without_train_pairs(source, corpus, tmp_path, capsys):
    from ranksearch.cli import main

    out = tmp_path / "cli-ft"
    rc = main(["finetune", "--from", str(source), "--corpus", str(corpus), "--out", str(out), "--steps", "2",
               "--batch-size", "4", "--lr", "1e-3", "--hard-negatives", "1", "--threads", "1", "--quiet"])
    assert rc == 0 and "model written to" in capsys.readouterr().out
    assert json.loads((out / "training.json").read_text())["finetune"]["hard_negatives"] == 1
    pairs = [(f"q.{n}", f"m.{n}") for n, _ in TOPICS]
    test_only = _corpus(tmp_path / "test_only", {"test": pairs})
    rc = main(["finetune", "--from", str(source), "--corpus", str(test_only), "--out", str(tmp_path / "x"),
               "--quiet"])
    assert rc != 0 and "corpus" in capsys.readouterr().err


EXTRA_TOPICS = [
    ("ls", "list the entries of a directory in alphabetical order"),
    ("cp", "copy files and directories to a destination"),
    ("grep", "print the lines of files that match a pattern"),
]


def _extra_corpus(root: Path, prefix: str = "x") -> Path:
    corpus = [{"_id": f"{prefix}.{n}", "title": n, "text": t} for n, t in EXTRA_TOPICS]
    queries = [{"_id": f"q{prefix}.{n}", "text": t.split(" ", 3)[-1]} for n, t in EXTRA_TOPICS]
    pairs = [(f"q{prefix}.{n}", f"{prefix}.{n}") for n, _ in EXTRA_TOPICS]
    write_beir(root, corpus, queries, {"train": pairs[:1], "test": pairs[1:]})
    return root


def test_extra_corpora_add_all_their_judged_pairs_and_documents(corpus, tmp_path):
    extra = _extra_corpus(tmp_path / "extra")
    ids, docs, pairs = labelled_pairs(corpus)
    ids2, docs2, pairs2 = labelled_pairs(corpus, [extra])
    # every split of the extra corpus (train and test) is training data; the corpus's own
    # test judgements are not
    assert len(pairs2) == len(pairs) + len(EXTRA_TOPICS)
    assert {d for _, d, _ in pairs2} - {d for _, d, _ in pairs} == {f"x.{n}" for n, _ in EXTRA_TOPICS}
    assert "q.walk" not in {q for q, _, _ in pairs2} and set(ids2) == set(ids) | {f"x.{n}" for n, _ in EXTRA_TOPICS}
    assert ids2 == sorted(ids2) and docs2["x.ls"].startswith("ls: list the entries")
    # hard negatives are mined over all documents, deterministically
    negatives = mine_hard_negatives(ids2, docs2, pairs2, 1, "standard")
    assert negatives == mine_hard_negatives(ids2, docs2, pairs2, 1, "standard")


def test_extra_corpora_are_recorded_and_change_the_model(source, corpus, tmp_path):
    extra = _extra_corpus(tmp_path / "extra")
    plain = finetune_model(source, corpus, tmp_path / "plain", steps=3, seed=1, **FAST)
    more = finetune_model(source, corpus, tmp_path / "more", steps=3, seed=1, extra_corpora=[extra], **FAST)
    record = json.loads((more / "training.json").read_text())
    assert record["extra_corpora"] == [str(extra)] and record["training_examples"] == 8 + len(EXTRA_TOPICS)
    key = "blocks.0.attn.q_proj.weight"
    assert not np.array_equal(_weights(plain)[key], _weights(more)[key])
    # a checkpoint of one run does not resume as the other
    partial = finetune_model(source, corpus, tmp_path / "p", steps=3, seed=1, stop_after=1, **FAST)
    with pytest.raises(FailedPrecondition, match="extra_corpora"):
        finetune_model(source, corpus, tmp_path / "p", steps=3, seed=1, extra_corpora=[extra], **FAST)
    assert (partial / "checkpoints").is_dir()


def test_bad_extra_corpora_are_refused_naming_the_field(source, corpus, tmp_path):
    clash = _extra_corpus(tmp_path / "clash", prefix="m")  # document ids m.ls ... do not clash
    write_beir(tmp_path / "clash2", [{"_id": "m.sqrt", "text": "another text"}], [{"_id": "qq", "text": "q"}],
               {"train": [("qq", "m.sqrt")]})
    no_qrels = tmp_path / "no_qrels"
    no_qrels.mkdir()
    for extra in ([corpus], [tmp_path / "clash2"], [no_qrels], [tmp_path / "missing"], "notalist",
                  [clash, clash]):
        with pytest.raises((InvalidArgument, FailedPrecondition)) as err:
            finetune_model(source, corpus, tmp_path / "ft", steps=2, extra_corpora=extra, **FAST)
        assert err.value.field == "extra_corpora", extra
    assert not (tmp_path / "ft").exists()


def test_cli_extra_corpus_option(source, corpus, tmp_path, capsys):
    from ranksearch.cli import main

    extra = _extra_corpus(tmp_path / "extra")
    out = tmp_path / "cli-extra"
    rc = main(["finetune", "--from", str(source), "--corpus", str(corpus), "--out", str(out), "--steps", "2",
               "--batch-size", "4", "--lr", "1e-3", "--extra-corpus", str(extra), "--threads", "1", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert json.loads((out / "training.json").read_text())["extra_corpora"] == [str(extra)]
