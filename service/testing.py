"""Helpers for tests and benchmarks: a tiny real encoder folder and a real server on
a free loopback port. Nothing here is mocked: SQLite, FAISS, gRPC and the encoder
are the production ones; only the model is small and untrained.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ranksearch.service.config import ServiceConfig, from_dict

TINY_SENTENCES = [
    "read a file line by line", "open a text file for writing", "parse command line arguments",
    "sort a list of numbers", "join paths on the file system", "compute a sha256 hash",
    "start a thread and wait for it", "serialise an object to json", "match a regular expression",
    "format a date and time", "copy a directory tree", "send an http request",
    "compress data with gzip", "generate a random number", "measure elapsed time",
    "the quick brown fox jumps over the lazy dog", "unicode characters like é ü ß 日本",
]


def build_tiny_model(dest: Path, seed: int = 0) -> Path:
    """An untrained 2-layer ranked encoder (d_model 32) with a small tokenizer."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    from ranksearch.encoder.config import EncoderConfig
    from ranksearch.encoder.st_module import new_sentence_transformer
    from ranksearch.encoder.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(TINY_SENTENCES * 2, vocab_size=300, min_frequency=1,
                                model_max_length=128)
    config = EncoderConfig.preset("tiny", vocab_size=len(tokenizer))
    torch.manual_seed(seed)
    model = new_sentence_transformer(config, tokenizer, max_seq_length=128)
    model.save(str(dest))
    return dest


def make_test_config(data_dir: Path, model_dir: Path, **overrides: Any) -> ServiceConfig:
    """Config for a test server: free loopback port, no metrics endpoint, no bootstrap,
    the tiny model as the default model (copied into data_dir/models/default)."""
    target = data_dir / "models" / "default"
    if not target.exists():
        shutil.copytree(model_dir, target)
    data: dict[str, Any] = {
        "listen": "127.0.0.1:0", "data_dir": str(data_dir), "threads": 8,
        "default_collection": "docs",
        "metrics": {"port": None}, "bootstrap": {"enabled": False},
        "logging": {"level": "WARNING"}, "indexer": {"snapshot_interval_s": 0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return from_dict(ServiceConfig, data)


class LocalServer:
    """``with LocalServer(config) as s: s.client()...`` — started, ready, stopped."""

    def __init__(self, config: ServiceConfig, wait: bool = True, **server_kwargs: Any):
        from ranksearch.service.server import Server

        self.config = config
        self.server = Server(config, **server_kwargs)
        self.wait = wait
        self._clients: list = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def __enter__(self) -> "LocalServer":
        self.server.start()
        if self.wait and not self.server.wait_ready(timeout=300):
            raise RuntimeError("test server not ready after 300 s")
        return self

    def client(self, **kwargs: Any):
        from ranksearch.client import SearchClient

        kwargs.setdefault("timeout", 30.0)
        client = SearchClient(self.address, **kwargs)
        self._clients.append(client)
        return client

    def __exit__(self, *exc) -> None:
        for client in self._clients:
            client.close()
        self.server.stop(grace=1.0)


class ServeProcess:
    """A `ranksearch serve` process (its own Python, its own encoder) on a free
    loopback port; ``kill()`` sends SIGKILL. For multi-replica tests and benchmarks:
    give several the same ``store`` section and they are replicas of one service."""

    def __init__(self, data_dir: Path, model_dir: Path, log: Path, **config: Any):
        import yaml

        from ranksearch.indexer.milvus_testing import free_port

        self.data_dir = Path(data_dir)
        target = self.data_dir / "models" / "default"
        if not target.exists():
            shutil.copytree(model_dir, target)
        self.port = free_port()
        settings: dict[str, Any] = {
            "listen": f"127.0.0.1:{self.port}", "data_dir": str(self.data_dir), "threads": 8,
            "default_collection": "docs", "metrics": {"port": None},
            "bootstrap": {"enabled": False}, "logging": {"level": "WARNING"},
            "shutdown_grace_s": 2.0, **config}
        self.config_path = self.data_dir / "serve.yaml"
        self.config_path.write_text(yaml.safe_dump(settings))
        self.log = Path(log)
        self.proc = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 300.0) -> "ServeProcess":
        import subprocess
        import sys

        from ranksearch.client import SearchClient

        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "ranksearch.cli", "serve", "--config",
                                          str(self.config_path)], stdout=log, stderr=log, env=env)
        with SearchClient(self.address, timeout=10) as client:
            client.wait_until_serving(timeout=timeout)
        return self

    def client(self, **kwargs: Any):
        from ranksearch.client import SearchClient

        kwargs.setdefault("timeout", 30.0)
        return SearchClient(self.address, **kwargs)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except Exception:
                self.kill()
        return None if self.proc is None else self.proc.returncode
