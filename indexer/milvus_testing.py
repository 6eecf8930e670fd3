"""A real `milvus-lite server` process on a free loopback port, for tests and
benchmarks (nothing mocked: the Milvus store talks to it over gRPC as it would to a
Milvus cluster)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _executable() -> str:
    beside = Path(sys.executable).with_name("milvus-lite")
    return str(beside) if beside.exists() else (shutil.which("milvus-lite") or "milvus-lite")


class MilvusLite:
    """``with MilvusLite(data_dir) as m: m.uri`` — started, answering, stopped.
    ``kill()`` (SIGKILL) and ``start()`` again on the same port and data dir
    simulate a Milvus outage."""

    def __init__(self, data_dir: Path, port: int | None = None, log: Path | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.log = log or self.data_dir.with_name(self.data_dir.name + ".log")
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "MilvusLite":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [_executable(), "server", "--host", "127.0.0.1", "--port", str(self.port),
                 "--data-dir", str(self.data_dir)], stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"milvus-lite exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"milvus-lite did not listen on port {self.port} within {timeout} s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> "MilvusLite":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
