"""`ranksearch doctor`: a self-check an operator runs before (or instead of) starting
the server, and `ranksearch doctor --probe HOST:PORT`, a health probe for container
health checks and load balancers.

Each check answers one question and says what to do when the answer is no:

    config      the YAML loads, no unknown keys, the listeners are allowed (TLS/tokens,
                metrics on loopback), the TLS files exist and are readable
    data_dir    exists (or can be created) and is writable; free disk space
    data_format the store's schema is one this build can open (older = migrated)
    offline     HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set; no hub endpoint configured
    model       each configured model folder loads offline and encodes a sentence
    index       the FAISS indexes agree with the SQLite store (Indexer.verify); only
                when the server is not running, since opening the store recovers it
    ports       the gRPC and metrics ports are free, or held by the ranksearch server
                running on this data dir (it holds the data dir's lock and answers)
    network     no network connection was attempted while the checks ran
    milvus      (store.kind: milvus) Milvus answers, its version, and every
                collection's load state; run outside the network recorder, since
                reaching Milvus is intended

A process-wide audit hook (PEP 578) records every socket connect and name lookup
made while the checks run, so "no network access attempted" is observed, not
assumed.
"""
from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import shutil
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
#: environment variables that point the Hugging Face libraries at a hub
HUB_ENV = ("HF_ENDPOINT", "HF_HUB_ENDPOINT", "HUGGINGFACE_CO_RESOLVE_ENDPOINT")
MIN_FREE_BYTES = 1 << 30


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail | skip
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == FAIL


# ------------------------------------------------------------- network recorder

class _NetworkRecorder:
    """Records non-local socket connects and name lookups while `recording()` is
    active. Audit hooks cannot be removed, so one hook is installed per process and
    switched on and off."""

    def __init__(self) -> None:
        self._installed = False
        self._depth = 0
        self._lock = threading.Lock()
        self.attempts: list[str] = []

    def _hook(self, event: str, args: tuple) -> None:
        if not self._depth:
            return
        if event == "socket.connect":
            address = args[1]
            if isinstance(address, tuple) and not _is_local(str(address[0])):
                self.attempts.append(f"connect {address[0]}:{address[1]}")
        elif event == "socket.getaddrinfo":
            host = args[0]
            if host is not None and not _is_local(host.decode() if isinstance(host, bytes) else str(host)):
                self.attempts.append(f"resolve {host}")

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[str]]:
        with self._lock:
            if not self._installed:
                sys.addaudithook(self._hook)
                self._installed = True
            self._depth += 1
            start = len(self.attempts)
        try:
            found: list[str] = []
            yield found
        finally:
            with self._lock:
                self._depth -= 1
                found.extend(self.attempts[start:])


network_recorder = _NetworkRecorder()


