"""Fuzz every RPC of a real server with malformed and hostile requests (issue 9).

A seeded generator builds requests for all thirteen RPCs: huge, empty, unicode, NUL
and path-like strings; absurd numbers (int32/int64 extremes, NaN, infinities);
absurd index configurations, which, when a create succeeds, are then used by
upserts, searches, deletes and rebuilds; and raw bytes that are no valid message,
sent through a generic channel call. Every answer must be OK or a status a client
can act on: never INTERNAL, UNKNOWN or UNAVAILABLE (the server died). Afterwards
the server still serves, documents written before the fuzzing are intact, and a new
server on the same data dir starts and finds them.

The default run sends a few hundred requests; ``-m slow`` runs more seeds.
"""
from __future__ import annotations

import math
import random

import grpc
import pytest

from ranksearch.client import Document
from ranksearch.proto.v1 import search_pb2 as pb
from ranksearch.proto.v1 import search_pb2_grpc

BAD = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE}
ANCHORS = [Document(f"anchor-{i}", text, {"n": str(i)}) for i, text in enumerate([
    "read a file line by line", "sort a list of numbers", "compute a sha256 hash",
    "日本語の文書を検索する", "the quick brown fox jumps over the lazy dog"])]
#: the fuzzer may read the anchors' collection but never writes to it
PROTECTED = "anchors"
INT32 = (-(2**31), -1, 0, 1, 2, 7, 1000, 1001, 10_000, 2**31 - 1)
INT64 = INT32 + (2**31, 2**40, 2**63 - 1, -(2**63))
FLOATS = (0.0, -0.0, 0.5, -1.0, 1e308, -1e308, math.inf, -math.inf, math.nan)
KINDS = ("flat", "hnsw", "ivf", "HNSW0", "HNSW1", "HNSW16", "HNSW999999999", "NSG32,Flat", "IVF0,Flat",
         "IVF4,SQ8", "IVF65537,Flat", "IVF4,PQ8", "PQ8", "LSH", "IDMap,Flat", "Flat", "HNSW32,SQ8",
         "OPQ4,IVF4,PQ4", "", " ", "hnsw\x00", "ＨＮＳＷ", "IVF4,Flat" * 50)
KNOBS = ("M", "efConstruction", "efSearch", "nlist", "nprobe", "train_min", "exact", "", "ef", "M\x00")


