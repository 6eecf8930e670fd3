"""`ranksearch ab …`: run and read a live experiment on a running server.

    ranksearch ab add-variant  --collection C --name V --model FOLDER [--index hnsw --param M=32]
    ranksearch ab remove-variant --collection C --name V
    ranksearch ab traffic     --collection C default=0.9 cand=0.1
    ranksearch ab shadow      --collection C --variant cand --fraction 0.2   (--fraction 0: off)
    ranksearch ab interleave  --collection C --a default --b cand --fraction 0.1
    ranksearch ab promote     --collection C --variant cand      (again with the old one: rollback)
    ranksearch ab status      --collection C [--json]
    ranksearch ab report      --collection C --out report.html [--lang ja]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ranksearch.errors import InvalidArgument
from ranksearch.service.cli import _client, _client_options, _rpc_errors


def _pairs(items: list[str], field: str, cast=float) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(field, f"{item!r} is not NAME=VALUE")
        try:
            out[key] = cast(value)
        except ValueError:
            raise InvalidArgument(field, f"{item!r}: {value!r} is not a number") from None
    return out


@_rpc_errors
def _add(args) -> int:
    from ranksearch.client import Variant

    with _client(args) as client:
        info = client.add_variant(args.collection, Variant(
            name=args.name, model=args.model, index_kind=args.index or "",
            index_params=_pairs(args.param, "param", int)))
    print(f"added {args.name} to {info.name}; it is being built (see `ranksearch ab status`)")
    return 0


@_rpc_errors
def _remove(args) -> int:
    with _client(args) as client:
        client.remove_variant(args.collection, args.name)
    print(f"removed {args.name} from {args.collection}")
    return 0


@_rpc_errors
def _traffic(args) -> int:
    with _client(args) as client:
        weights = client.set_traffic(args.collection, _pairs(args.weights, "weights"))
    print(f"traffic of {args.collection}: {weights or 'all to the default variant'}")
    return 0


@_rpc_errors
def _shadow(args) -> int:
    with _client(args) as client:
        client.set_shadow(args.collection, args.variant or "", args.fraction)
    print("shadow off" if not args.variant or not args.fraction
          else f"shadowing {args.variant} on {args.fraction:.0%} of searches")
    return 0


@_rpc_errors
def _interleave(args) -> int:
    with _client(args) as client:
        client.set_interleave(args.collection, args.a or "", args.b or "", args.fraction)
    print("interleaving off" if not args.a else
          f"interleaving {args.a} with {args.b} on {args.fraction:.0%} of searches")
    return 0


@_rpc_errors
def _promote(args) -> int:
    with _client(args) as client:
        previous = client.promote_variant(args.collection, args.variant)
    print(f"{args.variant} is now the default of {args.collection} (was {previous}; "
          f"`ranksearch ab promote --collection {args.collection} --variant {previous}` rolls back)")
    return 0


@_rpc_errors
def _status(args) -> int:
    from ranksearch.evaluation.ab_report import render_text

    with _client(args) as client:
        report = client.experiment_report(args.collection)
    print(json.dumps(report, ensure_ascii=False, indent=1) if args.json else render_text(report))
    return 0


@_rpc_errors
def _report(args) -> int:
    from ranksearch.evaluation.ab_report import render_html

    with _client(args) as client:
        report = client.experiment_report(args.collection)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render_html(report, args.lang), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("ab", help="live A/B experiments on a running server",
                       description="Add a variant to a live collection, split or shadow or "
                                   "interleave its traffic, read the comparison, promote.")
    asub = p.add_subparsers(dest="ab_command", metavar="ACTION")

    def action(name, func, help_text):
        a = asub.add_parser(name, help=help_text, description=help_text)
        a.add_argument("--collection", required=True, help="collection name")
        _client_options(a)
        a.set_defaults(func=func)
        return a

    a = action("add-variant", _add, "add a variant and build it in the background (admin)")
    a.add_argument("--name", required=True, help="variant name")
    a.add_argument("--model", default="", help="model folder under <data_dir>/models, or absolute")
    a.add_argument("--index", help="index kind (flat, hnsw, ivf); default: the server's")
    a.add_argument("--param", action="append", default=[], metavar="KEY=INT",
                   help="index parameter, e.g. M=32 (repeatable)")
    a = action("remove-variant", _remove, "remove a variant that is not the default (admin)")
    a.add_argument("--name", required=True, help="variant name")
    a = action("traffic", _traffic, "set the sticky split of searches naming no variant (admin)")
    a.add_argument("weights", nargs="*", metavar="VARIANT=WEIGHT",
                   help="e.g. default=0.9 cand=0.1; none: all to the default")
    a = action("shadow", _shadow, "shadow a candidate on a fraction of searches (admin)")
    a.add_argument("--variant", help="candidate variant; omit to switch shadowing off")
    a.add_argument("--fraction", type=float, default=0.0, help="share of searches, 0..1")
    a = action("interleave", _interleave, "serve a fraction of searches interleaved (admin)")
    a.add_argument("--a", help="variant A (omit both to switch off)")
    a.add_argument("--b", help="variant B")
    a.add_argument("--fraction", type=float, default=0.0, help="share of searches, 0..1")
    a = action("promote", _promote, "make a variant the default, atomically (admin)")
    a.add_argument("--variant", required=True, help="variant to promote")
    a = action("status", _status, "print the live comparison")
    a.add_argument("--json", action="store_true", help="the raw readout as JSON")
    a = action("report", _report, "write the live comparison as an HTML page")
    a.add_argument("--out", type=Path, required=True, help="HTML file to write")
    a.add_argument("--lang", choices=("en", "ja"), default="en", help="report language")
