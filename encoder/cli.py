"""Encoder subcommands: ``train``, ``convert``, ``corpus build|stats``.

Heavy libraries (torch, sentence-transformers) are imported inside the handlers so
``ranksearch --help`` stays fast.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_STEPS = 480


def register(subparsers) -> None:
    _register_train(subparsers)
    _register_convert(subparsers)
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--max-seq-length", type=int, default=64, help="tokens per text during training")
    p.add_argument("--vocab-size", type=int, default=8000, help="WordPiece vocabulary size")
    p.add_argument("--pairs", default="auto", choices=["auto", "qrels", "spans", "mixed"],
                   help="training pairs: qrels if present (auto), qrels, spans, or both (mixed)")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default: steps/4, at most 500)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start over even if OUT holds a checkpoint or a model")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)


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
    record = json.loads((out / "training.json").read_text(encoding="utf-8"))
    print(f"model written to {out} (final loss {record['final_loss']:.4f}, {record['wall_time_s']:.0f} s)")
    return 0


# ---- convert -----------------------------------------------------------------------

def _register_convert(subparsers) -> None:
    p = subparsers.add_parser(
        "convert", help="convert a local BERT-family sentence-transformers model to a given rank",
        description="Map a local BERT-family sentence-transformers folder into the ranked encoder exactly, "
                    "then keep the best rank-K approximation of each head's W_Q W_K^T (per-head SVD). "
                    "Optionally distill against the original model's embeddings on a corpus.")
    p.add_argument("--model", required=True, type=Path, help="local sentence-transformers folder (BERT family)")
    p.add_argument("--rank", type=_rank_arg, help="query/key width per head (default: the original, exact)")
    p.add_argument("--out", required=True, type=Path, help="model folder to write (must not exist or be empty)")
    p.add_argument("--distill-steps", type=int, default=0)
    p.add_argument("--corpus", help="corpus for distillation ('stdlib', a BEIR folder or a JSONL)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_convert)


def _convert(args) -> int:
    from .convert import convert_model

    out = convert_model(args.model, args.rank, args.out, distill_steps=args.distill_steps,
                        corpus=args.corpus, seed=args.seed)
    print(f"model written to {out}")
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
                    "document = the DESCRIPTION (説明) section; --lang ja reads manpages-ja-dev, "
                    "--lang en manpages-dev (apt-get install -y manpages-ja-dev manpages-dev).")
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
