"""FAISS snapshots: one file per (collection, variant) under ``snapshots/``.

Layout: ``MAGIC``, an 8-byte little-endian header length, a JSON header (collection,
variant, dim, kind, the last seq the index contains, creation time, how many vectors
the main index held at its last one-pass build, and per part its size and sha256),
then the serialized FAISS indexes (``exact``, and ``main`` where there is one). A
file is written to a temp name, fsynced, renamed over the old one, and the directory
is fsynced, so a crash leaves the old or the new file, never half of one. Anything
that does not check out on load (short file, bad magic, checksum, other dim or kind)
raises SnapshotError; the caller then rebuilds from SQLite.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from ranksearch.fsutil import fsync_path
from ranksearch.indexer.faiss_index import VariantIndex
from ranksearch.indexer.types import VariantSpec

MAGIC = b"RSSNAP1\n"
SUFFIX = ".snap"
TMP_PREFIX = ".tmp-"


class SnapshotError(Exception):
    """A snapshot file is missing, truncated, corrupt or does not fit the variant."""


@dataclass
class SnapshotInfo:
    seq: int
    created_at: float


def collection_dir(root: Path, collection: str) -> Path:
    return root / "snapshots" / collection


def snapshot_path(root: Path, collection: str, variant: str) -> Path:
    return collection_dir(root, collection) / f"{variant}{SUFFIX}"


def serialize(index: VariantIndex) -> dict[str, np.ndarray]:
    """Serialize the FAISS indexes (caller holds the read lock: no writer runs)."""
    parts = {"exact": faiss.serialize_index(index.exact)}
    if index.main is not None:
        parts["main"] = faiss.serialize_index(index.main)
    return parts


def write_snapshot(path: Path, spec: VariantSpec, collection: str, seq: int, parts: dict[str, np.ndarray],
                   built_count: int = 0) -> SnapshotInfo:
    now = time.time()
    header = {
        "main_built_count": built_count,
        "format": 1,
        "collection": collection,
        "variant": spec.name,
        "dim": spec.dim,
        "kind": spec.index.kind,
        "params": spec.index.params,
        "seq": seq,
        "created_at": now,
        "parts": [
            {"name": name, "size": int(buf.nbytes), "sha256": hashlib.sha256(buf).hexdigest()}
            for name, buf in parts.items()
        ],
    }
    head = json.dumps(header, sort_keys=True).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack("<Q", len(head)) + head)
        for buf in parts.values():
            f.write(memoryview(buf))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)
    return SnapshotInfo(seq, now)


def read_header(path: Path) -> tuple[dict, int]:
    """(header, offset of the first part). Raises SnapshotError."""
    try:
        with open(path, "rb") as f:
            start = f.read(len(MAGIC) + 8)
            if len(start) < len(MAGIC) + 8 or not start.startswith(MAGIC):
                raise SnapshotError(f"{path}: not a snapshot (bad magic or truncated header)")
            (size,) = struct.unpack("<Q", start[len(MAGIC):])
            raw = f.read(size)
    except FileNotFoundError:
        raise SnapshotError(f"{path}: missing") from None
    if len(raw) != size:
        raise SnapshotError(f"{path}: truncated header")
    try:
        return json.loads(raw), len(MAGIC) + 8 + size
    except ValueError as exc:
        raise SnapshotError(f"{path}: unreadable header ({exc})") from None


def load_snapshot(path: Path, spec: VariantSpec) -> tuple[VariantIndex, SnapshotInfo]:
    header, offset = read_header(path)
    want = {"dim": spec.dim, "kind": spec.index.kind, "params": spec.index.params}
    for key, value in want.items():
        if header.get(key) != value:
            raise SnapshotError(f"{path}: {key} is {header.get(key)!r}, the variant has {value!r}")
    data = np.fromfile(path, dtype=np.uint8, offset=offset)
    expected = sum(p["size"] for p in header["parts"])
    if data.nbytes != expected:
        raise SnapshotError(f"{path}: {data.nbytes} bytes of index data, header says {expected}")
    indexes = {}
    pos = 0
    for part in header["parts"]:
        buf = data[pos : pos + part["size"]]
        pos += part["size"]
        if hashlib.sha256(buf).hexdigest() != part["sha256"]:
            raise SnapshotError(f"{path}: checksum mismatch in part {part['name']!r}")
        try:
            indexes[part["name"]] = faiss.deserialize_index(buf)
        except RuntimeError as exc:
            raise SnapshotError(f"{path}: part {part['name']!r} does not deserialize ({exc})") from None
    if "exact" not in indexes:
        raise SnapshotError(f"{path}: no exact index")
    index = VariantIndex(spec, exact=indexes["exact"], main=indexes.get("main"))
    if "main_built_count" in header:  # older snapshots: counted as built at their size
        index.built_count = int(header["main_built_count"])
    return index, SnapshotInfo(int(header["seq"]), float(header["created_at"]))


def remove_temp_files(root: Path) -> list[Path]:
    """Delete temp files left by a crash during a snapshot write."""
    removed = []
    for tmp in (root / "snapshots").glob(f"*/{TMP_PREFIX}*"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed
