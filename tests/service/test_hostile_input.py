"""Issue 9 items 1, 3 and 4 through a real server: hostile requests answer a status
a client can act on (never INTERNAL/UNKNOWN), absurd index settings are refused
before anything is stored, and the server keeps serving."""
from __future__ import annotations

import logging
import time

import grpc
import pytest

from ranksearch.client import Document, RpcFailed, Variant
from ranksearch.proto.v1 import search_pb2 as pb
from ranksearch.service.errors import ECHO_MAX, MESSAGE_MAX

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _fails(call) -> RpcFailed:
    with pytest.raises(RpcFailed) as info:
        call()
    return info.value


#: issue 9 item 1: each crashed the server, answered INTERNAL, or stored a
#: collection the next start could not open
ISSUE_INDEX_CONFIGS = [
    ("hnsw", {"M": 1}, "variants[0].index.params.M"),
    ("HNSW0", {}, "variants[0].index.kind (M)"),
    ("hnsw", {"M": 2**31}, "variants[0].index.params.M"),
    ("hnsw", {"M": 2**40}, "variants[0].index.params.M"),
    ("hnsw", {"efSearch": 2**31}, "variants[0].index.params.efSearch"),
    ("NSG32,Flat", {}, "variants[0].index.kind"),
    ("HNSW999999999", {}, "variants[0].index.kind (M)"),
]


def test_unsupported_index_settings_are_refused_and_nothing_is_stored(server):
    client = server.client(retries=0)
    client.upsert("docs", [Document("keep", "read a file line by line")])
    for kind, params, field in ISSUE_INDEX_CONFIGS:
        exc = _fails(lambda: client.create_collection("x", [Variant("v", index_kind=kind, index_params=params)]))
        assert (exc.code, exc.field) == (INVALID, field), f"{kind} {params}: {exc}"
        assert [c.name for c in client.list_collections().collections] == ["docs"]
        exc = _fails(lambda: client.upsert("x", [Document("a", "hi")]))  # the upsert that crashed
        assert exc.code == grpc.StatusCode.NOT_FOUND
    exc = _fails(lambda: client.create_collection("x", [Variant("v", index_params={"M": 8})]))
    assert (exc.code, exc.field) == (INVALID, "variants[0].index.kind")  # params without a kind
    exc = _fails(lambda: client.create_collection("x", [Variant("v", weight=float("nan"))]))
    assert (exc.code, exc.field) == (INVALID, "variants[0].weight")
    assert client.search("read a file line by line").hits[0].id == "keep"


def test_a_supported_approximate_index_serves_through_the_api(server):
    client = server.client(retries=0)
    client.create_collection("h", [Variant("v", index_kind="HNSW16", index_params={"efSearch": 64})])
    client.upsert("h", [Document(str(i), t) for i, t in enumerate(["read a file", "sort a list", "hash"])])
    assert client.search("sort a list", collection="h", k=1).hits[0].id == "1"
    client.delete("h", ["1"])
    assert client.search("sort a list", collection="h", k=1).hits[0].id != "1"


def test_a_model_name_too_long_for_a_file_name_is_invalid_argument(server, tmp_path):
    client = server.client(retries=0)
    exc = _fails(lambda: client.create_collection("m", [Variant("v", model="m" * 300)]))
    assert (exc.code, exc.field) == (INVALID, "variants[0].model")
    assert "File name too long" in exc.message
    for model in (str(tmp_path), "..", "a\x00b"):  # a folder that is no model, a NUL
        exc = _fails(lambda: client.create_collection("m", [Variant("v", model=model)]))
        assert (exc.code, exc.field) == (grpc.StatusCode.NOT_FOUND, "variants[0].model"), exc


