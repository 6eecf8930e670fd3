"""Contrastive training of a ranked encoder from scratch on a local corpus.

``train_model(corpus, out, config, steps, seed)``:

1. trains a WordPiece tokenizer on the corpus (`tokenizer.py`) and sets the config's
   ``vocab_size`` to its size;
2. builds (query, document) pairs: from ``qrels/train.tsv`` when the corpus has one,
   otherwise self-supervised pairs of two random word spans of the same document
   (independent cropping, as in Contriever, Izacard et al. 2021); ``pairs="mixed"``
   uses both;
3. optimises sentence-transformers' `MultipleNegativesRankingLoss` (in-batch
   negatives) with AdamW, linear warm-up and linear decay, in a plain torch loop —
   simpler to make deterministic and resumable than the sentence-transformers Trainer.

Steps 1-2 are ``train_model``'s; step 3 is ``fit``, the one training loop, which
``finetune.py`` also runs on an existing model folder's weights.

Determinism: the batch of step ``s`` is a pure function of ``(seed, s)`` (epoch
permutations from ``torch.Generator().manual_seed(seed + epoch)``, span offsets from
``random.Random`` seeded by a string), model initialisation and dropout use the torch
RNG seeded with ``seed``, and a checkpoint stores the torch RNG state. So a run that
is interrupted and resumed gives bit-identical weights to an uninterrupted one (on
the same machine and thread count).

Checkpoints: every ``checkpoint_every`` steps (and on Ctrl-C) into
``out/checkpoints/`` — ``state.safetensors`` (model, optimizer, scheduler, step, RNG state,
settings) written to a temporary file and renamed, plus the tokenizer. With
``resume=True`` a run picks up from the checkpoint if its settings match and refuses
(FailedPrecondition naming the setting) if they differ. At the end the model folder
is written to a temporary sibling and swapped into ``out``; the checkpoints are then
removed, and ``out/training.json`` records the resolved config, steps, seed, corpus,
final loss and wall time.
"""
from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from ranksearch.errors import AlreadyExists, FailedPrecondition, InvalidArgument  # noqa: E402

from .checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from .config import EncoderConfig  # noqa: E402
from .corpus import available_splits, document_text, iter_documents, load_beir, resolve_corpus  # noqa: E402
from .tokenizer import train_tokenizer  # noqa: E402

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "state.safetensors"  # encoder/checkpoint.py: tensors + JSON, never a pickle
LEGACY_STATE_FILE = "state.pt"  # pickle checkpoints of earlier versions: never loaded
TRAINING_FILE = "training.json"
PAIR_MODES = ("auto", "qrels", "spans", "mixed")
#: Span lengths (words) for self-supervised pairs.
SPAN_MIN_WORDS, SPAN_MAX_WORDS = 8, 64


