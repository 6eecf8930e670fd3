"""Tokens and roles, TLS and mutual TLS, and the secure-by-default listener rule."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grpc
import pytest

from ranksearch.client import Document, RpcFailed
from ranksearch.errors import ConfigError
from ranksearch.service.config import hash_token
from ranksearch.service.server import Server
from ranksearch.service.testing import make_test_config

TOKENS = {"reader": ["read"], "writer": ["write"], "boss": ["admin"]}


def _auth():
    return {"tokens": [{"name": n, "sha256": hash_token(f"secret-{n}"), "roles": r}
                       for n, r in TOKENS.items()]}


def test_roles(make_server):
    server = make_server(auth=_auth())
    boss = server.client(token="secret-boss")
    boss.create_collection("docs")
    writer, reader = server.client(token="secret-writer"), server.client(token="secret-reader")
    assert writer.upsert("docs", [Document("a", "read a file line by line")]) == 1
    assert reader.search("read a file line by line").hits[0].id == "a"
    assert writer.search("read a file line by line").hits[0].id == "a"  # write implies read
    with pytest.raises(RpcFailed) as info:
        reader.upsert("docs", [Document("b", "text")])
    assert info.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "token 'reader' lacks the 'write' role needed for Upsert" in info.value.message
    with pytest.raises(RpcFailed) as info:
        writer.create_collection("other")
    assert info.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "'admin' role needed for CreateCollection" in info.value.message
    for admin_only in (writer.verify, writer.rebuild):
        with pytest.raises(RpcFailed) as info:
            admin_only()
        assert info.value.code == grpc.StatusCode.PERMISSION_DENIED and "admin" in info.value.message
    assert boss.verify().ok
    with pytest.raises(RpcFailed) as info:
        server.client().search("x")
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert "missing `authorization: Bearer <token>`" in info.value.message
    with pytest.raises(RpcFailed) as info:
        server.client(token="wrong").search("x")
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert "unknown token" in info.value.message
    assert server.client().health() == "SERVING"  # health needs no token


def test_token_secret_from_environment(monkeypatch):
    from ranksearch.service.config import ServiceConfig, apply_env, from_dict

    monkeypatch.setenv("RANKSEARCH_TOKEN_APP_ONE", "from-env")
    tokens = {"auth": {"tokens": [{"name": "app-one", "roles": ["admin"]}]}}
    cfg = apply_env(from_dict(ServiceConfig, tokens))
    assert cfg.auth.tokens[0].sha256 == hash_token("from-env")
    monkeypatch.setenv("RANKSEARCH_TOKEN_TYPO", "x")
    with pytest.raises(ConfigError) as info:
        apply_env(from_dict(ServiceConfig, tokens))
    assert info.value.field == "env.RANKSEARCH_TOKEN_TYPO"
    assert "names no token in auth.tokens" in info.value.message
    monkeypatch.delenv("RANKSEARCH_TOKEN_TYPO")
    monkeypatch.delenv("RANKSEARCH_TOKEN_APP_ONE")
    with pytest.raises(ConfigError) as info:
        apply_env(from_dict(ServiceConfig, tokens))
    assert info.value.field == "auth.tokens[0].sha256"


def test_non_loopback_needs_tls_and_tokens_or_explicit_insecure(tmp_path, tiny_model):
    with pytest.raises(ConfigError) as info:
        Server(make_test_config(tmp_path, tiny_model, listen="0.0.0.0:0"))
    assert info.value.field == "listen"
    assert "TLS (tls.cert_file) and tokens (auth.tokens) are not configured" in str(info.value)
    server = Server(make_test_config(tmp_path, tiny_model, listen="0.0.0.0:0", insecure=True))
    assert server.warnings and server.warnings[0].startswith("INSECURE: listening on 0.0.0.0:0")


def _openssl(*args: str) -> None:
    if shutil.which("openssl") is None:  # the `cryptography` package is not a dependency
        pytest.skip("needs the openssl command line tool to make test certificates")
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"),
                 "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "1",
                 "-extfile", str(d / "san.ext"), "-out", str(d / f"{name}.pem"))
    return d


def test_tls(make_server, pki):
    server = make_server(tls={"cert_file": str(pki / "server.pem"), "key_file": str(pki / "server.key")})
    client = server.client(root_certificates=pki / "ca.pem")
    client.create_collection("docs")
    assert client.upsert("docs", [Document("a", "over tls")]) == 1
    assert client.health() == "SERVING"
    with pytest.raises(RpcFailed) as info:  # plaintext client against a TLS port
        server.client(retries=0, timeout=3).search("x")
    assert info.value.code == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls(make_server, pki):
    server = make_server(tls={"cert_file": str(pki / "server.pem"), "key_file": str(pki / "server.key"),
                              "client_ca_file": str(pki / "ca.pem")})
    client = server.client(root_certificates=pki / "ca.pem", client_cert=pki / "client.pem",
                           client_key=pki / "client.key")
    client.create_collection("docs")
    assert client.list_collections().collections[0].name == "docs"
    with pytest.raises(RpcFailed) as info:  # no client certificate
        server.client(root_certificates=pki / "ca.pem", retries=0, timeout=3).list_collections()
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