@pytest.mark.parametrize("method", ["Check", "Watch"])
def test_the_health_service_answers_undecodable_bytes_with_invalid_argument(server, method):
    channel = grpc.insecure_channel(server.address)
    make = channel.unary_unary if method == "Check" else channel.unary_stream
    call = make(f"/grpc.health.v1.Health/{method}", request_serializer=lambda b: b,
                response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as info:
        answer = call(b"\x0a\xff\xff\xff", timeout=10)
        if method == "Watch":
            next(answer)
    channel.close()
    assert info.value.code() == INVALID, info.value
    assert server.client().health() == "SERVING"


def test_a_huge_echoed_value_is_truncated_in_the_status(server):
    client = server.client(retries=0)
    name = "x" * 100_000
    for call, code, field in [(lambda: client.search("q", collection=name), grpc.StatusCode.NOT_FOUND, "collection"),
                              (lambda: client.create_collection(name), INVALID, "name"),
                              (lambda: client.delete_collection(name), grpc.StatusCode.NOT_FOUND, "name")]:
        exc = _fails(call)
        assert (exc.code, exc.field) == (code, field), exc
        assert "x" * (ECHO_MAX - 1) + "…(+" in exc.message and len(exc.message) < MESSAGE_MAX + 40
    assert client.search("q").hits == []


def test_a_response_larger_than_the_send_limit_is_refused_naming_the_field(make_server):
    """Within every documented request limit, a BatchSearch with include_text can ask
    for more than gRPC may send (here: 2 x 64 KiB + 1 MiB)."""
    s = make_server(limits={"max_message_bytes": 65536, "max_text_chars": 32768, "max_texts_per_request": 16})
    client = s.client(retries=0)
    client.create_collection("docs")
    for i in range(6):
        client.upsert("docs", [Document(f"d{i}", f"{i} " + "word " * 6000)])
    queries = ["word"] * 16
    exc = _fails(lambda: client.batch_search(queries, k=6, include_text=True))
    assert exc.code == INVALID and exc.field == "queries", exc
    assert "ask for fewer results" in exc.message and "include_text=false" in exc.message
    assert len(client.batch_search(queries, k=6)) == 16  # the same without texts fits
    assert len(client.batch_search(queries[:2], k=6, include_text=True)) == 2


def test_a_stalled_upsert_stream_is_not_an_unhandled_error(server, caplog):
    channel = grpc.insecure_channel(server.address)
    stream = channel.stream_unary("/ranksearch.v1.SearchService/UpsertStream",
                                  request_serializer=pb.UpsertRequest.SerializeToString,
                                  response_deserializer=pb.UpsertResponse.FromString)

    def stalls():
        yield pb.UpsertRequest(collection="docs", documents=[pb.Document(id="first", text="read a file")])
        time.sleep(2.5)  # past the deadline: the client gives up mid-stream
        yield pb.UpsertRequest(collection="docs", documents=[pb.Document(id="late", text="sort a list")])

    with caplog.at_level(logging.INFO, logger="ranksearch"):
        with pytest.raises(grpc.RpcError) as info:
            stream(stalls(), timeout=1.0)
        time.sleep(2.0)  # let the server notice
    channel.close()
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], errors
    assert [d.id for d in server.client().get("docs", ["first", "late"])] == ["first"]


def test_a_committed_upsert_is_not_answered_as_an_error(server, monkeypatch):
    """Issue 9 item 4: a FAISS failure after the SQLite commit (NSG32,Flat did this)
    made Upsert answer INTERNAL for a write that had happened. Now it answers OK, the
    collection goes out of service (FAILED_PRECONDITION) when its index cannot be
    repaired, and Rebuild brings it back with the document."""
    from ranksearch.indexer.faiss_index import VariantIndex

    client = server.client(retries=0)
    client.upsert("docs", [Document("a", "read a file line by line")])
    real = VariantIndex.add
    monkeypatch.setattr(VariantIndex, "add", lambda self, ids, vecs: (_ for _ in ()).throw(
        RuntimeError("Error in faiss: simulated")))
    assert client.upsert("docs", [Document("b", "sort a list of numbers")]) == 1
    exc = _fails(lambda: client.search("sort a list"))
    assert exc.code == grpc.StatusCode.FAILED_PRECONDITION and "'docs' is unavailable" in exc.message
    monkeypatch.setattr(VariantIndex, "add", real)
    client.rebuild("docs")
    assert client.search("sort a list of numbers", k=1).hits[0].id == "b"


@pytest.mark.parametrize("section,key", [
    ({"default_index": {"kind": "hnsw", "params": {"M": 1}}}, "default_index.params.M"),
    ({"collections": [{"name": "c", "variants": [{"name": "v", "index": {"kind": "NSG32,Flat"}}]}]},
     "collections[0].variants[0].index.kind"),
    ({"collections": [{"name": "c", "variants": [{"name": "v", "index": {"kind": "hnsw",
                                                                           "params": {"efSearch": 2**31}}}]}]},
     "collections[0].variants[0].index.params.efSearch"),
])
def test_config_check_applies_the_same_index_rule(tmp_path, capsys, section, key):
    """Issue 9 item 1 for the config file: `config check` (and the start, which
    loads the config the same way) rejects what CreateCollection rejects."""
    import yaml

    from ranksearch.cli import main

    path = tmp_path / "server.yaml"
    path.write_text(yaml.safe_dump(section))
    assert main(["config", "check", str(path)]) != 0
    assert key in capsys.readouterr().err
