"""Documents longer than the encoder's max_seq_length (``long_text: window``): what a
real server stores and what ``ranksearch embed`` prints is the pooled encoding of the
document's windows; short texts and queries are encoded as before; unknown modes are
rejected wherever the setting is read."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ranksearch.cli import main
from ranksearch.client import Document
from ranksearch.encoder.embedder import load_encoder
from ranksearch.encoder.long_text import text_windows
from ranksearch.encoder.st_module import load_sentence_transformer
from ranksearch.errors import ConfigError
from ranksearch.evaluation.spec import parse_spec
from ranksearch.service.config import ServiceConfig

PROMPTS = {"query": "query: ", "document": "passage: "}
MAX_TOKENS = 24
LONG = ("the nearest document to the query is found by the vector search in the corpus "
        "and the python library function returns a string for the farthest vector "
        "search while the sqlite database commits the json parse of the query ") * 2
SHORT = "python library function"


@pytest.fixture
def short_window_model(tmp_path, tiny_model):
    """The tiny model with E5-style prompts and a 24-token window, so a sentence is long."""
    folder = tmp_path / "short-window"
    shutil.copytree(tiny_model, folder)
    st = folder / "config_sentence_transformers.json"
    st.write_text(json.dumps({**json.loads(st.read_text()), "prompts": PROMPTS}))
    ranked = folder / "ranked_encoder.json"
    ranked.write_text(json.dumps({**json.loads(ranked.read_text()), "max_seq_length": MAX_TOKENS}))
    return folder


def reference(folder, text: str) -> np.ndarray:
    """Each window encoded by sentence-transformers itself with the document prompt,
    element-wise maximum, renormalised."""
    model = load_sentence_transformer(folder)
    windows = text_windows(model.tokenizer, text, PROMPTS["document"], MAX_TOKENS)
    vectors = model.encode([PROMPTS["document"] + w for w in windows], normalize_embeddings=True)
    top = vectors.max(axis=0)
    return top / np.linalg.norm(top)


def test_windows_fit_cover_the_text_and_overlap(short_window_model):
    tokenizer = load_sentence_transformer(short_window_model).tokenizer
    windows = text_windows(tokenizer, LONG, PROMPTS["document"], MAX_TOKENS)
    assert len(windows) > 3
    for w in windows:  # each window is a piece of the text that fits with prompt and specials
        assert w in LONG
        assert len(tokenizer(PROMPTS["document"] + w)["input_ids"]) <= MAX_TOKENS
    assert LONG.startswith(windows[0]) and LONG.rstrip().endswith(windows[-1])
    at = 0
    for a, b in zip(windows, windows[1:]):  # each window starts inside the one before
        after = LONG.find(b, at + 1)         # and reaches past its end
        assert at < after < at + len(a) < after + len(b)
        at = after
    assert text_windows(tokenizer, SHORT, PROMPTS["document"], MAX_TOKENS) == [SHORT]


def test_served_long_document_is_the_pooled_encoding_of_its_windows(make_server, short_window_model):
    server = make_server(default_model=str(short_window_model), long_text="window")
    client = server.client()
    client.create_collection("docs")
    client.upsert("docs", [Document("long", LONG), Document("short", SHORT)])
    want_long = reference(short_window_model, LONG)
    model = load_sentence_transformer(short_window_model)
    want_short = model.encode([PROMPTS["document"] + SHORT], normalize_embeddings=True)[0]
    truncated = model.encode([PROMPTS["document"] + LONG], normalize_embeddings=True)[0]
    assert np.abs(want_long - truncated).max() > 1e-3  # windowing changes the long vector

    got, _ = client.embed([LONG, SHORT], collection="docs", role="document")
    np.testing.assert_allclose(got[0], want_long, atol=1e-5)
    np.testing.assert_allclose(got[1], want_short, atol=1e-5)  # a short text is unchanged
    # queries are truncated, never windowed
    (query,), _ = client.embed([LONG], collection="docs", role="query")
    np.testing.assert_allclose(query, model.encode([PROMPTS["query"] + LONG],
                                                   normalize_embeddings=True)[0], atol=1e-5)
    # what Upsert stored: search scores are the query against the pooled vectors
    hits = {h.id: h.score for h in client.search(SHORT, collection="docs", k=2).hits}
    q = model.encode([PROMPTS["query"] + SHORT], normalize_embeddings=True)[0]
    assert hits["long"] == pytest.approx(float(q @ want_long), abs=1e-4)
    assert hits["short"] == pytest.approx(float(q @ want_short), abs=1e-4)


def test_truncate_and_window_agree_on_short_texts(short_window_model):
    texts = [SHORT, "sqlite commit", "json parse"]
    truncate = load_encoder(short_window_model).encode(texts, role="document")
    window = load_encoder(short_window_model, long_text="window").encode(texts, role="document")
    np.testing.assert_array_equal(window, truncate)


def test_cli_embed_windows_long_documents(short_window_model, capsys):
    assert main(["embed", "--model", str(short_window_model), "--long-text", "window", LONG]) == 0
    vector = np.array(json.loads(capsys.readouterr().out.splitlines()[0])["vector"])
    np.testing.assert_allclose(vector, reference(short_window_model, LONG), atol=1e-5)
    with pytest.raises(SystemExit):
        main(["embed", "--model", str(short_window_model), "--long-text", "chunk", LONG])


def test_unknown_modes_are_rejected_naming_the_field(short_window_model):
    with pytest.raises(ConfigError) as info:
        ServiceConfig(long_text="chunk")
    assert info.value.field == "long_text"
    with pytest.raises(ConfigError) as info:
        load_encoder(short_window_model, long_text="chunks")
    assert info.value.field == "long_text"
    spec = {"name": "s", "baseline": "m", "long_text": "window",
            "variants": [{"name": "m", "folder": str(short_window_model)}]}
    assert parse_spec(spec).long_text == "window"
    with pytest.raises(ConfigError) as info:
        parse_spec({**spec, "long_text": "all"})
    assert info.value.field == "long_text"
