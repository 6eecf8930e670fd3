"""deploy/scale-out: compose file, Envoy config and the replicas' config agree with
each other and with the service's typed config. Docker and Envoy do not run here:
this checks structure (YAML), names, ports and that the ranksearch config loads."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import yaml

from ranksearch.service.config import load_config, parse_listen

FOLDER = Path(__file__).resolve().parents[2] / "deploy" / "scale-out"


def _env(name: str) -> dict[str, str]:
    lines = (FOLDER / name).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_replicas_config_loads_and_points_at_the_compose_milvus():
    compose = yaml.safe_load((FOLDER / "compose.yaml").read_text())
    config = load_config(FOLDER / "ranksearch.yaml", environ=_env("ranksearch.env.example"))
    assert config.store.kind == "milvus" and config.auth.enabled
    uri = urlparse(config.store.uri)
    assert uri.hostname in compose["services"] and uri.port == 19530
    assert config.store.token_env in _env("ranksearch.env.example")
    assert compose["services"]["milvus"]["command"] == ["milvus", "run", "standalone"]


def test_envoy_balances_grpc_over_exactly_the_compose_replicas():
    compose = yaml.safe_load((FOLDER / "compose.yaml").read_text())
    envoy = yaml.safe_load((FOLDER / "envoy.yaml").read_text())
    replicas = {name for name, svc in compose["services"].items()
                if svc.get("image", "").startswith("ranksearch:")}
    assert replicas == {"ranksearch-a", "ranksearch-b"}
    for name in replicas:
        svc = compose["services"][name]
        assert "./ranksearch.yaml:/etc/ranksearch/ranksearch.yaml:ro" in svc["volumes"]
        assert svc["depends_on"]["milvus"]["condition"] == "service_healthy"
    (cluster,) = envoy["static_resources"]["clusters"]
    endpoints = {(e["endpoint"]["address"]["socket_address"]["address"],
                  e["endpoint"]["address"]["socket_address"]["port_value"])
                 for group in cluster["load_assignment"]["endpoints"] for e in group["lb_endpoints"]}
    port = parse_listen(load_config(FOLDER / "ranksearch.yaml", environ=_env("ranksearch.env.example")).listen)[1]
    assert endpoints == {(name, port) for name in replicas}
    options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in options["explicit_http_config"]  # gRPC needs HTTP/2 upstream
    assert cluster["health_checks"][0]["grpc_health_check"] == {"service_name": ""}
    (listener,) = envoy["static_resources"]["listeners"]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    routes = [r for vh in hcm["route_config"]["virtual_hosts"] for r in vh["routes"]]
    assert {r["route"]["cluster"] for r in routes} == {cluster["name"]}
    assert "unavailable" in routes[0]["route"]["retry_policy"]["retry_on"]
    published = compose["services"]["envoy"]["ports"]
    assert published == [f"127.0.0.1:{listener['address']['socket_address']['port_value']}:50051"]
    assert all("ports" not in compose["services"][name] for name in replicas)  # only via Envoy
