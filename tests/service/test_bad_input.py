"""Every malformed request answers INVALID_ARGUMENT / NOT_FOUND naming the field,
never UNKNOWN or INTERNAL, and the server keeps serving."""
from __future__ import annotations

import grpc
import pytest

from ranksearch.client import Document, Hybrid, RpcFailed
from ranksearch.proto.v1 import search_pb2 as pb
from ranksearch.service.errors import field_violations

INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND

CASES = [
    # (name, call(client), code, field, words in the message)
    ("empty query", lambda c: c.search(""), INVALID, "query", "is empty"),
    ("k negative", lambda c: c.search("x", k=-1), INVALID, "k", "at least 1"),
    ("k too large", lambda c: c.search("x", k=51), INVALID, "k", "limits.max_k"),
    ("offset negative", lambda c: c.search("x", offset=-1), INVALID, "offset", "at least 0"),
    ("farthest with a lexical part", lambda c: c.search("x", farthest=True, hybrid=Hybrid(rrf_k=5)),
     INVALID, "hybrid", "not to mode farthest"),
    ("rrf k zero", lambda c: c.search("x", mode="hybrid", hybrid=Hybrid(rrf_k=0)), INVALID, "hybrid.rrf_k", "> 0"),
    ("both weights zero", lambda c: c.search("x", mode="hybrid", hybrid=Hybrid(dense_weight=0, lexical_weight=0)),
     INVALID, "hybrid.dense_weight", "both 0"),
    ("too many candidates", lambda c: c.batch_search(["x"], mode="hybrid", hybrid=Hybrid(lexical_candidates=10**6)),
     INVALID, "hybrid.lexical_candidates", "limits.max_k + limits.max_offset"),
    ("default mode farthest", lambda c: c.create_collection("f", default_mode="farthest"),
     INVALID, "default_mode", "nearest, lexical, hybrid"),
    ("unknown analyzer", lambda c: c.create_collection("f", analyzer="fr"), INVALID, "lexical.analyzer", "standard"),
    ("unknown collection", lambda c: c.search("x", collection="nope"), NOT_FOUND, "collection", "'nope'"),
    ("unknown variant", lambda c: c.search("x", variant="nope"), NOT_FOUND, "variant", "'nope'"),
    ("filter empty key", lambda c: c.search("x", filter={"": "v"}), INVALID, "filter", "non-empty"),
    ("empty id", lambda c: c.upsert("docs", [Document("", "t")]), INVALID, "documents[0].id", "is empty"),
    ("long id", lambda c: c.upsert("docs", [Document("a", "t"), Document("x" * 65, "t")]),
     INVALID, "documents[1].id", "limits.max_id_bytes"),
    ("duplicate id", lambda c: c.upsert("docs", [Document("a", "t"), Document("a", "u")]),
     INVALID, "documents[1].id", "duplicates documents[0].id"),
    ("empty text", lambda c: c.upsert("docs", [Document("a", "")]), INVALID, "documents[0].text", "is empty"),
    ("long text", lambda c: c.upsert("docs", [Document("a", "y" * 201)]),
     INVALID, "documents[0].text", "limits.max_text_chars"),
    ("too many documents", lambda c: c.upsert("docs", [Document(str(i), "t") for i in range(9)]),
     INVALID, "documents", "limits.max_texts_per_request"),
    ("no documents", lambda c: c.upsert("docs", []), INVALID, "documents", "is empty"),
    ("get empty id", lambda c: c.get("docs", ["a", ""]), INVALID, "ids[1]", "is empty"),
    ("delete no ids", lambda c: c.delete("docs", []), INVALID, "ids", "is empty"),
    ("embed empty text", lambda c: c.embed(["a", ""]), INVALID, "texts[1]", "is empty"),
    ("batch empty query", lambda c: c.batch_search(["a", ""]), INVALID, "queries[1]", "is empty"),
    ("bad collection name", lambda c: c.create_collection("a b"), INVALID, "name", "not a valid"),
    ("unknown model", lambda c: c.create_collection("m", [__import__("ranksearch.client").client.Variant(
        "v", model="no-such-model")]), NOT_FOUND, "variants[0].model", "does not exist"),
    ("built-in model not built yet", lambda c: c.create_collection("m", [__import__("ranksearch.client").client.Variant(
        "v", model="multilingual")]), NOT_FOUND, "variants[0].model", "make run MODEL=multilingual"),
    ("unknown default variant", lambda c: c.create_collection("m", default_variant="zzz"),
     NOT_FOUND, "default_variant", "'zzz'"),
    ("delete unknown collection", lambda c: c.delete_collection("nope"), NOT_FOUND, "name", "'nope'"),
]


