"""Service subcommands of the `ranksearch` console script.

serve, config check|hash-token|reference, and the client commands built on
ranksearch.client: query, upsert, import, delete, get, stats, collections; plus
version and doctor (service/version.py, service/doctor.py). Client commands read --server / --token from the environment
too (RANKSEARCH_SERVER, RANKSEARCH_TOKEN).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ranksearch.errors import InvalidArgument

DEFAULT_SERVER = "127.0.0.1:50051"


# ------------------------------------------------------------------ helpers

def _client(args):
    from ranksearch.client import SearchClient

    return SearchClient(args.server, token=args.token or None, tls=args.tls,
                        root_certificates=args.ca, client_cert=args.cert, client_key=args.key,
                        server_name=args.server_name, timeout=args.timeout)


def _client_options(p: argparse.ArgumentParser, multi_server: bool = False) -> None:
    g = p.add_argument_group("connection")
    if multi_server:  # repeatable: one replica per --server (client/spread.py)
        g.add_argument("--server", action="append", type=str, default=None,
                       help="HOST:PORT, repeat to spread batches over replicas "
                            "(env RANKSEARCH_SERVER; default 127.0.0.1:50051)")
    else:
        g.add_argument("--server", default=os.environ.get("RANKSEARCH_SERVER", DEFAULT_SERVER),
                       help="HOST:PORT (env RANKSEARCH_SERVER; default %(default)s)")
    g.add_argument("--token", default=os.environ.get("RANKSEARCH_TOKEN", ""),
                   help="bearer token (env RANKSEARCH_TOKEN)")
    g.add_argument("--tls", action="store_true", help="connect with TLS (system roots unless --ca)")
    g.add_argument("--ca", help="PEM CA file to verify the server")
    g.add_argument("--cert", help="PEM client certificate (mutual TLS)")
    g.add_argument("--key", help="PEM client key (mutual TLS)")
    g.add_argument("--server-name", help="expected TLS server name (override)")
    g.add_argument("--timeout", type=float, default=30.0, help="deadline per call, seconds")


def _kv(items: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(flag, f"expected KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def _rpc_errors(func):
    def run(args) -> int:
        from ranksearch.client import RpcFailed

        try:
            return func(args)
        except RpcFailed as exc:
            where = f" (field {exc.field})" if exc.field else ""
            print(f"error: {exc.code.name}: {exc.message}{where}", file=sys.stderr)
            return 1
    return run


# ------------------------------------------------------------------ server side

def _serve(args) -> int:
    from ranksearch.service.config import load_config
    from ranksearch.service.logs import setup_logging
    from ranksearch.service.server import serve

    config = load_config(args.config, {"data_dir": args.data_dir, "listen": args.listen,
                                       "default_model": args.model})
    if args.metrics_listen:
        config.metrics = _metrics_listen(config.metrics, args.metrics_listen)
    setup_logging(config.logging.level, config.logging.json)
    return serve(config)


def _metrics_listen(section, value: str):
    """--metrics-listen HOST:PORT (or 'off') over the config's metrics section."""
    import dataclasses

    from ranksearch.service.config import parse_listen

    if value == "off":
        return dataclasses.replace(section, port=None)
    try:
        host, port = parse_listen(value)
    except InvalidArgument as exc:
        raise InvalidArgument("--metrics-listen", exc.message) from None
    return dataclasses.replace(section, host=host, port=port)


def _config_check(args) -> int:
    from ranksearch.service.config import load_config

    config = load_config(args.file)
    config.check_files()
    for warning in config.check_security():
        print(f"warning: {warning}")
    print(f"ok: {args.file} (listen {config.listen}, data_dir {config.data_dir}, "
          f"{len(config.auth.tokens)} tokens, TLS {'on' if config.tls.enabled else 'off'})")
    return 0


def _config_hash_token(args) -> int:
    from ranksearch.service.config import hash_token

    token = args.token if args.token != "-" else sys.stdin.readline().rstrip("\n")
    print(hash_token(token))
    return 0


