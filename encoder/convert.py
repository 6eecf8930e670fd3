"""Convert a BERT-family sentence-transformers folder into the ranked encoder, at any rank.

1. Map the weights exactly (BERT is post-norm, exact GELU, with token types), so that at
   the original head width the converted model reproduces the original's embeddings.
2. Per layer and head, replace the query/key maps by the best rank-K approximation of
   the head's scoring form (per-head SVD, biases included: see ``truncate_head``).
3. Optionally distil: a few steps of MSE between the truncated model's and the
   original's sentence embeddings on corpus texts, updating only the query/key maps.

Axes: d model width, r0 original head width, K target rank.
"""
from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from ranksearch.errors import AlreadyExists, InvalidArgument, NotFound  # noqa: E402

from .config import EncoderConfig  # noqa: E402
from .model import RankedEncoder  # noqa: E402
from .st_module import new_sentence_transformer  # noqa: E402

DISTILL_BATCH = 16
DISTILL_LR = 1e-4


def config_from_bert(hf_config, pooling: str = "mean") -> EncoderConfig:
    """The ranked-encoder config with exactly the shape of a transformers BertConfig."""
    if hf_config.hidden_act != "gelu":
        raise InvalidArgument("model", f"hidden_act {hf_config.hidden_act!r} is not supported (only 'gelu')")
    if getattr(hf_config, "position_embedding_type", "absolute") != "absolute":
        raise InvalidArgument("model", "only absolute position embeddings are supported")
    head = hf_config.hidden_size // hf_config.num_attention_heads
    return EncoderConfig(
        vocab_size=hf_config.vocab_size, d_model=hf_config.hidden_size,
        layers=hf_config.num_hidden_layers, heads=hf_config.num_attention_heads,
        rank=head, value_dim=head, ffn_dim=hf_config.intermediate_size,
        max_len=hf_config.max_position_embeddings, type_vocab_size=hf_config.type_vocab_size,
        norm="post", pooling=pooling, dropout=hf_config.hidden_dropout_prob,
        layer_norm_eps=hf_config.layer_norm_eps)


