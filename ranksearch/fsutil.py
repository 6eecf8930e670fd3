"""File helpers shared by the store, snapshots, backups, the bundle and `version`."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def sha256_file(*paths: Path) -> str:
    """Hex sha256 of the files' bytes, read in 1 MiB blocks, in the order given."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory: so a rename inside it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
