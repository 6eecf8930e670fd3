import threading

import numpy as np
import pytest

from ranksearch.encoder.config import EncoderConfig
from ranksearch.encoder.convert import convert_model
from ranksearch.encoder.cost import flops_per_token
from ranksearch.encoder.embedder import load_encoder
from ranksearch.encoder.st_module import load_sentence_transformer, new_sentence_transformer
from ranksearch.errors import InvalidArgument, NotFound


@pytest.fixture(scope="module")
def converted(bert_st_folder, tmp_path_factory):
    return convert_model(bert_st_folder, [2, 8], tmp_path_factory.mktemp("emb") / "m")


def test_encode_is_float32_unit_rows(converted, sentences):
    emb = load_encoder(converted)
    vecs = emb.encode(sentences, batch_size=4, role="document")
    assert vecs.shape == (len(sentences), emb.dim) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert emb.encode([], role="document").shape == (0, emb.dim)
    # batching does not change a text's vector
    np.testing.assert_allclose(emb.encode(sentences[:1], role="document"), vecs[:1], atol=1e-5)


def test_reload_offline_encodes_identically(bert_st_folder, tmp_path, sentences, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    from transformers import BertTokenizerFast
    tok_dir = bert_st_folder.parent / "hf"  # the fixture's tokenizer (conftest.py)
    tokenizer = BertTokenizerFast.from_pretrained(str(tok_dir), local_files_only=True)
    cfg = EncoderConfig.preset("tiny", vocab_size=len(tokenizer), rank=[3, 5], max_len=64)
    model = new_sentence_transformer(cfg, tokenizer, max_seq_length=32)
    before = model.encode(sentences, convert_to_numpy=True, normalize_embeddings=True)
    model.save(str(tmp_path / "saved"))
    emb = load_encoder(tmp_path / "saved", engine="torch")  # the eager path: bit-identical
    np.testing.assert_array_equal(emb.encode(sentences, role="document"), before.astype(np.float32))
    assert emb.model.max_seq_length == 32
    from transformers import AutoTokenizer
    assert AutoTokenizer.from_pretrained(str(tmp_path / "saved"), local_files_only=True)


def test_describe(converted):
    info = load_encoder(converted).describe()
    cfg = load_sentence_transformer(converted)[0].encoder_config
    assert info["rank"] == [2, 8] and info["heads"] == 4 and info["layers"] == 2
    assert info["value_dim"] == 8 and info["d_model"] == 32 and info["dim"] == 32
    assert info["flops_per_token"] == flops_per_token(cfg, info["flops_seq_len"])["total"]
    assert info["size_bytes"] > 4 * info["parameters"] and info["source"] == str(converted.resolve())


def test_describe_plain_bert_folder(bert_st_folder):
    info = load_encoder(bert_st_folder).describe()
    assert info["rank"] == [8, 8] and info["heads"] == 4


def test_concurrent_encodes_agree(converted, sentences):
    emb = load_encoder(converted)
    want = emb.encode(sentences, role="document")
    results = [None] * 4

    def work(i):
        results[i] = emb.encode(sentences, role="document")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, want)


def test_bad_input_names_the_field(converted, tmp_path):
    emb = load_encoder(converted)
    with pytest.raises(InvalidArgument, match=r"^texts\[1\]: must be a string"):
        emb.encode(["ok", 3], role="document")
    with pytest.raises(InvalidArgument, match="^texts: "):
        emb.encode("one string", role="document")
    with pytest.raises(NotFound, match="^model: "):
        load_encoder(tmp_path)


def test_third_party_loading(converted, sentences):
    """Without the class mapping, sentence-transformers 6 refuses the folder (it would
    have to import our class); with trust_remote_code=True it imports the installed one."""
    from sentence_transformers import SentenceTransformer

    with pytest.raises(ValueError, match="trust_remote_code"):
        SentenceTransformer(str(converted), local_files_only=True)
    third = SentenceTransformer(str(converted), trust_remote_code=True, local_files_only=True)
    # the Embedder re-normalises its rows, hence float round-off rather than equality
    np.testing.assert_allclose(third.encode(sentences), load_encoder(converted).encode(sentences, role="document"), atol=1e-6)


def test_token_counts_and_encode_run_concurrently(bert_st_folder, sentences):
    """The service measures texts on gRPC threads while the encoder worker encodes: a
    fast tokenizer is not thread-safe (measuring without padding while a padded batch
    is tokenised broke that batch), so measuring uses its own tokenizer."""
    emb = load_encoder(bert_st_folder)
    assert emb._measure_tokenizer is not emb.model.tokenizer
    want = emb.encode(sentences, role="document")
    counts = emb.token_counts(sentences)
    failures = []

    def measure():
        for _ in range(200):
            if emb.token_counts(sentences) != counts:
                failures.append("counts changed")

    thread = threading.Thread(target=measure)
    thread.start()
    for _ in range(20):
        np.testing.assert_allclose(emb.encode(sentences, role="document"), want, atol=1e-5)
    thread.join()
    assert not failures


@pytest.mark.parametrize("folder, long_text", [("converted", "truncate"), ("bert_st_folder", "truncate"),
                                               ("bert_st_folder", "window")])
def test_forward_passes_of_concurrent_calls_run_at_once(folder, long_text, request, sentences):
    """The service runs one single-threaded pass per core at once (service/batcher.py):
    two calls' forward passes overlap (a barrier inside the model's forward would time
    out if they were serialised), tokenising stays safe, and every row equals the
    same text encoded alone. Windowed documents tokenise between passes, so their
    calls take turns (no barrier there)."""
    emb = load_encoder(request.getfixturevalue(folder), long_text=long_text)
    emb.model.max_seq_length = 16  # the longest sentences are windowed (or truncated)
    alone = {t: emb.encode([t], role="document")[0] for t in sentences}
    barrier = threading.Barrier(2 if long_text == "truncate" else 1, timeout=30)

    def meet(*_):  # both passes must be inside the forward at once to go on
        barrier.wait()

    hook = emb.model[0].register_forward_pre_hook(meet)
    results, errors = {}, []

    def work(texts):
        try:
            results[tuple(texts)] = emb.encode(texts, role="document")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    halves = [sentences[::2], sentences[1::2]]
    threads = [threading.Thread(target=work, args=(h,)) for h in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hook.remove()
    assert not errors
    for texts in halves:
        for text, row in zip(texts, results[tuple(texts)]):
            np.testing.assert_allclose(row, alone[text], atol=1e-5)
