"""Precision (fp32 / bf16 / int8), its start-up detection, and the ONNX Runtime path."""
import copy
import logging

import numpy as np
import onnx
import pytest
import torch

from ranksearch.encoder import int8, packed
from ranksearch.encoder import precision as precisions
from ranksearch.encoder.config import EncoderConfig
from ranksearch.encoder.convert import convert_model
from ranksearch.encoder.embedder import load_encoder
from ranksearch.encoder.model import RankedEncoder
from ranksearch.encoder.onnx_engine import OrtEncoder, export_onnx
from ranksearch.errors import ConfigError, InvalidArgument

NO_BF16 = frozenset({"avx2", "avx512f"})
BF16 = frozenset({"avx512f", "avx512_bf16"})


@pytest.fixture(scope="module")
def converted(bert_st_folder, tmp_path_factory):
    return convert_model(bert_st_folder, [2, 8], tmp_path_factory.mktemp("prec") / "m")


def test_unknown_precision_and_device_are_refused_by_name():
    with pytest.raises(ConfigError, match=r"^precision: must be one of fp32, bf16, int8, got 'fp16'"):
        precisions.resolve("fp16")
    with pytest.raises(ConfigError, match=r"^device: must be one of cpu, cuda"):
        precisions.resolve("fp32", "tpu")


def test_bf16_needs_native_bf16_or_falls_back_loudly(caplog):
    assert precisions.resolve("bf16", flags=BF16) == "bf16"
    assert precisions.resolve("bf16", flags=frozenset({"amx_bf16"})) == "bf16"
    with caplog.at_level(logging.WARNING, logger="ranksearch.encoder"):
        assert precisions.resolve("bf16", flags=NO_BF16) == "fp32"
    assert "falling back to fp32" in caplog.text and "avx512_bf16" in caplog.text
    with pytest.raises(ConfigError, match=r"^precision: bf16 requested but this CPU has none of"):
        precisions.resolve("bf16", strict=True, flags=NO_BF16)
    assert precisions.resolve("int8", flags=NO_BF16) == "int8"


def test_load_encoder_reports_the_fallback(converted, monkeypatch, sentences):
    monkeypatch.setattr(precisions, "cpu_flags", lambda: NO_BF16)
    emb = load_encoder(converted, precision="bf16")
    assert emb.precision == "fp32" and emb.describe()["precision"] == "fp32"
    with pytest.raises(ConfigError):
        load_encoder(converted, precision="bf16", strict=True)


GRAPH_SHAPES = [
    dict(rank=[3, 5]),                                  # rank below the value width
    dict(rank=[16, 16], norm="pre", type_vocab_size=0),  # pre-norm, no token types
    dict(rank=[1, 20], d_model=48),  # rank above the value width; d_model not a multiple
]                                    # of int8's block (a zero-padded last block)


def tiny_batch(overrides: dict):
    """A random tiny encoder and a (b, t) batch with padding of different lengths."""
    torch.manual_seed(0)
    cfg = EncoderConfig.preset("tiny", vocab_size=50, max_len=32, type_vocab_size=2,
                               dropout=0.0).with_overrides(**overrides)
    ids = torch.randint(5, 50, (3, 11))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 2:] = 0
    return RankedEncoder(cfg).eval(), ids, mask


@pytest.mark.parametrize("overrides", GRAPH_SHAPES)
def test_exported_graph_equals_eager(overrides):
    enc, ids, mask = tiny_batch(overrides)
    with torch.inference_mode():
        eager = enc(ids, mask)
    got = OrtEncoder(enc)(ids, mask)
    real = mask.bool()
    torch.testing.assert_close(got[real], eager[real], atol=2e-5, rtol=1e-4)
    with torch.inference_mode():  # exporting leaves the eager module as it was
        torch.testing.assert_close(enc(ids, mask), eager)


def test_onnxruntime_embedder_equals_torch_embedder(converted, sentences):
    ort, eager = load_encoder(converted, engine="onnxruntime"), load_encoder(converted)
    assert (ort.engine, eager.engine) == ("onnxruntime", "torch")
    np.testing.assert_allclose(ort.encode(sentences, role="document"),
                               eager.encode(sentences, role="document"), atol=2e-5)
    assert ort.describe()["engine"] == "onnxruntime"


def test_plain_bert_folder_stays_on_torch(bert_st_folder):
    assert load_encoder(bert_st_folder).engine == "torch"
    with pytest.raises(InvalidArgument, match=r"^precision: int8 through ONNX Runtime needs"):
        load_encoder(bert_st_folder, precision="int8")