def _config_reference(args) -> int:
    from ranksearch.service.config import describe

    for row in describe():
        default = "" if row["type"] == "section" else f" = {json.dumps(row['default'])}"
        print(f"{row['key']} ({row['type']}){default}: {row['doc']}")
    return 0


# ------------------------------------------------------------------ client side

@_rpc_errors
def _query(args) -> int:
    with _client(args) as client:
        result = client.search(args.text, collection=args.collection, k=args.k,
                               farthest=args.farthest, variant=args.variant,
                               filter=_kv(args.filter, "--filter"), include_text=True,
                               min_score=args.min_score, offset=args.offset, mode=args.mode,
                               hybrid=_hybrid_args(args), explain=args.explain)
    if args.json:
        print(json.dumps({"variant": result.variant, "mode": result.mode,
                          "hits": [h.__dict__ for h in result.hits]}, ensure_ascii=False))
        return 0
    mode = "" if result.mode == "nearest" else f"  mode: {result.mode}"
    print(f"# variant: {result.variant or '-'}{mode}")
    for rank, hit in enumerate(result.hits, 1 + args.offset):
        snippet = " ".join(hit.text.split())[:100]
        why = ""
        if hit.explain is not None:
            e = hit.explain
            why = (f"  [dense #{e['dense_rank']} {e['dense_score']:+.4f}"
                   f" | lexical #{e['lexical_rank']} {e['lexical_score']:.4f}]")
        print(f"{rank:3d}  {hit.score:+.4f}  {hit.id}{why}  {snippet}")
    return 0


def _hybrid_args(args):
    """--fusion/--rrf-k/--weights/--candidates -> client Hybrid (None when none is given)."""
    from ranksearch.client import Hybrid

    given = [args.fusion, args.rrf_k, args.weights, args.normalization, args.candidates]
    if all(v is None for v in given):
        return None
    dense_w, lexical_w = args.weights if args.weights else (None, None)
    dense_c, lexical_c = args.candidates if args.candidates else (0, 0)
    return Hybrid(fusion=args.fusion, rrf_k=args.rrf_k, dense_weight=dense_w, lexical_weight=lexical_w,
                  normalization=args.normalization, dense_candidates=dense_c, lexical_candidates=lexical_c)


@_rpc_errors
def _upsert(args) -> int:
    from ranksearch.client import Document

    with _client(args) as client:
        n = client.upsert(args.collection, [Document(args.id, args.text, _kv(args.meta, "--meta"))])
    print(f"upserted {n}")
    return 0


def _import(args) -> int:
    """Validate the whole file first (nothing is written from a file with a bad line),
    then send it in batches, each acknowledged with its own deadline; the progress
    bar counts acknowledged documents. Documents the server holds already with the
    same text and metadata are skipped by the server (content hash), so running the
    same command again after an interruption resumes where it stopped."""
    import re

    from tqdm import tqdm

    from ranksearch.client import Document, RpcFailed
    from ranksearch.encoder.corpus import document_text, iter_documents

    total = sum(1 for _ in iter_documents(args.path))  # raises FILE:LINE: field: reason
    wheres: list[str] = []  # file:line of each document sent, to name a line the server rejects

    def docs():
        for d in iter_documents(args.path):
            text = document_text(d) if args.with_title else d.text
            metadata = dict(d.metadata)
            if d.title:
                metadata.setdefault("title", d.title)
            wheres.append(d.where)
            yield Document(d.id, text, metadata)

    servers = args.server or [os.environ.get("RANKSEARCH_SERVER", DEFAULT_SERVER)]
    if len(servers) > 1:  # batches spread over the replicas; a re-run resumes the same way
        n = _import_spread(args, servers, docs())
        print(f"imported {n} into {args.collection} over {len(servers)} servers")
        return 0
    args.server = servers[0]
    count = unchanged = 0
    bar = tqdm(total=total, desc=f"import into {args.collection}", unit="doc", disable=args.quiet)
    try:
        with _client(args) as client:
            for done in client.upsert_batches(args.collection, docs(), batch_size=args.batch_size,
                                              timeout=args.timeout):
                count, unchanged = count + done.count, unchanged + done.unchanged
                bar.update(done.count)
                bar.set_postfix(unchanged=unchanged, refresh=False)
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted: {count} documents were acknowledged (durable); run the same command "
              "again to resume (they are skipped as unchanged)", file=sys.stderr)
        return 130
    except RpcFailed as exc:
        bar.close()
        first = wheres[count] if count < len(wheres) else args.path  # first line not written
        message = exc.message.removeprefix(f"{exc.field}: ") if exc.field else exc.message
        match = re.fullmatch(r"documents\[(\d+)\]\.?(.*)", exc.field)
        if match and count + int(match.group(1)) < len(wheres):  # the server names a document
            error = f"{wheres[count + int(match.group(1))]}: {match.group(2) or 'document'}: {message} ({exc.code.name})"
        else:
            error = f"{exc.code.name}: {message}" + (f" (field {exc.field})" if exc.field else "")
        written = f"the {count} documents before {first} were written" if count else "nothing was written"
        print(f"error: {error}\n{written}; nothing from there on. Fix the cause and run the same "
              "command again: documents already written are skipped.", file=sys.stderr)
        return 1
    bar.close()
    print(f"imported {count} into {args.collection} ({count - unchanged} written, "
          f"{unchanged} unchanged and skipped)")
    return 0


