"""The model cache under concurrent runs: two `ranksearch eval` runs that need the same
converted model must not build it into each other's folder (before the build lock,
the second run crashed with "Directory not empty" or deleted the first run's build)."""
from __future__ import annotations

import json
import threading

from ranksearch.evaluation import build
from ranksearch.evaluation.spec import parse_spec


def _variant():
    spec = parse_spec({"baseline": "r4", "variants": [
        {"name": "r", "convert": {"source": "default", "rank": [4]}}]})
    return spec.variants[0]


def test_a_run_waiting_for_a_build_uses_the_finished_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("RANKSEARCH_CACHE", str(tmp_path / "cache"))
    variant = _variant()
    folder = build.models_cache() / variant.model_key(0)
    result = {}
    with build._build_lock(folder):  # another run is building this model
        t = threading.Thread(target=lambda: result.update(out=build.build_model(variant, 0, tmp_path)))
        t.start()
        folder.mkdir(parents=True)  # ...and finishes it before releasing the lock
        (folder / "spec.json").write_text(json.dumps({"built_by": "the other run"}))
    t.join(timeout=600)
    assert result["out"] == (folder, False)  # found, not rebuilt over the other run's folder
    assert json.loads((folder / "spec.json").read_text()) == {"built_by": "the other run"}


def test_concurrent_builds_of_one_model_both_succeed(tmp_path, monkeypatch):
    monkeypatch.setenv("RANKSEARCH_CACHE", str(tmp_path / "cache"))
    variant = _variant()
    results, errors = [], []

    def run():
        try:
            results.append(build.build_model(variant, 0, tmp_path))
        except Exception as e:  # noqa: BLE001 - the failure is what the test reports
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors
    assert sorted(built for _, built in results) == [False, True]  # built once
    assert len({folder for folder, _ in results}) == 1
    assert (results[0][0] / "spec.json").is_file()
