"""`ranksearch version`: what is installed and what the data on disk is.

Four versions matter to an operator:

- package: the ranksearch release (``ranksearch.__version__``);
- api: the gRPC API package (``ranksearch.v1``); clients of one API version keep
  working across releases;
- data_format: the SQLite schema version this build writes (``SCHEMA_VERSION``)
  and, given a data dir, the version found there (older = migrated on the next
  start; newer = written by a later release, this build refuses to open it);
- model: the encoder folder the service serves (its rank setting and a fingerprint
  of its weights), so two servers can be compared.

Reading versions loads no model and opens the store read-only.
"""
from __future__ import annotations

import json
import platform
import sqlite3
from importlib import metadata
from pathlib import Path
from typing import Any

from ranksearch.fsutil import sha256_file

#: distributions whose versions decide behaviour and are worth reporting
RUNTIME_PACKAGES = ("torch", "faiss-cpu", "sentence-transformers", "transformers",
                    "grpcio", "protobuf", "numpy")


def package_version() -> str:
    from ranksearch import __version__

    return __version__


def api_version() -> str:
    """The protobuf package of the served API, read from the generated descriptor."""
    try:
        from ranksearch.proto.v1 import search_pb2
    except ImportError:
        return "ranksearch.v1"
    return search_pb2.DESCRIPTOR.package


def data_format_version() -> int:
    """The store schema version this build writes and migrates to."""
    from ranksearch.indexer.store import SCHEMA_VERSION

    return SCHEMA_VERSION


#: where the server keeps the indexer's store inside its data dir (service/server.py)
STORE_SUBDIR = "index"


def store_dir(data_dir: str | Path) -> Path:
    """The indexer's folder for a data dir: ``<data_dir>/index`` for a server's data
    dir; ``data_dir`` itself when it directly holds a store (an indexer data dir, as
    the indexer's own commands take)."""
    from ranksearch.indexer.store import DB_NAME

    data_dir = Path(data_dir)
    if (data_dir / DB_NAME).exists() and not (data_dir / STORE_SUBDIR).is_dir():
        return data_dir
    return data_dir / STORE_SUBDIR


def data_dir_version(data_dir: Path) -> int | None:
    """Schema version of the store in ``data_dir`` (read-only), None if it has none.
    ``data_dir`` is a server's data dir or an indexer's (see `store_dir`)."""
    from ranksearch.indexer.store import DB_NAME

    db = store_dir(data_dir) / DB_NAME
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT version FROM schema_version").fetchone()
    except sqlite3.OperationalError:  # no schema_version table: an empty store
        return 0
    finally:
        conn.close()
    return row[0] if row else 0


def model_info(folder: Path) -> dict[str, Any]:
    """Rank setting and a weights fingerprint of a model folder, without loading it."""
    folder = Path(folder)
    info: dict[str, Any] = {"folder": str(folder)}
    if not folder.is_dir():
        info["error"] = "folder not found"
        return info
    cfg_file = folder / "ranked_encoder.json"
    if cfg_file.exists():
        enc = json.loads(cfg_file.read_text()).get("encoder", {})
        rank = enc.get("rank")
        info.update(kind="ranked-encoder", layers=enc.get("layers"), heads=enc.get("heads"),
                    rank=rank, d_model=enc.get("d_model"))
    else:
        info["kind"] = "sentence-transformers"
    weights = sorted(folder.glob("*.safetensors"))
    if weights:
        info["weights_sha256"] = sha256_file(*weights)[:16]
    return info


def runtime_versions(packages: tuple[str, ...] = RUNTIME_PACKAGES) -> dict[str, str]:
    """Python's version and each distribution's ('not installed' when absent)."""
    out = {"python": platform.python_version()}
    for dist in packages:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def version_info(data_dir: str | Path | None = None,
                 model: str | Path | None = None) -> dict[str, Any]:
    """Package, API, data-format and model versions (plus the runtime's).

    ``model`` defaults to ``<data_dir>/models/default`` when a data dir is given."""
    info: dict[str, Any] = {
        "package": package_version(),
        "api": api_version(),
        "data_format": {"supported": data_format_version()},
    }
    if data_dir is not None:
        info["data_format"]["data_dir"] = str(data_dir)
        info["data_format"]["found"] = data_dir_version(Path(data_dir))
        if model is None and (Path(data_dir) / "models" / "default").is_dir():
            model = Path(data_dir) / "models" / "default"
    info["model"] = model_info(Path(model)) if model is not None else None
    info["runtime"] = runtime_versions()
    return info


def format_version(info: dict[str, Any]) -> str:
    """Human-readable lines for `ranksearch version`."""
    lines = [f"ranksearch {info['package']}", f"api: {info['api']}"]
    fmt = info["data_format"]
    line = f"data format: {fmt['supported']}"
    if "data_dir" in fmt:
        found = fmt["found"]
        state = ("no store yet" if found is None
                 else "current" if found == fmt["supported"]
                 else "older: migrated on next start" if found < fmt["supported"]
                 else "NEWER than this build: upgrade ranksearch")
        line += f" (data dir {fmt['data_dir']}: {found if found is not None else '-'}, {state})"
    lines.append(line)
    model = info["model"]
    if model is None:
        lines.append("model: (none given)")
    else:
        parts = [f"{k}={model[k]}" for k in ("kind", "layers", "heads", "rank", "weights_sha256",
                                             "error") if model.get(k) is not None]
        lines.append(f"model: {model['folder']} " + " ".join(parts))
    lines.append("runtime: " + " ".join(f"{k}={v}" for k, v in info["runtime"].items()))
    return "\n".join(lines)


# ---------------------------------------------------------------------- CLI

def add_parser(subparsers):
    p = subparsers.add_parser("version", help="package, API, data-format and model versions")
    p.add_argument("--data-dir", help="also report the schema version of this data dir")
    p.add_argument("--model", help="model folder (default: <data-dir>/models/default)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=version_command)
    return p


def version_command(args) -> int:
    info = version_info(args.data_dir, args.model)
    print(json.dumps(info, indent=2) if args.json else format_version(info))
    return 0