def _import_spread(args, servers: list[str], documents) -> int:
    """`import --server A --server B`: batches spread over the replicas (client/spread.py)."""
    from ranksearch.client.spread import upsert_spread

    clients = []
    for server in servers:
        args.server = server
        clients.append(_client(args))
    try:
        return upsert_spread(clients, args.collection, documents, args.batch_size, args.timeout)
    finally:
        for client in clients:
            client.close()


@_rpc_errors
def _delete(args) -> int:
    with _client(args) as client:
        print(f"deleted {client.delete(args.collection, args.ids)}")
    return 0


@_rpc_errors
def _get(args) -> int:
    with _client(args) as client:
        for d in client.get(args.collection, args.ids):
            print(json.dumps({"id": d.id, "text": d.text, "metadata": d.metadata}, ensure_ascii=False))
    return 0


@_rpc_errors
def _admin_verify(args) -> int:
    with _client(args) as client:
        response = client.verify()
    print(json.dumps({"ok": response.ok, "problems": list(response.problems),
                      "collections": json.loads(response.report_json or "{}")}, indent=2, sort_keys=True,
                     ensure_ascii=False))
    return 0 if response.ok else 1


@_rpc_errors
def _admin_rebuild(args) -> int:
    print(f"rebuilding {args.collection or 'every collection'} on the server (searches go on, writes "
          "wait); the server log shows progress with an ETA ('rebuild: ... ETA')", file=sys.stderr)
    with _client(args) as client:
        response = client.rebuild(args.collection)
    print(f"rebuilt {', '.join(response.collections) or 'nothing'} in {response.seconds:.1f} s; "
          f"verify: {'ok' if response.ok else 'PROBLEMS'}")
    for problem in response.problems:
        print(f"  {problem}")
    return 0 if response.ok else 1


@_rpc_errors
def _stats(args) -> int:
    from google.protobuf import json_format

    with _client(args) as client:
        # numbers as JSON numbers (proto3 JSON quotes int64), text as UTF-8
        print(json_format.MessageToJson(client.stats(args.collection), indent=1, ensure_ascii=False,
                                        unquote_int64_if_possible=True))
    return 0


