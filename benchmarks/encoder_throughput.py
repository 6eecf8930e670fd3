"""Encoder throughput per rank setting, side by side with a transformers BertModel.

For each rank: documents/s (batches of --batch documents of up to --doc-len tokens,
lengths varying so padding is exercised) and single-query latency p50/p95 (one query of
--query-len tokens). The BertModel has the same shape (random init, no download) and is
measured in the same run, interleaved with the ranked encoders, so the ratios compare
like with like on whatever the machine is doing. Both models run the encoder forward
plus mean pooling on the same token ids; tokenisation is identical for both and left out.

    .venv/bin/python benchmarks/encoder_throughput.py            # MiniLM-L6 shape
    .venv/bin/python benchmarks/encoder_throughput.py --quick    # smaller, faster
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import BertConfig, BertModel  # noqa: E402

from ranksearch.encoder.config import EncoderConfig  # noqa: E402
from ranksearch.encoder.cost import flops_per_token  # noqa: E402
from ranksearch.encoder.model import RankedEncoder  # noqa: E402


def mean_pool(tokens, mask):
    m = mask.unsqueeze(-1).to(tokens.dtype)  # (b, t, 1)
    return (tokens * m).sum(1) / m.sum(1).clamp_min(1)


def make_runner(kind, model):
    if kind == "bert":
        return lambda ids, mask: mean_pool(model(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
    return lambda ids, mask: mean_pool(model(ids, mask), mask)


def docs_batches(args, gen):
    batches = []
    for _ in range(args.doc_batches):
        lengths = torch.randint(args.doc_len // 2, args.doc_len + 1, (args.batch,), generator=gen)
        mask = (torch.arange(args.doc_len)[None] < lengths[:, None]).long()  # (b, t)
        ids = torch.randint(1, args.vocab, (args.batch, args.doc_len), generator=gen) * mask
        batches.append((ids, mask))
    return batches


def time_docs(run, batches, repeats):
    best = float("inf")
    for _ in range(repeats):  # best of repeats: the least disturbed by other load
        t0 = time.perf_counter()
        for ids, mask in batches:
            run(ids, mask)
        best = min(best, time.perf_counter() - t0)
    return sum(len(ids) for ids, _ in batches) / best


def time_queries(run, queries):
    lat = []
    for ids, mask in queries:
        t0 = time.perf_counter()
        run(ids, mask)
        lat.append((time.perf_counter() - t0) * 1e3)
    lat.sort()
    return statistics.median(lat), lat[int(0.95 * (len(lat) - 1))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--d-model", type=int, default=384)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--ffn", type=int, default=1536)
    p.add_argument("--vocab", type=int, default=30522)
    p.add_argument("--ranks", default="", help="comma list; default: full, full/4, 1")
    p.add_argument("--doc-len", type=int, default=128)
    p.add_argument("--query-len", type=int, default=16)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--doc-batches", type=int, default=4)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="d 256, 4 layers, fewer batches")
    args = p.parse_args()
    if args.quick:
        args.d_model, args.layers, args.heads, args.ffn = 256, 4, 8, 1024
        args.doc_batches, args.queries, args.repeats = 2, 50, 2
    torch.set_num_threads(args.threads)
    head = args.d_model // args.heads
    ranks = [int(r) for r in args.ranks.split(",")] if args.ranks else sorted({head, max(1, head // 4), 1}, reverse=True)

    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=args.vocab, hidden_size=args.d_model,
                                num_hidden_layers=args.layers, num_attention_heads=args.heads,
                                intermediate_size=args.ffn, max_position_embeddings=512),
                     add_pooling_layer=False).eval()
    runners = {"BertModel": make_runner("bert", bert)}
    configs = {}
    for r in ranks:
        cfg = EncoderConfig(vocab_size=args.vocab, d_model=args.d_model, layers=args.layers,
                            heads=args.heads, rank=r, value_dim=head, ffn_dim=args.ffn,
                            max_len=512, type_vocab_size=2, norm="post", dropout=0.0)
        configs[f"ranked r={r}"] = cfg
        runners[f"ranked r={r}"] = make_runner("ranked", RankedEncoder(cfg).eval())

    gen = torch.Generator().manual_seed(0)
    batches = docs_batches(args, gen)
    queries = [(torch.randint(1, args.vocab, (1, args.query_len), generator=gen),
                torch.ones(1, args.query_len, dtype=torch.long)) for _ in range(args.queries)]
    results = {name: {"docs": [], "p50": [], "p95": []} for name in runners}
    with torch.inference_mode():
        for run in runners.values():  # warm-up
            run(*batches[0])
            run(*queries[0])
        for _ in range(args.repeats):  # interleave models so drift hits all alike
            for name, run in runners.items():
                results[name]["docs"].append(time_docs(run, batches, 1))
                p50, p95 = time_queries(run, queries)
                results[name]["p50"].append(p50)
                results[name]["p95"].append(p95)

    print(f"shape: d={args.d_model} layers={args.layers} heads={args.heads} ffn={args.ffn} "
          f"doc_len<={args.doc_len} batch={args.batch} query_len={args.query_len} "
          f"threads={args.threads} torch={torch.__version__}")
    base = {k: statistics.median(v) for k, v in results["BertModel"].items()}
    print(f"{'model':<14}{'GFLOP/doc':>10}{'docs/s':>10}{'x Bert':>8}{'q p50 ms':>10}"
          f"{'x Bert':>8}{'q p95 ms':>10}")
    for name, res in results.items():
        docs, p50, p95 = (statistics.median(res[k]) for k in ("docs", "p50", "p95"))
        cfg = configs.get(name) or next(iter(configs.values())).with_overrides(rank=head)
        gflop = flops_per_token(cfg, args.doc_len)["total"] * args.doc_len / 1e9
        print(f"{name:<14}{gflop:>10.3f}{docs:>10.1f}{docs / base['docs']:>8.2f}{p50:>10.2f}"
              f"{base['p50'] / p50:>8.2f}{p95:>10.2f}")
    print("x Bert: throughput ratio (docs/s) and latency speed-up (Bert p50 / p50); > 1 = faster than BertModel")


if __name__ == "__main__":
    main()