def test_bf16_within_tolerance_of_fp32_on_the_reference_path():
    torch.manual_seed(1)
    cfg = EncoderConfig.preset("tiny", vocab_size=50, max_len=32, rank=[4, 12], dropout=0.0)
    enc = RankedEncoder(cfg).eval()
    ids = torch.randint(5, 50, (4, 16))
    mask = torch.ones_like(ids)
    mask[0, 9:] = 0
    with torch.inference_mode():
        fp32 = enc(ids, mask, reference=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = enc(ids, mask, reference=True).float()
    real = mask.bool()
    cos = torch.nn.functional.cosine_similarity(bf16[real], fp32[real], dim=-1)
    assert float(cos.min()) > 0.995


def test_bf16_and_int8_embedders_stay_close_to_fp32(converted, monkeypatch, sentences):
    monkeypatch.setattr(precisions, "cpu_flags", lambda: BF16)  # bf16 is emulated where absent
    fp32 = load_encoder(converted).encode(sentences, role="document")
    for precision, floor in (("bf16", 0.99), ("int8", 0.95)):
        emb = load_encoder(converted, precision=precision)
        assert emb.precision == precision
        vecs = emb.encode(sentences, role="document")
        assert vecs.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
        assert float((vecs * fp32).sum(1).min()) > floor, precision


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"^device: cuda requested but torch sees no GPU"):
        precisions.resolve("fp32", "cuda")
    with pytest.raises(ConfigError, match=r"^precision: int8 runs on CPU only"):
        precisions.resolve("int8", "cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_encodes_like_cpu(converted, sentences, precision):
    cpu = load_encoder(converted).encode(sentences, role="document")
    gpu = load_encoder(converted, device="cuda", precision=precision)
    assert gpu.engine == "torch" and gpu.device == "cuda"
    agreement = float((gpu.encode(sentences, role="document") * cpu).sum(1).min())
    assert agreement > (0.9999 if precision == "fp32" else 0.99)


def test_bf16_serves_bf16_weights_and_stays_within_tolerance_of_eager_fp32(converted, monkeypatch,
                                                                          sentences):
    """The served bf16 path holds the ranked encoder's weights in bfloat16 (no autocast
    casting them on every call) and its vectors stay within cosine 0.999 of eager fp32,
    for batches with padding and for single texts."""
    monkeypatch.setattr(precisions, "cpu_flags", lambda: BF16)
    fp32 = load_encoder(converted)
    bf16 = load_encoder(converted, precision="bf16")
    assert not bf16.autocast
    assert {p.dtype for p in bf16.model[0].encoder.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in fp32.model[0].encoder.parameters()} == {torch.float32}
    if packed.available():  # the products run through prepacked oneDNN kernels
        assert isinstance(bf16.model[0].encoder.blocks[0].ffn.up, packed.PackedLinear)
    for texts in (sentences, sentences[:1]):
        want = fp32.encode(texts, role="query")
        got = bf16.encode(texts, role="query")
        assert got.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
        assert float((got * want).sum(1).min()) > 0.999


def test_bf16_of_a_plain_bert_folder_runs_under_autocast(bert_st_folder, monkeypatch, sentences):
    monkeypatch.setattr(precisions, "cpu_flags", lambda: BF16)
    emb = load_encoder(bert_st_folder, precision="bf16")
    assert emb.autocast and emb.precision == "bf16"
    fp32 = load_encoder(bert_st_folder).encode(sentences, role="document")
    assert float((emb.encode(sentences, role="document") * fp32).sum(1).min()) > 0.99


@pytest.mark.skipif(not packed.available(), reason="PyTorch built without oneDNN")
def test_packed_bf16_linears_equal_the_unpacked_bf16_module():
    """pack() swaps the bf16 encoder's products for prepacked oneDNN kernels: same
    outputs within bf16 rounding, padded and unpadded, same parameter count."""
    torch.manual_seed(2)
    cfg = EncoderConfig.preset("tiny", vocab_size=50, max_len=32, rank=[4, 12], dropout=0.0)
    plain = RankedEncoder(cfg).eval().to(torch.bfloat16)
    fast = copy.deepcopy(plain)
    assert packed.pack(fast) == 4 * len(cfg.ranks)
    assert sum(p.numel() for p in fast.parameters()) == sum(p.numel() for p in plain.parameters())
    ids = torch.randint(5, 50, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    for m in (mask, torch.ones_like(ids)):  # unpadded inference path, and no padding at all
        with torch.inference_mode():
            want, got = plain(ids, m).float(), fast(ids, m).float()
        real = m.bool()
        torch.testing.assert_close(got[real], want[real], atol=3e-2, rtol=3e-2)
        assert float(torch.nn.functional.cosine_similarity(got[real], want[real], dim=-1).min()) > 0.999


@pytest.mark.parametrize("overrides", GRAPH_SHAPES)
def test_int8_graph_equals_its_reference_and_stays_close_to_fp32(overrides):
    """The quantised ONNX Runtime graph computes what int8.reference() computes in PyTorch
    (same blocks, same scales: equal to float rounding), and both stay within cosine
    0.9999 of fp32; the quantisation itself moves the outputs >100x more than the
    graph's difference from its reference, so the first check is not vacuous."""
    enc, ids, mask = tiny_batch(overrides)
    with torch.inference_mode():
        fp32 = enc(ids, mask)
        with int8.reference():
            want = enc(ids, mask, reference=True)
    got = OrtEncoder(enc, "int8")(ids, mask)
    real = mask.bool()
    graph_error = float((got[real] - want[real]).abs().max())
    assert graph_error < 1e-5
    assert float((want[real] - fp32[real]).abs().max()) > 100 * graph_error
    for out in (got, want):
        cos = torch.nn.functional.cosine_similarity(out[real], fp32[real], dim=-1)
        assert float(cos.min()) > 0.9999


def test_int8_quantises_every_weight_product_and_nothing_else():
    torch.manual_seed(0)
    cfg = EncoderConfig.preset("tiny", vocab_size=50, max_len=32, dropout=0.0)
    graph = onnx.load_from_string(int8.quantize_int8(export_onnx(RankedEncoder(cfg).eval())))
    ops = [n.op_type for n in graph.graph.node]
    # per block: fused q/k/v, output projection, feed-forward up and down
    assert ops.count("MatMulNBits") == 4 * len(cfg.ranks)
    assert ops.count("MatMul") == 2 * len(cfg.ranks)  # scores and values: activations only
    assert {i.data_type for i in graph.graph.initializer if i.name.endswith("_int8_blocks")} == {
        onnx.TensorProto.UINT8}


def test_reference_linear_is_exact_where_blocks_are_representable():
    """Values that are multiples of their block's max / 127 survive quantisation exactly."""
    x = torch.tensor([[127.0, -3.0, 0.0, 5.0] * 8 + [2.0, 0.0]])  # (1, 34): a padded 2nd block
    w = torch.tensor([[1.0, 2.0, -127.0, 0.0] * 8 + [0.0, 127.0]])  # (1, 34)
    torch.testing.assert_close(int8.reference_linear(x, w), x @ w.T)


def test_int8_vector_does_not_depend_on_its_batch(converted, sentences):
    """The service micro-batches concurrent queries, so a query must get the same vector
    alone and beside any other texts. With one activation scale per batch tensor (ONNX
    Runtime's dynamic quantisation, served before) it did not: an outlier text in the
    batch coarsened every other text's quantisation."""
    emb = load_encoder(converted, precision="int8")
    fp32 = load_encoder(converted)
    outliers = ["!" * 40, "farthest " * 30, sentences[-1]]
    for query in sentences:
        alone = emb.encode([query], role="query")[0]
        for batch in ([query] + outliers, outliers + [query], sentences):
            got = emb.encode(batch, role="query")[batch.index(query)]
            np.testing.assert_allclose(got, alone, atol=1e-5)
    # fp32 itself agrees alone and batched to the same tolerance
    batched = fp32.encode(outliers + sentences, role="query")[len(outliers):]
    np.testing.assert_allclose(batched, fp32.encode(sentences, role="query"), atol=1e-5)


@pytest.mark.skipif(not packed.available(), reason="PyTorch built without oneDNN")
def test_served_fp32_is_packed_and_equals_the_eager_unpacked_encoder(converted, sentences):
    """fp32 serves prepacked oneDNN linears too: the vectors equal the plain eager
    module's (what the quality tables were measured with) within float rounding."""
    from ranksearch.encoder.st_module import load_sentence_transformer

    served = load_encoder(converted)
    assert isinstance(served.model[0].encoder.blocks[0].ffn.up, packed.PackedLinear)
    plain = load_sentence_transformer(converted).eval()
    assert not isinstance(plain[0].encoder.blocks[0].ffn.up, packed.PackedLinear)
    for texts in (sentences, sentences[:1]):
        want = plain.encode(texts, prompt_name="query", normalize_embeddings=True)
        np.testing.assert_allclose(served.encode(texts, role="query"), want, atol=1e-5)