class Fuzzer:
    def __init__(self, rng: random.Random, collections: list[str]):
        self.rng = rng
        self.collections = collections  # created so far (written to by the fuzzer)

    def text(self) -> str:
        r = self.rng
        choice = r.randrange(12)
        if choice == 0:
            return ""
        if choice == 1:
            return "x" * r.choice((65, 257, 40_000, 100_000))
        if choice == 2:
            return "\x00" * r.randrange(1, 5) + "nul"
        if choice == 3:
            return r.choice(("../../etc/passwd", "..", ".", "-rf", "a/b", "a b", "\n", "\t", "%s%n"))
        if choice == 4:
            return "".join(r.choice("日本語テキスト🙂é\u0301\u202eß") for _ in range(r.randrange(1, 300)))
        if choice == 5:
            return "".join(chr(r.randrange(32, 0xD7FF)) for _ in range(r.randrange(1, 80)))
        if choice == 6:
            return r.choice(("read a file", "sort a list", "hash", "fox"))
        return "".join(r.choice("abcdefghij0123456789_.-") for _ in range(r.randrange(1, 12)))

    def collection(self, write: bool = False) -> str:
        r = self.rng
        pool = list(self.collections) + ([] if write else [PROTECTED])
        if pool and r.random() < 0.75:
            return r.choice(pool)
        name = self.text()
        return "fz-other" if write and name == PROTECTED else name

    def index(self) -> pb.IndexConfig:
        r = self.rng
        params = {r.choice(KNOBS): r.choice(INT64) if r.random() < 0.6 else r.randrange(1, 300)
                  for _ in range(r.randrange(0, 4))}
        return pb.IndexConfig(kind=r.choice(KINDS), params=params)

    def doc(self) -> pb.Document:
        r = self.rng
        metadata = {self.text()[:300]: self.text()[:300] for _ in range(r.randrange(0, 3))}
        return pb.Document(id=self.text(), text=self.text(), metadata=metadata)

    def search_fields(self) -> dict:
        r = self.rng
        fields = dict(collection=self.collection(), k=r.choice(INT32), mode=r.choice((0, 1, 2, -1, 99)),
                      variant=r.choice(("", "", "v", self.text())), include_text=r.random() < 0.5,
                      offset=r.choice(INT32), routing_key=self.text(),
                      filter={self.text()[:100]: self.text()[:100] for _ in range(r.randrange(0, 3))})
        if r.random() < 0.3:
            fields["min_score"] = r.choice(FLOATS)
        if r.random() < 0.5:  # mostly sane numbers, so the request reaches the index
            fields.update(k=r.randrange(1, 20), offset=r.randrange(0, 3), mode=r.choice((0, 1)))
        return fields

    # -- one request per RPC --------------------------------------------------------------
    def edge_index(self) -> pb.IndexConfig:
        """A supported configuration at the edges of its ranges (tiny IVF trained on a
        handful of vectors, HNSW with M 2 or efSearch 4096, ...)."""
        r = self.rng
        kind = r.choice(("flat", "hnsw", "ivf", "HNSW2", "IVF1,SQ8", "IVF2,Flat", "IVF3,SQfp16"))
        options = {"hnsw": {"M": (2, 3, 128), "efConstruction": (1, 4096), "efSearch": (1, 4096)},
                   "ivf": {"nlist": (1, 2), "nprobe": (1, 65536), "train_min": (2, 3, 5)},
                   "HNSW2": {"efSearch": (1, 4096)}}.get(kind, {"nprobe": (1, 65536), "train_min": (3, 4)})
        if kind == "flat":
            options = {}
        return pb.IndexConfig(kind=kind, params={k: r.choice(v) for k, v in options.items() if r.random() < 0.7})

    def CreateCollection(self):
        r = self.rng
        name = f"fz{r.randrange(10_000)}" if r.random() < 0.7 else self.text()
        if r.random() < 0.4:
            return pb.CreateCollectionRequest(name=name if name != PROTECTED else "fz-x", variants=[
                pb.VariantConfig(name=f"v{j}", index=self.edge_index()) for j in range(r.randrange(1, 3))])
        variants = [pb.VariantConfig(name=r.choice(("v", "w", self.text())), model=r.choice(("", "", "default",
                    self.text(), "m" * 300, "/nonexistent", "../models/default")), index=self.index(),
                    weight=r.choice(FLOATS)) for _ in range(r.randrange(0, 3))]
        return pb.CreateCollectionRequest(name=name if name != PROTECTED else "fz-x", variants=variants,
                                          default_variant=r.choice(("", "v", self.text())))

    def ListCollections(self):
        return pb.ListCollectionsRequest()

    def DeleteCollection(self):
        return pb.DeleteCollectionRequest(name=self.collection(write=True))

    def Upsert(self):
        return pb.UpsertRequest(collection=self.collection(write=True),
                                documents=[self.doc() for _ in range(self.rng.randrange(0, 5))])

    def UpsertStream(self):
        return iter([self.Upsert() for _ in range(self.rng.randrange(0, 3))])

    def Delete(self):
        return pb.DeleteRequest(collection=self.collection(write=True),
                                ids=[self.text() for _ in range(self.rng.randrange(0, 4))])

    def Get(self):
        return pb.GetRequest(collection=self.collection(), ids=[self.text() for _ in range(self.rng.randrange(0, 4))])

    def Search(self):
        return pb.SearchRequest(query=self.text(), **self.search_fields())

    def BatchSearch(self):
        return pb.BatchSearchRequest(queries=[self.text() for _ in range(self.rng.randrange(0, 4))],
                                     **self.search_fields())

    def Embed(self):
        return pb.EmbedRequest(collection=self.collection(), variant=self.rng.choice(("", "v", self.text())),
                               texts=[self.text() for _ in range(self.rng.randrange(0, 4))])

    def Stats(self):
        return pb.StatsRequest(collection=self.rng.choice(("", self.collection())))

    def Verify(self):
        return pb.VerifyRequest()

    def Rebuild(self):
        return pb.RebuildRequest(collection=self.rng.choice(("", self.collection())))

    # -- live experiments ------------------------------------------------------------------
    def variant_name(self) -> str:
        return self.rng.choice(("v", "v0", "v1", "w", "cand", "", self.text()))

    def AddVariant(self):
        r = self.rng
        return pb.AddVariantRequest(collection=self.collection(write=True), variant=pb.VariantConfig(
            name=self.variant_name(), model=r.choice(("", "default", self.text(), "/nonexistent")),
            index=self.edge_index() if r.random() < 0.5 else self.index()))

    def RemoveVariant(self):
        return pb.RemoveVariantRequest(collection=self.collection(write=True), variant=self.variant_name())

    def SetTraffic(self):
        r = self.rng
        return pb.SetTrafficRequest(collection=self.collection(write=True),
                                    weights={self.variant_name(): r.choice(FLOATS) for _ in range(r.randrange(0, 3))})

    def SetShadow(self):
        return pb.SetShadowRequest(collection=self.collection(write=True), variant=self.variant_name(),
                                   fraction=self.rng.choice(FLOATS))

    def SetInterleave(self):
        return pb.SetInterleaveRequest(collection=self.collection(write=True), variant_a=self.variant_name(),
                                       variant_b=self.variant_name(), fraction=self.rng.choice(FLOATS))

    def PromoteVariant(self):
        return pb.PromoteVariantRequest(collection=self.collection(write=True), variant=self.variant_name())

    def Feedback(self):
        r = self.rng
        return pb.FeedbackRequest(query_id=r.choice(("", "0" * 32, self.text())),
                                  clicked_ids=[self.text() for _ in range(r.randrange(0, 3))],
                                  dwell_ms=[r.choice(FLOATS) for _ in range(r.randrange(0, 3))])

    def ExperimentReport(self):
        return pb.ExperimentReportRequest(collection=self.collection(), since=self.rng.choice(FLOATS))


