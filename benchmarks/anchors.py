"""Encoding engines and precisions side by side on the real all-MiniLM-L6-v2 weights.

Run as ``benchmarks/encoder_throughput.py --anchors`` (or this file directly). Rows,
measured interleaved in one run (best of --repeats), on the same token ids (stdlib
corpus texts, length-sorted batches of --batch, <= --max-len tokens; tokenisation left
out, it is the same for every row):

- transformers BertModel fp32                       (the baseline: 1.00x)
- BertModel under torch.autocast(bfloat16)
- ONNX Runtime fp32 / dynamic int8 of the BertModel (what a user would deploy instead;
  the int8 row is ORT's default per-tensor quantisation)
- ranksearch fp32 eager PyTorch, unpacked and packed (the served path: packed)
- ranksearch fp32 through ONNX Runtime              (engine="onnxruntime")
- ranksearch bf16 autocast                          (the served bf16 path before: weights fp32)
- ranksearch bf16 weights, unpacked                 (weights in bf16, plain F.linear)
- ranksearch bf16                                   (the served bf16 path: bf16 weights,
                                                     prepacked oneDNN linears, packed.py)
- ranksearch int8, ORT dynamic per-channel          (the int8 path served before: one
                                                     activation scale per batch tensor)
- ranksearch int8                                   (the served int8 path: int8.py, blocks
                                                     of 32, activations per token)

Each row reports docs/s (wall) and docs per CPU second of this process (steadier when
other jobs share the cores), the ratios to the baseline, and the minimum cosine of its
mean-pooled, normalised vectors against the fp32 BertModel's. The load average is
printed with the table.
"""
from __future__ import annotations

import argparse
import copy
import io
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ranksearch.encoder.corpus import cache_root, document_text, load_beir, resolve_corpus  # noqa: E402
from ranksearch.encoder.default_model import ensure_default_model, source_dir  # noqa: E402
from ranksearch.encoder.embedder import load_encoder  # noqa: E402
from ranksearch.encoder.onnx_engine import OrtEncoder  # noqa: E402
from ranksearch.encoder.precision import cpu_flags, native_bf16  # noqa: E402
from ranksearch.encoder.st_module import load_sentence_transformer  # noqa: E402


def pool(tokens, mask):
    m = mask.unsqueeze(-1).to(torch.float32)  # (b, t, 1)
    v = (tokens.float() * m).sum(1) / m.sum(1).clamp_min(1)
    return nn.functional.normalize(v, dim=-1)  # (b, d)