@_rpc_errors
def _collections(args) -> int:
    with _client(args) as client:
        if args.create:
            from ranksearch.client import Variant

            variants = [Variant(name="default", model=args.model, precision=args.precision)] \
                if args.model or args.precision != "fp32" else []
            info = client.create_collection(args.create, variants, language=args.language,
                                            default_mode=args.default_mode)
            print(f"created {info.name} (variant {info.default_variant}, "
                  f"analyzer {info.lexical.analyzer or 'auto'})")
            return 0
        if args.drop:
            if not args.yes:
                raise InvalidArgument("--yes", f"dropping {args.drop!r} deletes its documents for good; "
                                      "repeat with --yes to confirm")
            client.delete_collection(args.drop)
            print(f"deleted {args.drop}")
            return 0
        response = client.list_collections()
    for c in response.collections:
        mark = " (default)" if c.name == response.default_collection else ""
        variants = ", ".join(f"{v.name}[{v.index.kind}, dim {v.dim}]" for v in c.variants)
        print(f"{c.name}{mark}: {c.documents} documents; variants: {variants}")
    return 0


# ------------------------------------------------------------------ register

def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _non_negative(value: str) -> int:
    n = int(value)
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {n}")
    return n


def _collection_option(p: argparse.ArgumentParser) -> None:
    """Writes name their collection: no silent default (the built-in `stdlib`)."""
    p.add_argument("--collection", required=True, help="collection to write to (required)")


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the gRPC search service")
    p.add_argument("--config", help="YAML config file")
    p.add_argument("--data-dir", help="data directory (overrides the file)")
    p.add_argument("--listen", help="HOST:PORT (overrides the file)")
    p.add_argument("--metrics-listen", metavar="HOST:PORT",
                   help="metrics endpoint (overrides metrics.host/port; 'off' = none); give a "
                        "second server on one host its own port")
    p.add_argument("--model", help="default_model (overrides the file): 'default' (English, "
                   "all-MiniLM-L6-v2), 'multilingual' (Japanese and other languages, "
                   "multilingual-e5-small; imported offline on first start) or a model folder")
    p.set_defaults(func=_serve)

    p = sub.add_parser("config", help="configuration tools")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    c = csub.add_parser("check", help="validate a config file (keys, listeners, TLS files) without starting")
    c.add_argument("file", metavar="FILE", help="YAML config file")
    c.set_defaults(func=_config_check)
    c = csub.add_parser("hash-token", help="print the sha256 to store for a token ('-' reads stdin)")
    c.add_argument("token", metavar="TOKEN", help="the token, or '-' to read it from stdin")
    c.set_defaults(func=_config_hash_token)
    c = csub.add_parser("reference", help="print every config key with type, default and doc")
    c.set_defaults(func=_config_reference)

    p = sub.add_parser("query", help="search the service")
    p.add_argument("text", metavar="TEXT", help="the query text")
    p.add_argument("--collection", default="", help="collection to search (default: the server's default collection)")
    p.add_argument("--k", type=_positive, default=10, help="number of hits, at least 1 (default %(default)s)")
    p.add_argument("--farthest", action="store_true", help="least similar documents first")
    p.add_argument("--mode", choices=["dense", "nearest", "farthest", "lexical", "hybrid"],
                   help="dense (= nearest), lexical (BM25), hybrid (both, fused); "
                        "default: the collection's default mode")
    p.add_argument("--explain", action="store_true",
                   help="show each hit's dense and lexical rank and score")
    p.add_argument("--fusion", choices=["rrf", "weighted"], help="hybrid: fusion method")
    p.add_argument("--rrf-k", type=float, help="hybrid: RRF constant k (default 60)")
    p.add_argument("--weights", type=float, nargs=2, metavar=("DENSE", "LEXICAL"),
                   help="hybrid: weight of each retriever (default 1 1)")
    p.add_argument("--normalization", choices=["minmax", "zscore"], help="hybrid weighted: normalisation")
    p.add_argument("--candidates", type=int, nargs=2, metavar=("DENSE", "LEXICAL"),
                   help="hybrid: candidates per retriever (default max(k + offset, 100))")
    p.add_argument("--variant", default="", help="variant to ask (default: the collection's default or its A/B split)")
    p.add_argument("--filter", action="append", metavar="KEY=VALUE",
                   help="only documents whose metadata KEY equals VALUE (repeatable; all must match)")
    p.add_argument("--min-score", type=float, help="drop hits whose score (cosine, BM25 or fused, by mode) is below this")
    p.add_argument("--offset", type=_non_negative, default=0, help="skip this many hits first (paging)")
    p.add_argument("--json", action="store_true", help="print JSON (UTF-8)")
    _client_options(p)
    p.set_defaults(func=_query)

    p = sub.add_parser("upsert", help="insert or replace one document")
    p.add_argument("id", metavar="ID", help="document id (replaces a document with the same id)")
    p.add_argument("text", metavar="TEXT", help="document text")
    _collection_option(p)
    p.add_argument("--meta", action="append", metavar="KEY=VALUE", help="metadata entry (repeatable)")
    _client_options(p)
    p.set_defaults(func=_upsert)

    p = sub.add_parser("import", help="load a JSONL file or BEIR folder (corpus.jsonl) into a collection",
                       description="Validates the whole file first (a bad line writes nothing), then "
                                   "sends it in batches, each with its own deadline (--timeout). The progress "
                                   "bar counts acknowledged documents. Running it again skips documents whose "
                                   "text and metadata the server already holds, so an interrupted import resumes.")
    p.add_argument("path", metavar="PATH",
                   help='JSONL file, one {"id"|"_id", "text", "title"?, "metadata"?} per line, or a BEIR folder')
    _collection_option(p)
    p.add_argument("--batch-size", type=_positive, default=64,
                   help="documents per call (default %(default)s); each call gets --timeout")
    p.add_argument("--with-title", action="store_true", help="encode 'title: text' instead of the text alone")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _client_options(p, multi_server=True)
    p.set_defaults(func=_import)

    for name, func, help_text, collection in (
            ("delete", _delete, "delete documents by id", _collection_option),
            ("get", _get, "fetch documents by id (JSON lines, UTF-8)", None)):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("ids", nargs="+", metavar="ID", help="document id")
        if collection:
            collection(p)
        else:
            p.add_argument("--collection", default="", help="default: the server's default collection")
        _client_options(p)
        p.set_defaults(func=func)

    p = sub.add_parser("admin", help="index checks on the running server (admin token): verify, rebuild")
    asub = p.add_subparsers(dest="admin_command", required=True)
    a = asub.add_parser("verify", help="check the live FAISS indexes against SQLite; exit 1 on a problem")
    _client_options(a)
    a.set_defaults(func=_admin_verify)
    a = asub.add_parser("rebuild", help="rebuild FAISS indexes from SQLite while serving, then verify")
    a.add_argument("--collection", default="", help="only this collection (default: all)")
    _client_options(a)
    a.set_defaults(func=_admin_rebuild, timeout=3600.0)  # a large rebuild takes minutes

    p = sub.add_parser("stats", help="per collection and variant statistics (JSON)")
    p.add_argument("--collection", default="", help="only this collection (default: all)")
    _client_options(p)
    p.set_defaults(func=_stats)

    p = sub.add_parser("collections", help="list (or --create / --drop) collections")
    p.add_argument("--create", metavar="NAME", help="create a collection (server's default encoder "
                   "and index unless --model / --precision)")
    p.add_argument("--model", default="", help="--create: encoder model folder under <data_dir>/models "
                   "(e.g. multilingual), default: the server's default model")
    p.add_argument("--precision", choices=("fp32", "bf16", "int8"), default="fp32",
                   help="--create: encoding precision (default fp32; see docs/PERFORMANCE.md)")
    p.add_argument("--language", choices=("auto", "en", "ja"), default="auto",
                   help="--create: lexical analysis of the BM25 index: ja (SudachiPy), en, or auto "
                        "per document (default)")
    p.add_argument("--default-mode", choices=("nearest", "lexical", "hybrid"), default="nearest",
                   help="--create: mode of searches that name none (default nearest = dense)")
    p.add_argument("--drop", metavar="NAME", help="delete a collection and its documents (needs --yes)")
    p.add_argument("--yes", action="store_true", help="confirm --drop")
    _client_options(p)
    p.set_defaults(func=_collections)

    from ranksearch.service import doctor, version  # owned by the deploy engineer

    version.add_parser(sub)
    doctor.add_parser(sub)