def _is_local(host: str) -> bool:
    if host in ("", "localhost") or host.startswith("/"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


# ------------------------------------------------------------------- checks

def check_config(config_path: str | None, data_dir: str | None):
    """(Check, config or None)."""
    from ranksearch.errors import ConfigError
    from ranksearch.service.config import load_config

    where = config_path or "built-in defaults"
    try:
        config = load_config(config_path, overrides={"data_dir": data_dir})
        config.check_files()
        warnings = config.check_security()
    except ConfigError as exc:
        return Check("config", FAIL, f"{where}: {exc}"), None
    if warnings:
        return Check("config", WARN, f"{where}: " + "; ".join(warnings)), config
    return Check("config", OK, f"{where}: valid, listen {config.listen}, data_dir "
                 f"{Path(config.data_dir).resolve()}"), config


def check_data_dir(data_dir: Path) -> Check:
    probe_root = data_dir
    while not probe_root.exists():  # the server creates it: check the nearest parent
        probe_root = probe_root.parent
    if not probe_root.is_dir():
        return Check("data_dir", FAIL, f"{probe_root} is not a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=probe_root, prefix=".doctor-") as fh:
            fh.write(b"ranksearch doctor\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        return Check("data_dir", FAIL, f"{probe_root} is not writable by uid {os.getuid()}: "
                     f"{exc.strerror}")
    free = shutil.disk_usage(probe_root).free
    state = "exists" if data_dir.exists() else f"will be created (parent {probe_root} writable)"
    detail = f"{data_dir} {state}; {free / 2**30:.1f} GiB free"
    if free < MIN_FREE_BYTES:
        return Check("data_dir", WARN, detail + " (less than 1 GiB)")
    return Check("data_dir", OK, detail)


def check_data_format(data_dir: Path) -> Check:
    from ranksearch.service.version import data_dir_version, data_format_version

    supported = data_format_version()
    found = data_dir_version(data_dir) if data_dir.exists() else None
    if found is None:
        return Check("data_format", OK, f"no store yet; this build writes version {supported}")
    if found > supported:
        return Check("data_format", FAIL, f"store has schema version {found}, newer than this "
                     f"build supports ({supported}): install the release that wrote it")
    if found < supported:
        return Check("data_format", WARN, f"store has schema version {found}; the next start "
                     f"migrates it to {supported} (back up first: RUNBOOK.md, 'Upgrade')")
    return Check("data_format", OK, f"schema version {found} (current)")


def check_offline(environ: dict[str, str] | None = None) -> Check:
    environ = os.environ if environ is None else environ
    problems = [f"{k} is {environ.get(k)!r}, expected '1'"
                for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if environ.get(k) != "1"]
    problems += [f"{k} is set ({environ[k]}): a hub endpoint must not be configured"
                 for k in HUB_ENV if environ.get(k)]
    if problems:
        return Check("offline", FAIL, "; ".join(problems))
    return Check("offline", OK, "HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1, no hub endpoint")


def model_folders(config, data_dir: Path, model: str | None) -> dict[str, Path]:
    """label -> folder of every model the config serves (or just `model`)."""
    if model:
        return {"--model": Path(model)}
    models_root = data_dir / "models"

    def resolve(name: str) -> Path:
        p = Path(name)
        return p if p.is_absolute() else models_root / name

    out = {"default_model": resolve(config.default_model)}
    seen = set(out.values())
    for coll in config.collections:
        for var in coll.variants:
            folder = resolve(var.model) if var.model else out["default_model"]
            if folder not in seen:  # each folder is loaded once
                seen.add(folder)
                out[f"collections.{coll.name}.variants.{var.name}.model"] = folder
    return out


def check_model(label: str, folder: Path, default: bool) -> Check:
    if not folder.is_dir():
        if default:
            return Check(f"model {label}", SKIP, f"{folder} not built yet; the first start "
                         "converts the default model from the installed weights")
        return Check(f"model {label}", FAIL, f"{folder} does not exist")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import numpy as np

    from ranksearch.encoder.embedder import load_encoder

    try:
        embedder = load_encoder(folder)
        vec = embedder.encode(["ranksearch doctor self-check"], role="query")  # (1, dim)
    except Exception as exc:  # any failure to load is the finding itself
        return Check(f"model {label}", FAIL, f"{folder} does not load offline: "
                     f"{type(exc).__name__}: {exc}")
    norm = float(np.linalg.norm(vec[0]))
    if vec.shape != (1, embedder.dim) or abs(norm - 1.0) > 1e-3:
        return Check(f"model {label}", FAIL, f"{folder} encodes to shape {vec.shape}, norm "
                     f"{norm:.4f} (expected (1, {embedder.dim}), norm 1)")
    return Check(f"model {label}", OK, f"{folder} loads offline, dim {embedder.dim}")


def port_free(host: str, port: int) -> str | None:
    """None if (host, port) can be bound now, else the reason."""
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def data_dir_locked(data_dir: Path) -> bool:
    """Whether a process (a running server, or `verify`/`rebuild`) holds the data
    dir's lock. Creates nothing."""
    import fcntl

    from ranksearch.indexer.indexer import LOCK_NAME
    from ranksearch.service.version import store_dir

    lock = store_dir(data_dir) / LOCK_NAME
    if not lock.is_file():
        return False
    with open(lock, "rb") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def _answers_as_ranksearch(label: str, host: str, port: int, tls: bool) -> str | None:
    """What the process on a busy port says it is, if it is a ranksearch server."""
    host = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if label == "metrics":
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://{target}/metrics", timeout=2) as reply:
                body = reply.read(1 << 20).decode("utf-8", "replace")
        except OSError:
            return None
        return "serves ranksearch metrics" if "ranksearch_" in body else None
    if tls:  # a health probe would need the client's CA: the data dir lock is the evidence
        return "TLS listener of the process holding the data dir"
    status = health_status(target, timeout_s=2.0)
    return f"health {status}" if status else None


def check_ports(config) -> tuple[Check, bool]:
    """(Check, whether the server of this data dir is running). A busy port is fine
    when the ranksearch server of this data dir holds it: doctor recognises its own
    running server (data dir locked, and the port answers as ranksearch)."""
    from ranksearch.service.config import parse_listen

    host, port = parse_listen(config.listen)
    wanted = [("grpc", host, port)]
    if config.metrics.port is not None:
        wanted.append(("metrics", config.metrics.host, config.metrics.port))
    locked = data_dir_locked(Path(config.data_dir))
    busy, ours = [], []
    for label, h, p in wanted:
        reason = port_free(h, p)
        if not reason:
            continue
        what = _answers_as_ranksearch(label, h, p, config.tls.enabled) if locked else None
        if what:
            ours.append(f"{label} {h}:{p} ({what})")
        else:
            busy.append(f"{label} {h}:{p}: {reason}")
    if busy:
        return Check("ports", FAIL, "; ".join(busy) + " (not the ranksearch server of this data "
                     "dir: another server or program holds it)"), bool(ours)
    if ours:
        return Check("ports", OK, "in use by the ranksearch server running on this data dir: "
                     + ", ".join(ours)), True
    return Check("ports", OK, ", ".join(f"{label} {h}:{p}" for label, h, p in wanted) + " free"), False


def check_index(data_dir: Path, server_running: bool) -> Check:
    from ranksearch.indexer.store import DB_NAME
    from ranksearch.service.version import store_dir

    store = store_dir(data_dir)
    if not (store / DB_NAME).exists():
        return Check("index", SKIP, "no store yet")
    if server_running:
        return Check("index", SKIP, "the server is running; check its indexes with "
                     "`ranksearch admin verify`, or stop it and re-run doctor")
    from ranksearch.errors import FailedPrecondition
    from ranksearch.indexer import Indexer, IndexerConfig
    from ranksearch.indexer.store import SCHEMA_VERSION
    from ranksearch.service.version import data_dir_version

    found = data_dir_version(data_dir)
    if found is not None and 0 < found < SCHEMA_VERSION:
        # opening the store would migrate it: doctor changes nothing on disk
        return Check("index", SKIP, f"data format {found} is migrated to {SCHEMA_VERSION} on the "
                     "next start; the index check runs after that")
    indexer = Indexer(store, IndexerConfig(snapshot_interval_s=0))
    try:
        indexer.open()
    except FailedPrecondition as exc:  # locked by a running server, or a newer schema
        return Check("index", SKIP if "in use" in exc.message else FAIL, str(exc))
    try:
        report = indexer.verify()
    finally:
        indexer.close()
    problems = _verify_problems(report)
    if problems:
        return Check("index", FAIL, "; ".join(problems) + f" (fix: `ranksearch rebuild {store}`)")
    return Check("index", OK, f"indexes consistent with the store: {_short(report)}")


def check_milvus(config) -> Check:
    """Milvus reachable (version), and each collection present and Loaded."""
    from ranksearch.errors import RanksearchError
    from ranksearch.service.storage import make_store

    uri = config.store.uri
    try:
        store = make_store(config)
        try:
            store.open()
            version = store.ping()
            report = store.verify()
        finally:
            store.close()
    except RanksearchError as exc:
        return Check("milvus", FAIL, f"{uri}: {exc.message} (is Milvus running and store.uri right? "
                     "deploy/RUNBOOK.md, Scale out)")
    states = ", ".join(f"{name}: {c['load_state']}, {c['documents']} documents"
                       for name, c in report["collections"].items()) or "no collections yet"
    if not report["ok"]:
        return Check("milvus", FAIL, f"{uri} (Milvus {version}): " + "; ".join(report["problems"])
                     + " (fix: `ranksearch admin rebuild` loads and compacts)")
    return Check("milvus", OK, f"{uri} answers (Milvus {version}); {states}")


def _verify_problems(report: dict) -> list[str]:
    """Problems listed by Indexer.verify's report ({"ok", "problems", "collections"})."""
    problems = [str(p) for p in report["problems"]]
    return problems or ([] if report["ok"] else ["verify reported ok=false"])


def _short(report: dict) -> str:
    text = str({k: v for k, v in report.items() if k != "problems"})
    return text if len(text) < 200 else text[:197] + "..."


def run_doctor(config_path: str | None = None, data_dir: str | Path | None = None,
               model: str | None = None, load_models: bool = True) -> list[Check]:
    """Run every check; never raises for a finding (each finding is a Check)."""
    with network_recorder.recording() as attempts:
        checks: list[Check] = []
        cfg_check, config = check_config(config_path, str(data_dir) if data_dir else None)
        checks.append(cfg_check)
        if config is None:
            if data_dir is None:
                return checks
            from ranksearch.service.config import ServiceConfig

            config = ServiceConfig(data_dir=str(data_dir))
        ddir = Path(config.data_dir)
        checks.append(check_data_dir(ddir))
        checks.append(check_data_format(ddir))
        checks.append(check_offline())
        ports, running = check_ports(config)
        checks.append(ports)
        if load_models:
            for label, folder in model_folders(config, ddir, model).items():
                checks.append(check_model(label, folder, default=(label == "default_model")))
        if config.store.kind == "embedded":
            checks.append(check_index(ddir, running))
    if attempts:
        checks.append(Check("network", FAIL, "network access attempted: " + ", ".join(attempts[:5])))
    else:
        checks.append(Check("network", OK, "no connection or name lookup outside this host"))
    if config.store.kind == "milvus":
        checks.append(check_milvus(config))
    return checks


# -------------------------------------------------------------------- probe

def _health_check(target: str, timeout_s: float, ca_file: str | None, service: str):
    """The grpc.health.v1 status name at `target`; raises grpc.RpcError."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    if ca_file:
        creds = grpc.ssl_channel_credentials(Path(ca_file).read_bytes())
        channel = grpc.secure_channel(target, creds)
    else:
        channel = grpc.insecure_channel(target)
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
    finally:
        channel.close()
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def health_status(target: str, timeout_s: float = 5.0) -> str | None:
    """SERVING / NOT_SERVING / ... when a gRPC health service answers, else None."""
    import grpc

    try:
        return _health_check(target, timeout_s, None, "")
    except grpc.RpcError:
        return None


def probe_health(target: str, timeout_s: float = 5.0, ca_file: str | None = None,
                 service: str = "") -> Check:
    """Ask the grpc.health.v1 service at `target`; OK only when it answers SERVING."""
    import grpc

    try:
        status = _health_check(target, timeout_s, ca_file, service)
    except grpc.RpcError as exc:
        return Check("health", FAIL, f"{target}: {exc.code().name}: {exc.details()}")
    return Check("health", OK if status == "SERVING" else FAIL, f"{target}: {status}")


# ---------------------------------------------------------------------- CLI

def format_checks(checks: list[Check]) -> str:
    return "\n".join(f"[{c.status:>4}] {c.name}: {c.detail}" for c in checks)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("doctor", help="self-check: config, data dir, model, index, ports, offline",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="config file (default: built-in defaults)")
    p.add_argument("--data-dir", help="data dir (overrides the config's data_dir)")
    p.add_argument("--model", help="check this model folder instead of the configured ones")
    p.add_argument("--no-model", action="store_true", help="skip loading models (faster)")
    p.add_argument("--probe", metavar="HOST:PORT",
                   help="only ask the running server's health service (exit 0 = SERVING)")
    p.add_argument("--ca", help="with --probe: CA certificate for a TLS listener")
    p.add_argument("--timeout", type=float, default=5.0, help="with --probe: seconds (default 5)")
    p.set_defaults(func=doctor_command)
    return p


def doctor_command(args) -> int:
    if args.probe:
        check = probe_health(args.probe, args.timeout, args.ca)
        print(format_checks([check]))
        return 1 if check.failed else 0
    checks = run_doctor(args.config, args.data_dir, args.model, load_models=not args.no_model)
    print(format_checks(checks))
    failed = [c.name for c in checks if c.failed]
    print(f"doctor: {len(failed)} failed" + (f" ({', '.join(failed)})" if failed else ", all good"))
    return 1 if failed else 0
