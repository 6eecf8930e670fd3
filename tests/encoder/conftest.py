"""A small randomly initialised BertModel saved as a sentence-transformers folder.

No pretrained download: a made-up WordPiece vocabulary and random weights. The weights
(biases included) are drawn much larger than BERT's 0.02 initialisation so that the
attention is far from uniform and the query/key biases matter; otherwise conversion
tests could pass with attention that does nothing.
"""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch

WORDS = ("the a of and to in is it for on with as at by an be this that from or are was "
         "search rank attention head query key value model encoder vector nearest farthest "
         "document corpus python library function return string list error file ##s ##ing "
         "##ed ##er").split()
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
SENTENCES = [
    "the nearest document to the query",
    "attention head rank is a model setting",
    "python library function returns a string",
    "farthest vector search in the corpus!",
    "a",
    "this is an error in the file, and that is a longer sentence with several words "
    "to make the padding of the batch matter for the others",
]


def make_bert_st_folder(root, hidden=32, layers=2, heads=4, ffn=64, seed=0, normalize=True):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    hf_dir, st_dir = root / "hf", root / "st"
    hf_dir.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + CHARS + [f"##{c}" for c in CHARS]
    (hf_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(hf_dir / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=ffn,
                        max_position_embeddings=64, type_vocab_size=2)
    bert = BertModel(config, add_pooling_layer=False)
    with torch.no_grad():
        for name, p in bert.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    bert.save_pretrained(str(hf_dir))
    tokenizer.save_pretrained(str(hf_dir))
    modules = [Transformer(str(hf_dir), max_seq_length=48), Pooling(hidden, "mean")]
    if normalize:
        modules.append(Normalize())
    SentenceTransformer(modules=modules, device="cpu").save(str(st_dir))
    return st_dir


@pytest.fixture(scope="session")
def bert_st_folder(tmp_path_factory):
    return make_bert_st_folder(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="session")
def sentences():
    return list(SENTENCES)