@pytest.fixture
def small_limits_server(make_server):
    s = make_server(limits={"max_k": 50, "max_id_bytes": 64, "max_text_chars": 200,
                            "max_texts_per_request": 8, "max_message_bytes": 4096})
    s.client().create_collection("docs")
    s.client().upsert("docs", [Document("ok", "read a file line by line")])
    return s


def test_bad_inputs_name_the_field(small_limits_server):
    client = small_limits_server.client(retries=0)
    failures = []
    for name, call, code, field, words in CASES:
        with pytest.raises(RpcFailed) as info:
            call(client)
        exc = info.value
        if (exc.code, exc.field) != (code, field) or words not in exc.message \
                or not exc.message.startswith(field):
            failures.append(f"{name}: got {exc.code.name} field={exc.field!r} {exc.message!r}")
    assert not failures, "\n".join(failures)
    assert client.search("read a file line by line").hits[0].id == "ok"  # still serving


def _raw(server, method: str, payload: bytes, response_cls):
    channel = grpc.insecure_channel(server.address)
    call = channel.unary_unary(f"/ranksearch.v1.SearchService/{method}",
                               request_serializer=lambda b: b,
                               response_deserializer=response_cls.FromString)
    try:
        with pytest.raises(grpc.RpcError) as info:
            call(payload, timeout=10)
        return info.value
    finally:
        channel.close()


@pytest.mark.parametrize("method,request_msg,response_cls,field", [
    ("Search", pb.SearchRequest(collection="docs", query="QQ"), pb.SearchResponse, "query"),
    ("Upsert", pb.UpsertRequest(collection="docs", documents=[
        pb.Document(id="a", text="fine"), pb.Document(id="b", text="QQ")]), pb.UpsertResponse,
     "documents[1].text"),
    ("Search", pb.SearchRequest(collection="docs", query="x", filter={"QQ": "v"}), pb.SearchResponse,
     "filter.key"),
])
def test_invalid_utf8_is_invalid_argument_naming_the_field(small_limits_server, method, request_msg,
                                                           response_cls, field):
    payload = request_msg.SerializeToString().replace(b"QQ", b"\xff\xfe")
    error = _raw(small_limits_server, method, payload, response_cls)
    assert error.code() == INVALID
    assert error.details().startswith(f"{field}: is not valid UTF-8")
    assert field_violations(error)[0][0] == field
    assert small_limits_server.client().search("read a file line by line").hits[0].id == "ok"


def test_oversized_message_is_invalid_argument(small_limits_server):
    payload = pb.SearchRequest(collection="docs", query="z" * 5000).SerializeToString()
    error = _raw(small_limits_server, "Search", payload, pb.SearchResponse)
    assert error.code() == INVALID
    assert "limits.max_message_bytes (4096)" in error.details()
    assert field_violations(error) == [("request", error.details().split(": ", 1)[1])]


def test_unknown_mode_is_invalid_argument(small_limits_server):
    payload = pb.SearchRequest(collection="docs", query="x", mode=7).SerializeToString()
    error = _raw(small_limits_server, "Search", payload, pb.SearchResponse)
    assert error.code() == INVALID
    assert error.details().startswith("mode: unknown mode 7")


def test_garbage_bytes_are_invalid_argument(small_limits_server):
    error = _raw(small_limits_server, "Search", b"\x0a\xff\xff\xff", pb.SearchResponse)
    assert error.code() == INVALID
    assert error.details().startswith("request: cannot be parsed as ranksearch.v1.SearchRequest")
