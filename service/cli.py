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

DEFAULT_SERVER = "127.0.0.1:50051"


# ------------------------------------------------------------------ helpers

def _client(args):
    from ranksearch.client import SearchClient

    return SearchClient(args.server, token=args.token or None, tls=args.tls,
                        root_certificates=args.ca, client_cert=args.cert, client_key=args.key,
                        server_name=args.server_name, timeout=args.timeout)


def _client_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
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
    from ranksearch.errors import InvalidArgument

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
    setup_logging(config.logging.level, config.logging.json)
    return serve(config)


def _config_check(args) -> int:
    from ranksearch.service.config import load_config

    config = load_config(args.file)
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
                               min_score=args.min_score, offset=args.offset)
    if args.json:
        print(json.dumps({"variant": result.variant, "hits": [h.__dict__ for h in result.hits]}))
        return 0
    print(f"# variant: {result.variant}")
    for rank, hit in enumerate(result.hits, 1 + args.offset):
        snippet = " ".join(hit.text.split())[:100]
        print(f"{rank:3d}  {hit.score:+.4f}  {hit.id}  {snippet}")
    return 0


@_rpc_errors
def _upsert(args) -> int:
    from ranksearch.client import Document

    with _client(args) as client:
        n = client.upsert(args.collection, [Document(args.id, args.text, _kv(args.meta, "--meta"))])
    print(f"upserted {n}")
    return 0


@_rpc_errors
def _import(args) -> int:
    from tqdm import tqdm

    from ranksearch.client import Document
    from ranksearch.encoder.corpus import document_text, iter_documents

    def docs():
        for d in tqdm(iter_documents(args.path), desc="import", unit="doc", disable=args.quiet):
            text = document_text(d) if args.with_title else d.text
            metadata = dict(d.metadata)
            if d.title:
                metadata.setdefault("title", d.title)
            yield Document(d.id, text, metadata)

    with _client(args) as client:
        n = client.upsert_stream(args.collection, docs(), batch_size=args.batch_size,
                                 timeout=args.timeout)
    print(f"imported {n}")
    return 0


@_rpc_errors
def _delete(args) -> int:
    with _client(args) as client:
        print(f"deleted {client.delete(args.collection, args.ids)}")
    return 0


@_rpc_errors
def _get(args) -> int:
    with _client(args) as client:
        for d in client.get(args.collection, args.ids):
            print(json.dumps({"id": d.id, "text": d.text, "metadata": d.metadata}))
    return 0


@_rpc_errors
def _admin_verify(args) -> int:
    with _client(args) as client:
        response = client.verify()
    print(json.dumps({"ok": response.ok, "problems": list(response.problems),
                      "collections": json.loads(response.report_json or "{}")}, indent=2, sort_keys=True))
    return 0 if response.ok else 1


@_rpc_errors
def _admin_rebuild(args) -> int:
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
        print(json_format.MessageToJson(client.stats(args.collection), indent=1))
    return 0


@_rpc_errors
def _collections(args) -> int:
    with _client(args) as client:
        if args.create:
            info = client.create_collection(args.create)
            print(f"created {info.name} (variant {info.default_variant})")
            return 0
        if args.drop:
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

def register(sub) -> None:
    p = sub.add_parser("serve", help="run the gRPC search service")
    p.add_argument("--config", help="YAML config file")
    p.add_argument("--data-dir", help="data directory (overrides the file)")
    p.add_argument("--listen", help="HOST:PORT (overrides the file)")
    p.add_argument("--model", help="default_model (overrides the file): 'default' (English, "
                   "all-MiniLM-L6-v2), 'multilingual' (Japanese and other languages, "
                   "multilingual-e5-small; imported offline on first start) or a model folder")
    p.set_defaults(func=_serve)

    p = sub.add_parser("config", help="configuration tools")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    c = csub.add_parser("check", help="validate a config file without starting")
    c.add_argument("file")
    c.set_defaults(func=_config_check)
    c = csub.add_parser("hash-token", help="print the sha256 to store for a token ('-' reads stdin)")
    c.add_argument("token")
    c.set_defaults(func=_config_hash_token)
    c = csub.add_parser("reference", help="print every config key with type, default and doc")
    c.set_defaults(func=_config_reference)

    p = sub.add_parser("query", help="search the service")
    p.add_argument("text")
    p.add_argument("--collection", default="", help="default: the server's default collection")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--farthest", action="store_true", help="least similar documents first")
    p.add_argument("--variant", default="")
    p.add_argument("--filter", action="append", metavar="KEY=VALUE")
    p.add_argument("--min-score", type=float)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON")
    _client_options(p)
    p.set_defaults(func=_query)

    p = sub.add_parser("upsert", help="insert or replace one document")
    p.add_argument("id")
    p.add_argument("text")
    p.add_argument("--collection", default="")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE")
    _client_options(p)
    p.set_defaults(func=_upsert)

    p = sub.add_parser("import", help="stream a JSONL file or BEIR folder (corpus.jsonl) into a collection")
    p.add_argument("path")
    p.add_argument("--collection", default="")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--with-title", action="store_true", help="prepend the title to the text")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _client_options(p)
    p.set_defaults(func=_import)

    for name, func, help_text in (("delete", _delete, "delete documents by id"),
                                  ("get", _get, "fetch documents by id (JSON lines)")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("ids", nargs="+")
        p.add_argument("--collection", default="")
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
    p.add_argument("--collection", default="")
    _client_options(p)
    p.set_defaults(func=_stats)

    p = sub.add_parser("collections", help="list (or --create / --drop) collections")
    p.add_argument("--create", metavar="NAME", help="create with the server's defaults")
    p.add_argument("--drop", metavar="NAME", help="delete a collection")
    _client_options(p)
    p.set_defaults(func=_collections)

    from ranksearch.service import doctor, version  # owned by the deploy engineer

    version.add_parser(sub)
    doctor.add_parser(sub)
