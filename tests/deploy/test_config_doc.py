"""deploy/CONFIG.md is generated from the typed config and must not drift from it;
every example config must load."""
from __future__ import annotations

import dataclasses
import importlib.util
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ranksearch.errors import ConfigError
from ranksearch.service.config import ServiceConfig, load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "deploy/configs").glob("*.yaml"))
TOKEN_ENV = {"RANKSEARCH_TOKEN_SEARCH_APP": "s3cret-a", "RANKSEARCH_TOKEN_INGEST_JOB": "s3cret-b",
             "RANKSEARCH_TOKEN_OPS": "s3cret-c"}


def env_for(path: Path) -> dict[str, str]:
    """Token secrets for the example that names tokens (a variable naming no
    configured token is itself an error)."""
    return TOKEN_ENV if path.name == "lan-tls-tokens.yaml" else {}


def load_gen():
    spec = importlib.util.spec_from_file_location("gen_config_doc", REPO / "deploy/gen_config_doc.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_config_doc"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def leaf_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        inner = typing.get_args(tp)[0] if typing.get_origin(tp) is list else None
        if dataclasses.is_dataclass(tp):
            keys += leaf_keys(tp, key)
        else:
            keys.append(key)
            if inner is not None and dataclasses.is_dataclass(inner):
                keys += leaf_keys(inner, key + "[]")
    return keys


def test_config_md_is_up_to_date():
    gen = load_gen()
    assert gen.CONFIG_MD.read_text() == gen.render(), (
        "deploy/CONFIG.md is stale: run `.venv/bin/python deploy/gen_config_doc.py`")
    assert gen.main(["--check"]) == 0


def test_every_key_is_documented_with_a_meaning():
    text = (REPO / "deploy/CONFIG.md").read_text()
    rows = {line.split("|")[1].strip().strip("*`"): line for line in text.splitlines()
            if line.startswith("| `") or line.startswith("| **`")}
    for key in leaf_keys(ServiceConfig):
        assert key in rows, f"{key} missing from CONFIG.md"
        meaning = rows[key].split("|")[4].strip()
        assert meaning, f"{key} has no meaning: give its field metadata={{'doc': ...}}"


def test_a_changed_config_class_makes_the_check_fail(tmp_path, monkeypatch, capsys):
    gen = load_gen()

    @dataclass
    class Extra:
        new_knob: int = field(default=3, metadata={"doc": "a knob added without regenerating"})

    stale = tmp_path / "CONFIG.md"
    stale.write_text(gen.render())
    monkeypatch.setattr(gen, "CONFIG_MD", stale)
    original = gen.render
    monkeypatch.setattr(gen, "render", lambda: original(Extra))
    assert gen.main(["--check"]) == 1
    assert f"{stale} is stale" in capsys.readouterr().err
    assert "| `new_knob` | integer | `3` | a knob added without regenerating | `3` |" in gen.render()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_configs_load_and_pass_the_security_rules(path):
    config = load_config(path, environ=env_for(path))
    warnings = config.check_security()
    if path.name == "container.yaml":  # 0.0.0.0 inside a container, opted out explicitly
        assert config.insecure and config.metrics.allow_remote
        assert [w.split(" ")[0] for w in warnings] == ["metrics", "INSECURE:"]
    else:
        assert warnings == []


def test_required_example_shapes():
    by_name = {p.name: load_config(p, environ=env_for(p)) for p in EXAMPLES}
    single = by_name["single-loopback.yaml"]
    assert single.listen.startswith("127.0.0.1:") and len(single.collections) == 1
    lan = by_name["lan-tls-tokens.yaml"]
    assert not lan.listen.startswith("127.") and lan.tls.enabled and lan.auth.enabled
    assert sorted(r for t in lan.auth.tokens for r in t.roles) == ["admin", "read", "write"]
    (ab,) = by_name["ab-split.yaml"].collections
    assert [(v.name, v.weight) for v in ab.variants] == [("baseline", 0.9), ("rank8", 0.1)]
    (big,) = by_name["hnsw-large.yaml"].collections
    assert big.variants[0].index.kind == "hnsw" and big.variants[0].index.params["M"] == 32


def test_lan_example_without_token_secrets_names_the_missing_variable():
    with pytest.raises(ConfigError) as exc:
        load_config(REPO / "deploy/configs/lan-tls-tokens.yaml", environ={})
    assert exc.value.field == "auth.tokens[0].sha256"
    assert "RANKSEARCH_TOKEN_SEARCH_APP" in exc.value.message