def bert_to_ranked_state(bert_state: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """Rename a BertModel state dict to RankedEncoder's (the pooler is dropped)."""
    names = {
        "tok_emb.weight": "embeddings.word_embeddings.weight",
        "pos_emb.weight": "embeddings.position_embeddings.weight",
        "type_emb.weight": "embeddings.token_type_embeddings.weight",
        "emb_norm.weight": "embeddings.LayerNorm.weight",
        "emb_norm.bias": "embeddings.LayerNorm.bias",
    }
    per_layer = {
        "attn.q_proj": "attention.self.query", "attn.k_proj": "attention.self.key",
        "attn.v_proj": "attention.self.value", "attn.out_proj": "attention.output.dense",
        "norm1": "attention.output.LayerNorm", "ffn.up": "intermediate.dense",
        "ffn.down": "output.dense", "norm2": "output.LayerNorm",
    }
    for i in range(layers):
        for ours, theirs in per_layer.items():
            for p in ("weight", "bias"):
                names[f"blocks.{i}.{ours}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
    return {ours: bert_state[theirs].detach().clone() for ours, theirs in names.items()
            if theirs in bert_state}


def truncate_head(wq: torch.Tensor, bq: torch.Tensor, wk: torch.Tensor, bk: torch.Tensor,
                  rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Best rank-``rank`` replacement of one head's query/key maps.

    wq, wk (r0, d); bq, bk (r0,). Returns wq', bq', wk', bk' with r0 -> rank rows, scaled
    so that scores divided by sqrt(rank) approximate the original ones divided by
    sqrt(r0), and the relative Frobenius error of the approximated form.

    The score of query x against key y is
        (Wq x + bq)·(Wk y + bk) = xᵀWqᵀWk y + xᵀWqᵀbk + bqᵀWk y + bq·bk.
    Softmax runs over keys y for a fixed query x, so the two terms that do not depend
    on y (xᵀWqᵀbk and bq·bk) add the same constant to every score of a row and cancel
    exactly. The term bqᵀWk y does depend on the key and must be kept. What matters is
    therefore the bilinear form on the augmented query [x; 1] and the key y:
        A = [WqᵀWk ; bqᵀWk]   ((d+1) × d),   score ≡ [x; 1]ᵀ A y.
    Its best rank-K approximation in Frobenius norm (Eckart–Young) is the truncated
    SVD U_K S_K V_Kᵀ; we split it evenly, Wq' = (U_K[:d] √S_K)ᵀ, bq' = √S_K U_K[d],
    Wk' = √S_K V_Kᵀ, bk' = 0 (a key bias would only add query-only terms again).
    Truncating Wq and Wk separately, or dropping the biases, would not be optimal.
    The augmented row weights the bias like one more input direction; a data-aware
    weighting (by the covariance of the LayerNormed inputs) could do better, which is
    what the optional distillation recovers.
    """
    r0, d = wq.shape
    a = torch.cat([wq.T @ wk, (bq @ wk)[None]], dim=0).double()  # (d+1, d)
    a = a * math.sqrt(rank / r0)  # new scale 1/sqrt(rank) instead of 1/sqrt(r0)
    u, s, vh = torch.linalg.svd(a, full_matrices=False)  # (d+1, d), (d,), (d, d)
    root = s[:rank].sqrt()  # (K,)
    uq = u[:, :rank] * root  # (d+1, K)
    new_wq, new_bq = uq[:d].T, uq[d]  # (K, d), (K,)
    new_wk = root[:, None] * vh[:rank]  # (K, d)
    err = (torch.linalg.norm(s[rank:]) / torch.linalg.norm(s).clamp_min(1e-30)).item()
    dt = wq.dtype
    return new_wq.to(dt), new_bq.to(dt), new_wk.to(dt), torch.zeros(rank, dtype=dt), err


def truncate_state(state: dict[str, torch.Tensor], config: EncoderConfig,
                   ranks: list[int]) -> tuple[dict[str, torch.Tensor], list[float]]:
    """Apply ``truncate_head`` to every head of every layer whose rank changes.

    Returns the new state and the mean relative approximation error per layer."""
    h, errors = config.heads, []
    state = dict(state)
    for i, (r0, k) in enumerate(zip(config.ranks, ranks)):
        if k == r0:  # identity: keep the exact weights, no SVD round-off
            errors.append(0.0)
            continue
        p = f"blocks.{i}.attn."
        wq = state[p + "q_proj.weight"].view(h, r0, -1)  # (h, r0, d)
        wk = state[p + "k_proj.weight"].view(h, r0, -1)
        bq = state[p + "q_proj.bias"].view(h, r0)
        bk = state[p + "k_proj.bias"].view(h, r0)
        heads = [truncate_head(wq[j], bq[j], wk[j], bk[j], k) for j in range(h)]
        state[p + "q_proj.weight"] = torch.cat([t[0] for t in heads])  # (h*K, d)
        state[p + "q_proj.bias"] = torch.cat([t[1] for t in heads])
        state[p + "k_proj.weight"] = torch.cat([t[2] for t in heads])
        state[p + "k_proj.bias"] = torch.cat([t[3] for t in heads])
        errors.append(sum(t[4] for t in heads) / h)
    return state, errors


def _resolve_ranks(rank, config: EncoderConfig) -> list[int]:
    if rank is None:
        return config.ranks
    ranks = list(rank) if isinstance(rank, (list, tuple)) else [rank] * config.layers
    if len(ranks) != config.layers:
        raise InvalidArgument("rank", f"has {len(ranks)} entries for {config.layers} layers")
    for i, (k, r0) in enumerate(zip(ranks, config.ranks)):
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= r0:
            raise InvalidArgument("rank", f"layer {i}: must be an integer in [1, {r0}] "
                                  f"(the original head width), got {k!r}")
    return ranks


def load_bert_folder(src: Path) -> tuple[SentenceTransformer, EncoderConfig, dict]:
    """Load a BERT-family sentence-transformers folder, or a plain Hugging Face folder
    (config.json, weights, tokenizer: mean pooling and L2 normalisation are added);
    check it is convertible. Any tokenizer ``AutoTokenizer`` loads offline will do:
    WordPiece, XLM-R SentencePiece (tokenizer.json), MeCab-based Japanese
    (BertJapaneseTokenizer: fugashi with unidic-lite or ipadic)."""
    if (src / "modules.json").is_file():
        original = SentenceTransformer(str(src), device="cpu", local_files_only=True).eval()
    elif (src / "config.json").is_file():
        original = _plain_hf_model(src)
    else:
        raise NotFound("model", f"{src} is neither a sentence-transformers folder (modules.json) "
                       "nor a Hugging Face model folder (config.json)")
    first = original[0]
    bert = getattr(first, "auto_model", None)
    if getattr(getattr(bert, "config", None), "model_type", None) != "bert":
        raise InvalidArgument("model", f"{src}: first module is not a BERT model")
    if getattr(first, "do_lower_case", False):
        raise InvalidArgument("model", "do_lower_case in sentence_bert_config.json is not supported")
    modes = [getattr(m, "pooling_mode", None) for m in original if hasattr(m, "pooling_mode")]
    pooling = {"mean": "mean", "cls": "cls"}.get(modes[0] if modes else None)
    if pooling is None:
        raise InvalidArgument("model", f"pooling {modes} is not supported (mean or cls only)")
    config = config_from_bert(bert.config, pooling)
    state = bert_to_ranked_state(bert.state_dict(), config.layers)
    return original, config, state


def _plain_hf_model(src: Path) -> SentenceTransformer:
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    offline = {"local_files_only": True}
    first = Transformer(str(src), model_kwargs=dict(offline), processor_kwargs=dict(offline),
                        config_kwargs=dict(offline))
    dim = first.get_embedding_dimension()
    return SentenceTransformer(modules=[first, Pooling(dim, "mean"), Normalize()], device="cpu").eval()


def load_source_folder(src: Path) -> tuple[SentenceTransformer, EncoderConfig, dict]:
    """A BERT-family folder, or a ranked-encoder folder (its state is already in the
    ranked layout: converting it again re-truncates, e.g. an imported full-rank model
    to rank 8)."""
    from .st_module import CONFIG_FILE, RankedEncoderModule, load_sentence_transformer

    if not (src / CONFIG_FILE).is_file():
        return load_bert_folder(src)
    original = load_sentence_transformer(src).eval()
    first = original[0]
    if not isinstance(first, RankedEncoderModule):
        raise InvalidArgument("model", f"{src}: first module is not a ranked encoder")
    state = {k: v.detach().clone() for k, v in first.encoder.state_dict().items()}
    return original, first.encoder_config, state


def convert_model(src: str | Path, rank: int | list[int] | None, out: str | Path,
                  distill_steps: int = 0, corpus: str | Path | None = None,
                  seed: int = 0, prompts: dict[str, str] | None = None) -> Path:
    """Convert ``src`` into a ranked-encoder model folder at ``out``; returns ``out``.

    ``rank=None`` (or the original head width) keeps the model exactly. ``prompts``
    ({"query": ..., "document": ...}) replaces the prompts the source records."""
    src, out = Path(src), Path(out)
    if out.exists() and any(out.iterdir()):
        raise AlreadyExists("out", f"{out} exists and is not empty")
    if distill_steps < 0:
        raise InvalidArgument("distill_steps", f"must be >= 0, got {distill_steps}")
    if distill_steps and corpus is None:
        raise InvalidArgument("corpus", "distillation needs a corpus")
    original, config, state = load_source_folder(src)
    ranks = _resolve_ranks(rank, config)
    state, errors = truncate_state(state, config, ranks)
    config = config.with_overrides(rank=ranks if len(set(ranks)) > 1 else ranks[0])

    student = new_sentence_transformer(config, original.tokenizer, config.pooling,
                                       max_seq_length=original.max_seq_length)
    student.prompts = dict(original.prompts)  # e.g. E5's "query: " / "passage: "
    student.prompts.update({k: v for k, v in (prompts or {}).items() if v})
    student[0].encoder.load_state_dict(state, strict=True)
    report = {"source": str(src.resolve()), "rank": ranks, "seed": seed,
              "relative_qk_error_per_layer": errors, "distill_steps": distill_steps}
    if distill_steps:
        report["distill_loss"] = distill(student, original, _corpus_texts(corpus), distill_steps, seed)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        student.save(str(tmp))
        (tmp / "conversion.json").write_text(json.dumps(report, indent=2) + "\n")
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _corpus_texts(corpus: str | Path) -> list[str]:
    from .corpus import document_text, iter_documents, resolve_corpus
    texts = [document_text(d).strip() for d in iter_documents(resolve_corpus(corpus))]
    if not texts:
        raise InvalidArgument("corpus", f"{corpus} has no documents")
    return texts


def distill(student: SentenceTransformer, teacher: SentenceTransformer, texts: list[str],
            steps: int, seed: int, show_progress: bool = True) -> dict[str, float]:
    """MSE between the student's and teacher's unit sentence embeddings; only the
    query/key maps (the truncated parameters) are trained. Seeded and deterministic."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    encoder: RankedEncoder = student[0].encoder
    params = [p for n, p in encoder.named_parameters() if ".q_proj." in n or ".k_proj." in n]
    for p in encoder.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=DISTILL_LR, weight_decay=0.0)
    student.eval()  # no dropout: the target is the teacher's deterministic output
    losses = []
    bar = tqdm(range(steps), desc="distill", unit="step", disable=not show_progress, file=sys.stderr,
               dynamic_ncols=True)  # rate and ETA: a distillation runs for minutes on a CPU
    for _ in bar:
        batch = rng.sample(texts, min(DISTILL_BATCH, len(texts)))
        with torch.no_grad():
            target = teacher.encode(batch, convert_to_tensor=True, normalize_embeddings=True).clone()
        features = student.preprocess(batch)
        pred = student(features)["sentence_embedding"]  # ends with Normalize
        loss = torch.nn.functional.mse_loss(pred, target.to(pred.dtype))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.2e}", refresh=False)
    bar.close()
    for p in encoder.parameters():
        p.requires_grad_(True)
    return {"first": losses[0], "last": losses[-1]}
