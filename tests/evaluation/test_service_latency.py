"""End-to-end latency through a real gRPC server on a free loopback port."""
import pytest

from ranksearch.evaluation.service_latency import measure_service
from ranksearch.service.testing import LocalServer, build_tiny_model, make_test_config


@pytest.mark.slow  # starts a real server (model load + gRPC): ~10-50 s on shared cores
def test_measure_service_through_a_real_server(tmp_path):
    model = build_tiny_model(tmp_path / "model")
    with LocalServer(make_test_config(tmp_path / "data", model)) as server:
        client = server.client()
        client.create_collection("docs")
        client.upsert("docs", [{"id": "a", "text": "read a file line by line"},
                               {"id": "b", "text": "sort a list of numbers"}])
        got = measure_service(f"{server.address}/docs", ["read a file", "sort numbers"] * 4,
                              ["no_such_variant"])
    default = got["__default__"]
    assert default["n"] == 8 and default["p50_ms"] > 0 and default["collection"] == "docs"
    assert got["no_such_variant"]["error"].startswith("NOT_FOUND")