METHODS = [m.name for m in pb.DESCRIPTOR.services_by_name["SearchService"].methods]
WEIGHTS = {"CreateCollection": 4, "Upsert": 4, "Search": 4, "BatchSearch": 2, "Rebuild": 0.5, "Verify": 0.5}


def raw_bytes(rng: random.Random) -> bytes:
    choice = rng.randrange(4)
    if choice == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    if choice == 1:
        return b"\x0a\xff\xff\xff\xff\x0f"  # a length that runs past the end
    if choice == 2:
        return b"\x0a\x04\xff\xfe\xfd\xfc"  # field 1 (a string everywhere) with invalid UTF-8
    return b"\x12" + bytes([rng.randrange(128)]) + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))


def fuzz(address: str, seed: int, requests: int) -> tuple[list[str], dict[str, int]]:
    """Send `requests` hostile requests; returns (failures, count of answers per code)."""
    rng = random.Random(seed)
    collections: list[str] = []
    fuzzer = Fuzzer(rng, collections)
    channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20),
                                                      ("grpc.max_send_message_length", 64 << 20)])
    stub = search_pb2_grpc.SearchServiceStub(channel)
    failures: list[str] = []
    codes: dict[str, int] = {}
    weights = [WEIGHTS.get(m, 1) for m in METHODS]
    for i in range(requests):
        method = rng.choices(METHODS, weights)[0]
        raw = rng.random() < 0.1
        request = None
        try:
            if raw:
                path = f"/ranksearch.v1.SearchService/{method}"
                payload = raw_bytes(rng)
                if method == "UpsertStream":
                    call = channel.stream_unary(path, request_serializer=lambda b: b, response_deserializer=bytes)
                    call(iter([payload]), timeout=30)
                else:
                    call = channel.unary_unary(path, request_serializer=lambda b: b, response_deserializer=bytes)
                    call(payload, timeout=30)
            else:
                request = getattr(fuzzer, method)()
                response = getattr(stub, method)(request, timeout=60)
                if method == "CreateCollection":
                    collections.append(response.collection.name)
                elif method == "DeleteCollection" and request.name in collections:
                    collections.remove(request.name)
            code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            code = exc.code()
            if code in BAD:
                shown = "raw bytes" if raw else str(request)[:300]
                failures.append(f"#{i} {method} ({shown}) -> {code.name}: {(exc.details() or '')[:300]}")
        codes[code.name] = codes.get(code.name, 0) + 1
    channel.close()
    return failures, codes


def check_anchors(client) -> None:
    found = client.get(PROTECTED, [d.id for d in ANCHORS])
    assert [(d.id, d.text, d.metadata) for d in found] == [(d.id, d.text, d.metadata) for d in ANCHORS]
    for doc in ANCHORS:
        assert client.search(doc.text, collection=PROTECTED, k=1).hits[0].id == doc.id


def run_and_restart(make_server, tmp_path, seeds: range, requests: int) -> None:
    data = tmp_path / "data"
    server = make_server(data_dir=data)
    client = server.client(retries=0)
    client.create_collection(PROTECTED, [])
    client.upsert(PROTECTED, ANCHORS)
    for seed in seeds:
        failures, codes = fuzz(server.address, seed, requests)
        assert not failures, f"seed {seed}: {len(failures)} bad answers ({codes}):\n" + "\n".join(failures[:20])
        assert codes.get("OK", 0) > requests // 20, codes  # the fuzzer also reached the index
        assert client.health() == "SERVING"
        check_anchors(client)
    names = sorted(c.name for c in client.list_collections().collections)
    assert client.verify().ok, client.verify().problems
    server.__exit__(None, None, None)

    again = make_server(data_dir=data)  # the data dir restarts
    client = again.client(retries=0)
    assert sorted(c.name for c in client.list_collections().collections) == names
    assert all(not c.unavailable_reason for c in client.list_collections().collections)
    check_anchors(client)
    assert client.verify().ok


def test_fuzz_every_rpc(make_server, tmp_path):
    run_and_restart(make_server, tmp_path, range(1), 300)


@pytest.mark.slow
def test_fuzz_every_rpc_more_seeds(make_server, tmp_path):
    run_and_restart(make_server, tmp_path, range(1, 6), 1000)
