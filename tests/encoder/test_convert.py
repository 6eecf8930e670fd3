import json
import math

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from ranksearch.encoder.convert import convert_model, truncate_head
from ranksearch.encoder.st_module import load_sentence_transformer
from ranksearch.errors import AlreadyExists, InvalidArgument

HEAD = 8  # hidden 32 / 4 heads in the fixture


@pytest.fixture(scope="module")
def original(bert_st_folder):
    return SentenceTransformer(str(bert_st_folder), device="cpu", local_files_only=True)


@pytest.fixture(scope="module")
def full(bert_st_folder, tmp_path_factory):
    return convert_model(bert_st_folder, None, tmp_path_factory.mktemp("conv") / "full")


def _encode(folder, sentences):
    return load_sentence_transformer(folder).encode(sentences, convert_to_numpy=True)


def test_full_rank_conversion_reproduces_the_original(full, original, sentences):
    want = original.encode(sentences, convert_to_numpy=True)
    got = _encode(full, sentences)
    assert np.abs(got - want).max() <= 1e-5
    assert json.loads((full / "conversion.json").read_text())["rank"] == [HEAD, HEAD]


def test_truncation_to_head_width_is_the_identity(bert_st_folder, full, tmp_path, sentences):
    same = convert_model(bert_st_folder, HEAD, tmp_path / "same")
    a = load_sentence_transformer(same)[0].encoder.state_dict()
    b = load_sentence_transformer(full)[0].encoder.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _augmented_form(wq, bq, wk):
    return torch.cat([wq.T @ wk, (bq @ wk)[None]]).double()  # (d+1, d)


@pytest.mark.parametrize("rank", [1, 3])
def test_lower_rank_gives_the_best_rank_k_form_per_head(bert_st_folder, full, tmp_path, rank, sentences):
    low = convert_model(bert_st_folder, rank, tmp_path / "low")
    enc_full = load_sentence_transformer(full)[0].encoder
    enc_low = load_sentence_transformer(low)[0].encoder
    for blk_full, blk_low in zip(enc_full.blocks, enc_low.blocks):
        f, lo = blk_full.attn, blk_low.attn
        assert lo.rank == rank and lo.q_proj.out_features == 4 * rank
        for h in range(4):
            sl_f, sl_l = slice(h * HEAD, (h + 1) * HEAD), slice(h * rank, (h + 1) * rank)
            a = _augmented_form(f.q_proj.weight[sl_f], f.q_proj.bias[sl_f], f.k_proj.weight[sl_f])
            a = a * math.sqrt(rank / HEAD)  # scores are scaled by 1/sqrt(rank) now
            b = _augmented_form(lo.q_proj.weight[sl_l], lo.q_proj.bias[sl_l], lo.k_proj.weight[sl_l])
            assert torch.linalg.matrix_rank(b, rtol=1e-5) == rank
            s = torch.linalg.svdvals(a)
            # Eckart–Young: the error equals the norm of the dropped singular values
            assert torch.linalg.norm(a - b).item() == pytest.approx(torch.linalg.norm(s[rank:]).item(), rel=1e-4)
    diff = np.abs(_encode(low, sentences) - _encode(full, sentences)).max()
    assert diff > 1e-3


def test_key_dependent_query_bias_is_kept_and_key_only_terms_cancel():
    """Via the SVD path at full rank, every softmax row over keys equals the original's,
    although the key bias is dropped; dropping the query bias as well would not."""
    torch.manual_seed(1)
    d, r0 = 12, 6
    wq, wk, bq, bk = torch.randn(r0, d), torch.randn(r0, d), torch.randn(r0), torch.randn(r0)
    x, y = torch.randn(5, d), torch.randn(9, d)
    original = torch.softmax((x @ wq.T + bq) @ (y @ wk.T + bk).T / math.sqrt(r0), dim=-1)
    nwq, nbq, nwk, nbk, err = truncate_head(wq, bq, wk, bk, r0)
    assert err < 1e-6 and torch.count_nonzero(nbk) == 0
    converted = torch.softmax((x @ nwq.T + nbq) @ (y @ nwk.T + nbk).T / math.sqrt(r0), dim=-1)
    torch.testing.assert_close(converted, original, atol=1e-5, rtol=1e-4)
    no_bias = torch.softmax((x @ wq.T) @ (y @ wk.T).T / math.sqrt(r0), dim=-1)
    assert (no_bias - original).abs().max() > 1e-2


def test_distillation_is_deterministic_and_reduces_the_gap(bert_st_folder, tmp_path, sentences, capsys):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": str(i), "text": s}) + "\n"
                              for i, s in enumerate(sentences * 3)))
    runs = [convert_model(bert_st_folder, 2, tmp_path / f"d{i}", distill_steps=8, corpus=corpus)
            for i in range(2)]
    reports = [json.loads((r / "conversion.json").read_text()) for r in runs]
    assert reports[0]["distill_loss"] == reports[1]["distill_loss"]
    assert reports[0]["distill_loss"]["last"] < reports[0]["distill_loss"]["first"]
    assert "distill: 100%" in capsys.readouterr().err  # a progress bar (rate, ETA) per run
    np.testing.assert_array_equal(_encode(runs[0], sentences), _encode(runs[1], sentences))


def test_bad_arguments_name_the_setting(bert_st_folder, full, tmp_path):
    with pytest.raises(InvalidArgument, match=r"^rank: layer 0: must be an integer in \[1, 8\]"):
        convert_model(bert_st_folder, 9, tmp_path / "x")
    with pytest.raises(InvalidArgument, match="^rank: layer 0"):
        convert_model(bert_st_folder, 0, tmp_path / "x")
    with pytest.raises(AlreadyExists, match="^out: "):
        convert_model(bert_st_folder, 2, full)
    with pytest.raises(InvalidArgument, match="^corpus: distillation needs a corpus"):
        convert_model(bert_st_folder, 2, tmp_path / "y", distill_steps=3)


def test_a_ranked_folder_converts_again_like_its_bert_source(bert_st_folder, full, tmp_path, sentences):
    """An imported or converted full-rank folder is a valid source: truncating it to rank
    K gives the same model as truncating the original BERT folder to K."""
    from_bert = convert_model(bert_st_folder, 2, tmp_path / "from-bert")
    from_ranked = convert_model(full, 2, tmp_path / "from-ranked")
    a = load_sentence_transformer(from_bert)[0].encoder.state_dict()
    b = load_sentence_transformer(from_ranked)[0].encoder.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert np.abs(_encode(from_bert, sentences) - _encode(from_ranked, sentences)).max() <= 1e-5
    assert json.loads((from_ranked / "conversion.json").read_text())["rank"] == [2, 2]
