"""WordPiece tokenizer: round trips, CJK handling, unseen characters, determinism."""
from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from ranksearch.encoder.tokenizer import UNK, normalize, train_tokenizer
from ranksearch.errors import InvalidArgument

ENGLISH = [
    "Return the square root of x.",
    "Serialize obj to a JSON formatted str, using the default encoder (see below).",
    "The quick brown fox jumps over the lazy dog; twice!",
    "Open a file and return a stream. Raise OSError upon failure.",
]
JAPANESE = [
    "東京に行きます。",
    "カタカナとひらがなのテストです",
    "ファイルを開いてストリームを返します。",
    "平方根を返す関数",
    "ﾊﾝｶｸｶﾀｶﾅも使えます",  # halfwidth katakana: NFKC folds it to fullwidth
]
MIXED = ["json.dumps は obj を JSON 文字列にします (Python 3.11)."]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(ENGLISH * 3 + JAPANESE * 3 + MIXED, vocab_size=400, min_frequency=2)


@pytest.mark.parametrize("text", ENGLISH + JAPANESE + MIXED + [
    "  Several   spaces\tand\nnewlines  ",
    "THE QUICK, BROWN FOX",
    "返します ファイル",  # seen characters in a new order
])
def test_round_trip_is_the_normalised_text(tok, text):
    ids = tok(text)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == normalize(text)
    assert tok.convert_tokens_to_ids(UNK) not in ids


def test_normalisation_lowercases_folds_width_and_keeps_dakuten():
    assert normalize("  Hello\t WORLD ") == "hello world"
    assert normalize("ﾊﾝｶｸ") == "ハンカク"
    assert normalize("が") == "が"  # NFD + accent stripping would give か


def test_japanese_is_split_per_character_not_collapsed(tok):
    tokens = tok.tokenize("カタカナとひらがなのテストです")
    assert UNK not in tokens
    assert len(tokens) >= len("カタカナとひらがなのテストです")
    # a long run of kana (longer than WordPiece's 100-character word limit)
    long_run = "ひらがな" * 40
    assert UNK not in tok.tokenize(long_run)


def test_unseen_characters_cost_one_unk_each_and_keep_the_rest(tok):
    tokens = tok.tokenize("東京へ行く")  # へ and く never seen in training
    assert tokens.count(UNK) == 2
    assert "東" in tokens and "京" in tokens and "行" in tokens
    # an unseen letter inside an English word does not turn the whole word into [UNK]
    ids = tok("squäre root")["input_ids"]
    assert tok.convert_ids_to_tokens(ids).count(UNK) == 1
    assert tok.decode(ids, skip_special_tokens=True) == "squre root"


def test_pair_encoding_has_bert_layout(tok):
    enc = tok("root", "平方根")
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2 and tokens[-1] == "[SEP]"
    assert set(enc["token_type_ids"]) == {0, 1}


def test_vocab_is_deterministic_and_saves_with_the_model(tok, tmp_path):
    again = train_tokenizer(ENGLISH * 3 + JAPANESE * 3 + MIXED, vocab_size=400, min_frequency=2)
    assert again.get_vocab() == tok.get_vocab()
    assert again.backend_tokenizer.to_str() == tok.backend_tokenizer.to_str()
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    text = MIXED[0]
    assert loaded(text)["input_ids"] == tok(text)["input_ids"]
    assert loaded.decode(loaded(text)["input_ids"], skip_special_tokens=True) == normalize(text)
    assert loaded.pad_token == "[PAD]" and loaded.pad_token_id == 0


def test_bad_arguments_name_the_setting():
    with pytest.raises(InvalidArgument, match="vocab_size: must be > 5, got 3"):
        train_tokenizer(ENGLISH, vocab_size=3)
    with pytest.raises(InvalidArgument, match="texts: no non-empty text"):
        train_tokenizer(["", ""])