class _Bert(nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def ort_dynamic(model: bytes, per_channel: bool = False) -> bytes:
    """ONNX Runtime's dynamic int8 quantisation: weights per tensor (its default) or per
    output channel, activations per tensor over the whole batch at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "a.onnx").write_bytes(model)
        quantize_dynamic(str(Path(tmp) / "a.onnx"), str(Path(tmp) / "b.onnx"),
                         per_channel=per_channel, weight_type=QuantType.QInt8)
        return (Path(tmp) / "b.onnx").read_bytes()


def bert_ort(bert, threads: int, int8: bool):
    """ONNX Runtime session of the BertModel (fp32, or ORT's default dynamic int8)."""
    import onnxruntime as ort

    buf = io.BytesIO()
    ids = torch.ones(2, 8, dtype=torch.long)
    bert = copy.deepcopy(bert)  # exporting changes the traced module: keep the measured one intact
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Bert(bert), (ids, ids), buf, input_names=["input_ids", "attention_mask"],
                          output_names=["h"], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "b", 1: "t"} for n in ("input_ids", "attention_mask", "h")})
    model = ort_dynamic(buf.getvalue()) if int8 else buf.getvalue()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    return lambda ids, mask: torch.from_numpy(
        sess.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--docs", type=int, default=256)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import BertModel

    folder = ensure_default_model(cache_root() / "models" / "default-all-MiniLM-L6-v2")
    beir = load_beir(resolve_corpus("stdlib"), "test")
    texts = [document_text(beir.corpus[d]) for d in list(beir.corpus)[:args.docs]]
    module = load_sentence_transformer(folder)[0]  # the ranked encoder, eager and unpacked
    served_fp32 = load_encoder(folder).model[0].encoder  # fp32 weights, packed
    tok = module.tokenizer
    texts.sort(key=lambda t: len(tok(t, truncation=True, max_length=args.max_len)["input_ids"]))
    batches = [tok(texts[i:i + args.batch], padding=True, truncation=True, max_length=args.max_len,
                   return_tensors="pt") for i in range(0, len(texts), args.batch)]
    batches = [(b["input_ids"], b["attention_mask"]) for b in batches]

    bert = BertModel.from_pretrained(str(source_dir()), add_pooling_layer=False).eval()
    eager = module.encoder.eval()
    weights_bf16 = copy.deepcopy(eager).to(torch.bfloat16).eval()
    served_bf16 = load_encoder(folder, precision="bf16").model[0].encoder  # bf16 weights, packed
    bf16 = native_bf16("cpu")

    def autocast(fn):
        def run(ids, mask):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return fn(ids, mask)
        return run

    hf = lambda ids, mask: bert(input_ids=ids, attention_mask=mask).last_hidden_state  # noqa: E731
    ranked = lambda ids, mask: eager(ids, mask)  # noqa: E731
    runners = {
        "transformers BertModel fp32": hf,
        "BertModel autocast bf16": autocast(hf),
        "ONNX Runtime fp32 (BertModel export)": bert_ort(bert, args.threads, int8=False),
        "ONNX Runtime int8 (per-tensor default)": bert_ort(bert, args.threads, int8=True),
        "ranksearch fp32, eager unpacked (served before)": ranked,
        "ranksearch fp32 (served: packed)": lambda ids, mask: served_fp32(ids, mask),
        "ranksearch fp32, onnxruntime engine": OrtEncoder(eager, "fp32", args.threads),
        "ranksearch bf16, autocast (before)": autocast(ranked),
        "ranksearch bf16 weights, unpacked": lambda ids, mask: weights_bf16(ids, mask),
        "ranksearch bf16 (served: bf16 weights, packed)": lambda ids, mask: served_bf16(ids, mask),
        "ranksearch int8, ORT dynamic per-channel (served before)": OrtEncoder(
            eager, "int8", args.threads, quantize=lambda m: ort_dynamic(m, per_channel=True)),
        "ranksearch int8 (served: blocks of 32, per-token activations)": OrtEncoder(
            eager, "int8", args.threads),
    }
    with torch.inference_mode():
        ref = [pool(hf(ids, mask), mask) for ids, mask in batches]
        cos = {}
        for name, run in runners.items():  # also the warm-up
            got = [pool(run(ids, mask), mask) for ids, mask in batches]
            cos[name] = min(float((g * r).sum(-1).min()) for g, r in zip(got, ref))
        rates = {name: [] for name in runners}
        cpu_rates = {name: [] for name in runners}
        for _ in range(args.repeats):  # interleaved: drift hits every row alike
            for name, run in runners.items():
                t0, c0 = time.perf_counter(), time.process_time()
                for ids, mask in batches:
                    pool(run(ids, mask), mask)
                rates[name].append(len(texts) / (time.perf_counter() - t0))
                cpu_rates[name].append(len(texts) / (time.process_time() - c0))
    base = max(rates["transformers BertModel fp32"])
    cpu_base = max(cpu_rates["transformers BertModel fp32"])
    ort_fp32 = max(rates["ONNX Runtime fp32 (BertModel export)"])
    print(f"{len(texts)} stdlib texts, length-sorted batches of {args.batch}, <= {args.max_len} tokens "
          f"(longest batch {max(ids.shape[1] for ids, _ in batches)}), threads={args.threads}, "
          f"best of {args.repeats} interleaved; torch {torch.__version__}; "
          f"native bf16: {bf16} ({' '.join(sorted(f for f in cpu_flags() if 'bf16' in f or 'vnni' in f))}); "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| path | docs/s | vs BertModel fp32 | vs ORT fp32 | docs/CPU-s | vs BertModel (CPU) "
          "| min cosine vs fp32 |")
    print("|---|---|---|---|---|---|---|")
    for name in runners:
        best, cpu = max(rates[name]), max(cpu_rates[name])
        print(f"| {name} | {best:.1f} | {best / base:.2f}x | {best / ort_fp32:.2f}x | {cpu:.1f} "
              f"| {cpu / cpu_base:.2f}x | {cos[name]:.5f} |")


if __name__ == "__main__":
    main()
