"""deploy/alerts.yml checked and unit-tested with promtool (Debian's prometheus
package; `make test-deps` installs it): one planned restart must not alert, a
restart loop must; the metric the rule reads is really exported by the server."""
from __future__ import annotations

import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

RULES = Path(__file__).resolve().parents[2] / "deploy" / "alerts.yml"


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: `sudo apt-get install -y prometheus` (make test-deps)")
    return path


def test_rules_pass_promtool_check():
    proc = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _series(values: list[float]) -> str:
    return " ".join(str(v) for v in values)


def _restart_case(restarts: int, alerts: list[dict]) -> dict:
    """One scrape a minute for 30 minutes; `restarts` restarts spread over them. Each
    restart resets the request counters of three (method, code) series and sets a new
    start time."""
    start, counter = [], []
    t0, count = 1_000_000.0, 0
    for minute in range(31):
        if restarts and minute in {10 * (i + 1) - 5 for i in range(restarts)}:
            t0, count = t0 + minute * 60, 0
        count += 7
        start.append(t0)
        counter.append(count)
    series = [{"series": 'ranksearch_start_time_seconds{instance="a", job="ranksearch"}',
               "values": _series(start)}]
    series += [{"series": f'ranksearch_requests_total{{instance="a", job="ranksearch", method="{m}", code="OK"}}',
                "values": _series(counter)} for m in ("Search", "Upsert", "Get")]
    return {"interval": "1m", "input_series": series,
            "alert_rule_test": [{"eval_time": "30m", "alertname": "RanksearchRestarting", "exp_alerts": alerts}]}


def test_one_restart_does_not_alert_and_a_restart_loop_does(tmp_path):
    firing = [{"exp_labels": {"instance": "a", "job": "ranksearch", "severity": "ticket"},
               "exp_annotations": {"summary": "ranksearch on a restarted more than twice in 30 minutes",
                                   "runbook": "RUNBOOK.md#ranksearchrestarting"}}]
    tests = {"rule_files": [str(RULES)], "evaluation_interval": "1m",
             "tests": [_restart_case(1, []), _restart_case(2, []), _restart_case(3, firing)]}
    spec = tmp_path / "alerts_test.yml"
    spec.write_text(yaml.safe_dump(tests, sort_keys=False))
    proc = subprocess.run([_promtool(), "test", "rules", str(spec)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_server_exports_its_start_time(make_server, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    make_server(metrics={"port": port})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        body = reply.read().decode()
    line = next(x for x in body.splitlines() if x.startswith("ranksearch_start_time_seconds "))
    assert float(line.split()[1]) > 1.7e9
