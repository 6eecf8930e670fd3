"""Same fixtures as tests/service: a tiny real encoder and real servers."""
from __future__ import annotations

from pathlib import Path

import pytest

from ranksearch.service.testing import LocalServer, build_tiny_model, make_test_config


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def make_server(tmp_path, tiny_model):
    started = []

    def make(wait: bool = True, server_kwargs=None, **overrides):
        config = make_test_config(tmp_path / "data", tiny_model, **overrides)
        server = LocalServer(config, wait=wait, **(server_kwargs or {})).__enter__()
        started.append(server)
        return server

    yield make
    for server in reversed(started):
        server.__exit__(None, None, None)
