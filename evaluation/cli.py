"""`ranksearch eval`, `ranksearch eval report` and `ranksearch probe`."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ranksearch.errors import InvalidArgument


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="A/B-compare encoder rank settings on a corpus (quality, latency, cost)",
        description="Evaluate the variants of a spec on a BEIR corpus and write a results "
                    "folder (results.json, results.csv, TREC run files, report.html). "
                    "`ranksearch eval report RESULTS_DIR` re-renders the report.")
    p.add_argument("--corpus", default="stdlib",
                   help="BEIR folder, or 'stdlib' for the built-in corpus (default)")
    p.add_argument("--spec", type=Path, help="variants YAML (see evaluation/specs/)")
    p.add_argument("--out", type=Path, help="results folder to write")
    p.add_argument("--lang", choices=("en", "ja"), default="en",
                   help="report language (en, ja: Japanese text, plots and ROI)")
    p.add_argument("--language", choices=("en", "ja", "auto"),
                   help="corpus language: the analyzer of the BM25 reference (ja = SudachiPy); "
                        "default: the spec's 'language', else the corpus's "
                        "ranksearch-corpus.json, else en")
    p.add_argument("--roi", type=Path, help="business inputs YAML for the ROI section")
    p.add_argument("--server", help="address of a running ranksearch service for "
                                    "end-to-end latency (host:port)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--split", default="test", help="qrels split to evaluate (default test)")
    p.set_defaults(func=_eval)
    sub = p.add_subparsers(dest="eval_command", title="actions", metavar="[report|live]")
    r = sub.add_parser(
        "report", help="re-render report.html from a results folder",
        description="Render RESULTS_DIR/report.html (report.ja.html with --lang ja) from "
                    "RESULTS_DIR/results.json, without re-running anything. The page is "
                    "self-contained: figures and, for Japanese, a font subset are embedded.")
    r.add_argument("results_dir", type=Path, metavar="RESULTS_DIR",
                   help="folder written by `ranksearch eval --out`")
    r.add_argument("--lang", choices=("en", "ja"), default="en",
                   help="report language (en, ja: Japanese text, plots and ROI)")
    r.add_argument("--roi", type=Path, help="business inputs YAML for the ROI section "
                                            "(e.g. evaluation/specs/roi/example_jpy.yaml)")
    r.set_defaults(func=_report)
    live = sub.add_parser(
        "live", help="replay judged queries against every variant of a running server",
        description="Every variant of COLLECTION answers every query (Search with `variant` set, "
                    "so no experiment is touched); with --qrels, nDCG@10, MRR@10 and R@10 per "
                    "variant with a paired t-test against the default variant.")
    live.add_argument("--server", required=True, help="HOST:PORT of the running service")
    live.add_argument("--collection", required=True, help="collection to replay against")
    live.add_argument("--queries", type=Path, required=True,
                      help="queries.jsonl (BEIR) or a text file with one query per line")
    live.add_argument("--qrels", type=Path, help="qrels TSV (BEIR) to judge the answers")
    live.add_argument("--out", type=Path, help="folder to write live.json into")
    live.set_defaults(func=_eval_live)

    q = subparsers.add_parser(
        "probe", help="synthetic rank probe: one attention layer learns nearest/farthest "
                      "neighbour on the unit sphere",
        description="Trains one RankedAttention layer per rank and reports MSE and top-1 "
                    "accuracy beside the trivial baselines (definitions: docs/BACKGROUND.md).")
    q.add_argument("--out", type=Path, default=Path("probe-results"),
                   help="results folder: results.json and report.html (default %(default)s)")
    q.add_argument("--dim", type=int, default=16, help="dimension d of the points on the unit sphere (default 16)")
    q.add_argument("--points", type=int, default=16, help="points per set N (context length, default 16)")
    q.add_argument("--task", choices=("farthest", "nearest"), default="farthest",
                   help="target: the farthest point of the set from each point (self-attention, "
                        "default) or the nearest point to a query (cross-attention)")
    q.add_argument("--ranks", default=None, help="comma-separated, default 1,2,4,...,dim")
    q.add_argument("--heads-budget", choices=("equal", "fixed"), default="equal",
                   help="equal: heads = ceil(dim/rank) (equal q/k budget); fixed: --heads heads")
    q.add_argument("--heads", type=int, default=1, help="head count for --heads-budget fixed")
    q.add_argument("--layers", type=int, default=1, help="attention layers (default 1)")
    q.add_argument("--steps", type=int, default=None, help="training steps (default 2000)")
    q.add_argument("--seeds", type=int, default=2, help="seeds per rank; mean and spread reported (default 2)")
    q.add_argument("--input", choices=("uniform", "orthonormal", "antipodal"), default="uniform",
                   help="point sets: i.i.d. uniform, orthonormal (N <= d), or sets holding each "
                        "point and its negation")
    q.add_argument("--lang", choices=("en", "ja"), default="en", help="report language")
    q.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: the tensors are tiny)")
    q.set_defaults(func=_probe)


def _probe(args) -> int:
    from .environment import git_revision, hardware, now, versions
    from .probe import ProbeConfig, run_probe
    from .probe_report import probe_effect, probe_table_text, write_probe_report

    if args.ranks:
        try:
            ranks = [int(r) for r in args.ranks.split(",") if r.strip()]
        except ValueError:
            raise InvalidArgument("ranks", f"must be comma-separated integers, got {args.ranks!r}") from None
    else:
        ranks, r = [], 1
        while r < args.dim:
            ranks.append(r)
            r *= 2
        ranks.append(args.dim)
    kw = dict(dim=args.dim, points=args.points, task=args.task, ranks=ranks,
              heads_budget=args.heads_budget, heads=args.heads, layers=args.layers,
              seeds=args.seeds, input=args.input, threads=args.threads)
    if args.steps is not None:
        kw["steps"] = args.steps
    cfg = ProbeConfig(**kw)
    results = run_probe(cfg)
    results.update(created=now(), git_revision=git_revision(), versions=versions(),
                   hardware=hardware())
    results["effect"] = probe_effect(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    report = write_probe_report(args.out, args.lang)
    print(probe_table_text(results))
    print(f"effect reproduced: {results['effect'].get('reproduced')}")
    print(f"wrote {args.out / 'results.json'} and {report}")
    return 0


def _report(args) -> int:
    from .report import write_report

    path = write_report(args.results_dir, lang=args.lang, roi_file=args.roi)
    print(f"wrote {path}")
    return 0


def _eval(args) -> int:
    if args.spec is None or args.out is None:
        raise InvalidArgument("spec" if args.spec is None else "out",
                              "required: ranksearch eval --corpus PATH_OR_NAME --spec FILE --out DIR")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from .report import write_report
    from .runner import run_eval
    from .spec import load_spec

    spec = load_spec(args.spec)
    roi = None
    if args.roi is not None:
        from .roi import load_roi
        roi = load_roi(args.roi)
    results_dir = run_eval(args.corpus, spec, args.out, split=args.split, server=args.server,
                           threads=args.threads, roi=roi, language=args.language)
    path = write_report(results_dir, lang=args.lang)
    from .results import summary_text, load_results
    print(summary_text(load_results(results_dir), lang=args.lang))
    print(f"wrote {results_dir / 'results.json'} and {path}", file=sys.stderr)
    return 0


def _eval_live(args) -> int:
    """`ranksearch eval live --server ADDR --collection C --queries FILE [--qrels FILE] [--out DIR]`."""
    from ranksearch.client import SearchClient

    from .live import judge, read_qrels, read_queries, replay, summary_text

    queries = read_queries(args.queries)
    qrels = read_qrels(args.qrels) if args.qrels else None
    with SearchClient(args.server) as client:
        result = judge(replay(client, args.collection, queries), qrels)
    print(summary_text(result))
    if args.out is not None:
        import json
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "live.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
        print(f"wrote {args.out / 'live.json'}", file=sys.stderr)
    return 0
