"""Query/document prompts through the real server: what Upsert stores, what Search and
Embed encode, are the model's own encoding with the model folder's prompt prepended."""
from __future__ import annotations

import json
import shutil
import threading

import grpc
import numpy as np
import pytest

from ranksearch.client import Document, RpcFailed
from ranksearch.encoder.st_module import load_sentence_transformer
from ranksearch.proto.v1 import search_pb2 as pb
from ranksearch.service.batcher import MicroBatcher

PROMPTS = {"query": "query: ", "document": "passage: "}
DOCS = [("a", "the nearest document to the query"), ("b", "python library function returns a string"),
        ("c", "farthest vector search in the corpus")]


@pytest.fixture
def prompted_model(tmp_path, tiny_model):
    """The tiny model with E5-style prompts recorded in its folder."""
    folder = tmp_path / "prompted"
    shutil.copytree(tiny_model, folder)
    path = folder / "config_sentence_transformers.json"
    config = json.loads(path.read_text())
    config["prompts"] = dict(PROMPTS)
    path.write_text(json.dumps(config))
    return folder


def prompted(folder, texts, prompt):
    """The reference: sentence-transformers' own encoding of prompt + text."""
    model = load_sentence_transformer(folder)
    return model.encode([prompt + t for t in texts], normalize_embeddings=True)


def test_served_vectors_are_the_prompted_encoding(make_server, tmp_path, prompted_model):
    server = make_server(default_model=str(prompted_model))
    client = server.client()
    client.create_collection("docs")
    client.upsert("docs", [Document(i, t) for i, t in DOCS])
    texts = [t for _, t in DOCS]
    want_docs = prompted(prompted_model, texts, PROMPTS["document"])  # (3, dim)
    want_query = prompted(prompted_model, ["nearest query"], PROMPTS["query"])  # (1, dim)
    unprompted = prompted(prompted_model, texts, "")

    got_docs, _ = client.embed(texts, collection="docs", role="document")
    np.testing.assert_allclose(got_docs, want_docs, atol=1e-5)
    assert np.abs(got_docs - unprompted).max() > 1e-3  # the prompt changes the vectors
    got_query, _ = client.embed(["nearest query"], collection="docs", role="query")
    np.testing.assert_allclose(got_query, want_query, atol=1e-5)
    default, _ = client.embed(["nearest query"], collection="docs")  # unspecified = query
    np.testing.assert_allclose(default, want_query, atol=1e-6)

    # Search scores: the prompted query against the prompted stored documents.
    hits = client.search("nearest query", collection="docs", k=3).hits
    want_scores = (want_docs @ want_query[0]).astype(np.float64)
    by_id = dict(zip([i for i, _ in DOCS], want_scores))
    assert [h.id for h in hits] == sorted(by_id, key=by_id.get, reverse=True)
    for h in hits:
        assert h.score == pytest.approx(by_id[h.id], abs=1e-4)


def test_embed_reports_its_prompt_and_rejects_an_unknown_role(make_server, prompted_model):
    server = make_server(default_model=str(prompted_model))
    client = server.client(retries=0)
    client.create_collection("docs")
    # the raw RPC: the prompt field, and an enum value no client library would send
    response = client._call("Embed", pb.EmbedRequest(texts=["x"], role=pb.EMBED_ROLE_DOCUMENT))
    assert response.prompt == "passage: "
    with pytest.raises(RpcFailed) as info:
        client._call("Embed", pb.EmbedRequest(texts=["x"], role=7))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.field == "role" and info.value.message.startswith("role: ")
    with pytest.raises(ValueError, match="role"):
        client.embed(["x"], role="passage")


def test_model_without_prompts_encodes_both_roles_alike(server):
    client = server.client()
    (q,), _ = client.embed(["same text"], role="query")
    (d,), _ = client.embed(["same text"], role="document")
    np.testing.assert_array_equal(q, d)
    assert client._call("Embed", pb.EmbedRequest(texts=["x"])).prompt == ""


def test_batcher_never_mixes_roles_in_one_forward_pass():
    started, release, calls = threading.Event(), threading.Event(), []

    def encode(texts, role):  # (n, 1)
        calls.append((role, list(texts)))
        if len(calls) == 1:
            started.set()
            release.wait(10)
        return np.zeros((len(texts), 1), np.float32)

    batcher = MicroBatcher(encode, max_wait_ms=0, max_batch_texts=8)
    first = batcher.submit(["a"], role="query")
    started.wait(10)  # the worker is busy: the next jobs queue up behind it
    futures = [batcher.submit(["d1"], role="document"), batcher.submit(["d2"], role="document"),
               batcher.submit(["q2"], role="query")]
    release.set()
    for f in [first, *futures]:
        f.result(10)
    batcher.close()
    assert calls == [("query", ["a"]), ("document", ["d1", "d2"]), ("query", ["q2"])]