@dataclass(frozen=True)
class TrainSettings:
    """Everything that determines the trained weights (besides the corpus content)."""

    steps: int
    seed: int
    batch_size: int
    lr: float
    warmup: int
    weight_decay: float
    max_seq_length: int
    vocab_size: int
    pairs: str
    scale: float

    def validate(self) -> None:
        for name in ("steps", "batch_size", "max_seq_length", "vocab_size"):
            if getattr(self, name) < 1:
                raise InvalidArgument(name, f"must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise InvalidArgument("batch_size", f"must be >= 2 for in-batch negatives, got {self.batch_size}")
        if not self.lr > 0:
            raise InvalidArgument("lr", f"must be > 0, got {self.lr}")
        if not self.scale > 0:
            raise InvalidArgument("scale", f"must be > 0, got {self.scale}")
        if self.warmup < 0:
            raise InvalidArgument("warmup", f"must be >= 0, got {self.warmup}")
        if self.pairs not in PAIR_MODES:
            raise InvalidArgument("pairs", f"must be one of {PAIR_MODES}, got {self.pairs!r}")


# ----------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Example:
    """A training example: a fixed (query, document) pair, or a document whose two
    spans are drawn per epoch (``query is None``); ``negatives`` are hard negative
    documents of the query (fine-tuning, `finetune.py`), one per extra batch column."""

    query: str | None
    document: str
    negatives: tuple[str, ...] = ()


def load_texts(corpus: Path) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(document id -> text, (query, document text) pairs from qrels/train.tsv)."""
    if corpus.is_file():  # plain JSONL of documents: no queries
        docs = {d.id: document_text(d) for d in iter_documents(corpus)}
        return docs, []
    if "train" in available_splits(corpus):
        beir = load_beir(corpus, split="train")
        docs = {doc_id: document_text(doc) for doc_id, doc in beir.corpus.items()}
        pairs = [(beir.queries[qid], docs[doc_id])
                 for qid in sorted(beir.qrels) for doc_id, score in sorted(beir.qrels[qid].items()) if score > 0]
        return docs, pairs
    docs = {d.id: document_text(d) for d in iter_documents(corpus)}
    return docs, []


def build_examples(docs: dict[str, str], pairs: list[tuple[str, str]], mode: str) -> list[Example]:
    if mode == "qrels" and not pairs:
        raise InvalidArgument("pairs", "'qrels' needs a corpus with qrels/train.tsv")
    use_pairs = mode in ("qrels", "mixed") or (mode == "auto" and pairs)
    use_spans = mode in ("spans", "mixed") or (mode == "auto" and not pairs)
    examples = [Example(q, d) for q, d in pairs] if use_pairs else []
    if use_spans:
        examples += [Example(None, text) for _, text in sorted(docs.items()) if text.strip()]
    if len(examples) < 2:
        raise InvalidArgument("corpus", f"has {len(examples)} usable training examples; need at least 2")
    return examples


def _span(words: list[str], rng: random.Random) -> str:
    if len(words) <= SPAN_MIN_WORDS:
        return " ".join(words)
    length = rng.randint(SPAN_MIN_WORDS, min(SPAN_MAX_WORDS, len(words)))
    start = rng.randint(0, len(words) - length)
    return " ".join(words[start:start + length])


def batch_for_step(examples: list[Example], step: int, batch_size: int, seed: int) -> tuple[list[str], ...]:
    """The (queries, documents, *negatives) columns of step `step` (0-based): a pure
    function of its inputs. Without hard negatives that is (queries, documents).

    Batches never straddle epochs; each epoch is a fresh permutation, and the trailing
    partial batch is dropped, so a batch never holds the same example twice.
    """
    batch_size = min(batch_size, len(examples))
    per_epoch = len(examples) // batch_size
    epoch, index = divmod(step, per_epoch)
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    queries, documents = [], []
    negatives: list[list[str]] = [[] for _ in examples[0].negatives]
    for i in order[index * batch_size:(index + 1) * batch_size]:
        ex = examples[i]
        for column, text in zip(negatives, ex.negatives):
            column.append(text)
        if ex.query is not None:
            queries.append(ex.query)
            documents.append(ex.document)
        else:
            rng = random.Random(f"{seed}:{epoch}:{i}")
            words = ex.document.split()
            queries.append(_span(words, rng))
            documents.append(_span(words, rng))
    return (queries, documents, *negatives)


# ----------------------------------------------------------------------------------
# Training


def _lr_lambda(warmup: int, steps: int):
    def factor(step: int) -> float:  # step = number of optimizer steps taken so far
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))
    return factor


def _flatten(d: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in d.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _settings_diff(saved: dict, wanted: dict) -> str | None:
    """The first differing setting, e.g. ``settings.seed (before: 1, now: 2)``."""
    saved, wanted = _flatten(saved), _flatten(wanted)
    for key in sorted(set(saved) | set(wanted)):
        if saved.get(key) != wanted.get(key):
            return f"{key} (before: {saved.get(key)!r}, now: {wanted.get(key)!r})"
    return None


def train_model(corpus: Path | str, out: Path | str, config: EncoderConfig, steps: int, seed: int,
                batch_size: int = 32, lr: float = 5e-4, resume: bool = True, *,
                warmup: int | None = None, weight_decay: float = 0.01, max_seq_length: int = 64,
                vocab_size: int = 8000, pairs: str = "auto", scale: float = 20.0,
                checkpoint_every: int | None = None, threads: int | None = None,
                show_progress: bool = True, stop_after: int | None = None) -> Path:
    """Train a ranked encoder on `corpus` (a name such as "stdlib", a BEIR folder or a
    JSONL of documents) and write the model folder `out`; returns `out`.

    `stop_after` ends the run after that many steps with a checkpoint and no model
    folder, as an interruption would (used by tests and for time-boxed runs); a later
    call with the same settings resumes from it.
    """
    from .st_module import new_sentence_transformer

    started = time.perf_counter()
    corpus_path = resolve_corpus(corpus)
    settings = TrainSettings(
        steps=int(steps), seed=int(seed), batch_size=int(batch_size), lr=float(lr),
        warmup=int(warmup if warmup is not None else min(100, steps // 10)),
        weight_decay=float(weight_decay), max_seq_length=int(max_seq_length),
        vocab_size=int(vocab_size), pairs=pairs, scale=float(scale))
    settings.validate()
    if max_seq_length > config.max_len:
        raise InvalidArgument("max_seq_length", f"is {max_seq_length} but the config's max_len is {config.max_len}")
    wanted = {"settings": settings.__dict__, "config": config.to_dict(), "corpus": str(corpus)}

    def prepare(tokenizer_dir: Path | None) -> Run:
        docs, qrel_pairs = load_texts(corpus_path)
        examples = build_examples(docs, qrel_pairs, settings.pairs)
        if tokenizer_dir is not None:  # resuming: the tokenizer the run started with
            from transformers import AutoTokenizer
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
        else:
            texts = list(docs.values()) + [q for q, _ in qrel_pairs]
            tokenizer = train_tokenizer(texts, vocab_size=settings.vocab_size, model_max_length=config.max_len)
        resolved = config.with_overrides(vocab_size=len(tokenizer))
        torch.manual_seed(settings.seed)
        model = new_sentence_transformer(resolved, tokenizer, max_seq_length=settings.max_seq_length)
        record = {"config": resolved.to_dict(), "corpus": str(corpus), "corpus_path": str(corpus_path),
                  "training_examples": len(examples),
                  "pairs_from_qrels": len(qrel_pairs) if settings.pairs != "spans" else 0}
        return Run(model, examples, record)

    return fit(out, settings, wanted, prepare, resume=resume, started=started,
               checkpoint_every=checkpoint_every, threads=threads, show_progress=show_progress,
               stop_after=stop_after)


@dataclass
class Run:
    """What `fit` trains: the model (a SentenceTransformer), its examples, what the
    output's training.json records besides the loop's own numbers, the texts prepended
    to each batch column's role (the model's prompts) and which parameters stay fixed."""

    model: object
    examples: list[Example]
    record: dict
    prompts: dict[str, str] = field(default_factory=lambda: {"query": "", "document": ""})
    frozen: tuple[str, ...] = ()   # parameter names that are not trained
    save_max_seq_length: int | None = None  # the folder's max_seq_length, if not the training one


def fit(out: Path | str, settings: TrainSettings, wanted: dict, prepare, *, resume: bool, started: float,
        checkpoint_every: int | None, threads: int | None, show_progress: bool,
        stop_after: int | None) -> Path:
    """The training loop shared by training from scratch and fine-tuning.

    ``prepare(tokenizer_dir)`` builds the `Run` (``tokenizer_dir`` is the checkpoint's
    tokenizer when resuming, else None); ``wanted`` is everything that must match for a
    checkpoint or a finished folder in `out` to be reused."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    out = Path(out)
    checkpoint_every = checkpoint_every or max(1, min(500, settings.steps // 4))
    if (out / TRAINING_FILE).is_file():  # a finished model is already there
        done = json.loads((out / TRAINING_FILE).read_text(encoding="utf-8"))
        diff = _settings_diff(done.get("request", {}), wanted)
        if resume and diff is None:
            return out
        if resume:
            raise FailedPrecondition("out", f"{out} already holds a model trained with a different {diff};"
                                     " choose another output folder or pass resume=False (--no-resume)")
    ckpt_dir = out / CHECKPOINT_DIR
    state_path = ckpt_dir / STATE_FILE
    if resume and (ckpt_dir / LEGACY_STATE_FILE).exists() and not state_path.is_file():
        raise FailedPrecondition("out", f"{ckpt_dir / LEGACY_STATE_FILE} is a pickle checkpoint of an "
                                 "earlier version; it is not loaded, since a pickle can run code. Delete "
                                 f"{ckpt_dir} to start over, or pass resume=False (--no-resume)")
    ours = (out / TRAINING_FILE).is_file() or state_path.is_file() or (ckpt_dir / LEGACY_STATE_FILE).is_file()
    if out.exists() and not ours and (not out.is_dir() or any(out.iterdir())):
        # never write into (and at the end replace) a folder this function did not make
        raise AlreadyExists("out", f"{out} exists and is neither empty nor a training output folder")
    if not resume and out.exists():
        shutil.rmtree(out)

    if threads:
        torch.set_num_threads(int(threads))
    state = None
    if resume and state_path.is_file():
        state = load_checkpoint(state_path)
        diff = _settings_diff(state["request"], wanted)
        if diff is not None:
            raise FailedPrecondition("out", f"{ckpt_dir} holds a checkpoint of a run with a different {diff};"
                                     " choose another output folder or pass resume=False (--no-resume)")
    run = prepare(ckpt_dir / "tokenizer" if state is not None else None)
    model, examples = run.model, run.examples
    tokenizer = model.tokenizer
    loss_fn = MultipleNegativesRankingLoss(model, scale=settings.scale)
    trainable = [(n, p) for n, p in model.named_parameters() if n not in run.frozen]
    for n, p in model.named_parameters():
        p.requires_grad_(n not in run.frozen)
    decay = [p for n, p in trainable if p.ndim >= 2]
    no_decay = [p for n, p in trainable if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(settings.warmup, settings.steps))
    start, losses = 0, []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        start, losses = state["step"], state["losses"]

    def checkpoint(step: int) -> None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        if not (ckpt_dir / "tokenizer").is_dir():
            tokenizer.save_pretrained(str(ckpt_dir / "tokenizer"))
        save_checkpoint({
            "request": wanted, "step": step, "losses": losses, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }, state_path)

    # each column's role prompt, exactly as Embedder.encode prepends it (E5: "query: ",
    # "passage: "); a model without prompts trains on the bare texts
    roles = ["query", "document"] + ["document"] * len(examples[0].negatives)
    model.train()
    end = settings.steps if stop_after is None else min(settings.steps, int(stop_after))
    bar = tqdm(total=settings.steps, initial=start, desc="train", unit="step", disable=not show_progress,
               file=sys.stderr, dynamic_ncols=True)
    try:
        for step in range(start, end):
            columns = batch_for_step(examples, step, settings.batch_size, settings.seed)
            features = [model.preprocess([run.prompts[role] + t for t in texts])
                        for role, texts in zip(roles, columns)]
            loss = loss_fn(features, None)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in trainable], 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
            if (step + 1) % checkpoint_every == 0 and step + 1 < settings.steps:
                checkpoint(step + 1)
    except KeyboardInterrupt:
        checkpoint(len(losses))  # the steps actually completed
        bar.close()
        raise
    bar.close()
    if end < settings.steps:
        checkpoint(end)
        return out

    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    if run.save_max_seq_length is not None:
        model.max_seq_length = run.save_max_seq_length
    tail = losses[-min(len(losses), 20):]
    record = {
        "request": wanted,
        **run.record,
        "steps": settings.steps,
        "seed": settings.seed,
        "final_loss": sum(tail) / len(tail) if tail else math.nan,
        "loss_first_last": [losses[0], losses[-1]] if losses else [],
        "wall_time_s": round(time.perf_counter() - started, 2),
        "resumed_from_step": state["step"] if state is not None else 0,
        "threads": torch.get_num_threads(),
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__},
    }
    _write_model_folder(model, out, record)
    return out


def _write_model_folder(model, out: Path, record: dict) -> None:
    """Save into a temporary sibling, then swap it into `out` (dropping checkpoints)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    old = out.with_name(f".{out.name}.old")
    for stale in (tmp, old):
        if stale.exists():
            shutil.rmtree(stale)
    model.save(str(tmp))
    (tmp / TRAINING_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
