"""How much micro-batching can buy at most: the encoder's cost per query against the
number of queries in one forward pass, in process, on one torch thread (what each
service worker runs with ``encoder_threads: auto``).

A batched server can only save the difference between what a query costs in a pass of
its own and its share of a larger pass. So ``cost(pass of 1) / min over n of cost(pass
of n)`` bounds the QPS ratio of batching on / off at any concurrency, before gRPC,
validation and search (which batching does not make cheaper) dilute it further. On a
CPU a lone short query is already a reasonably efficient matrix product; on a GPU the
same ratio is far larger.

Rows are interleaved (every pass size once per round, --rounds rounds, best round
kept) on the built-in corpus's test queries, through the served path
(`load_encoder`: prepacked linears, the model's tokenizer and pooling):

    .venv/bin/python benchmarks/batching_ceiling.py                  # default model, fp32 and bf16
    .venv/bin/python benchmarks/batching_ceiling.py --precisions fp32 --sizes 1,8,32
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from ranksearch.encoder.corpus import cache_root, load_beir, resolve_corpus  # noqa: E402
from ranksearch.encoder.default_model import ensure_default_model  # noqa: E402
from ranksearch.encoder.embedder import load_encoder  # noqa: E402
from ranksearch.encoder.precision import native_bf16  # noqa: E402


def per_query_ms(encoder, queries: list[str], size: int, seconds: float) -> float:
    """Wall ms per query of passes of `size` queries, over about `seconds` of passes."""
    done, i = 0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or done == 0:
        batch = [queries[(i + j) % len(queries)] for j in range(size)]
        encoder.encode(batch, role="query")
        done += size
        i += size
    return 1000 * (time.perf_counter() - start) / done


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="model folder (default: all-MiniLM-L6-v2, the default model)")
    p.add_argument("--precisions", default="fp32,bf16", help="comma list of fp32, bf16, int8")
    p.add_argument("--sizes", default="1,2,4,8,16,32,64", help="queries per forward pass")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=1.5, help="per cell and round")
    p.add_argument("--threads", type=int, default=1, help="torch threads (a service worker: 1)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    folder = args.model or ensure_default_model(cache_root() / "models" / "default-all-MiniLM-L6-v2")
    beir = load_beir(resolve_corpus("stdlib"), split="test")
    queries = [beir.queries[q] for q in sorted(beir.queries)]
    sizes = [int(s) for s in args.sizes.split(",")]
    precisions = [x for x in args.precisions.split(",") if x != "bf16" or native_bf16("cpu")]
    encoders = {prec: load_encoder(folder, precision=prec) for prec in precisions}
    for enc in encoders.values():  # kernels for every shape, before timing
        for size in sizes:
            enc.encode(queries[:size], role="query")
    best: dict[tuple[str, int], float] = {}
    for _ in range(args.rounds):
        for prec, enc in encoders.items():
            for size in sizes:
                ms = per_query_ms(enc, queries, size, args.seconds)
                best[prec, size] = min(ms, best.get((prec, size), float("inf")))
    tokens = next(iter(encoders.values())).token_counts(queries)  # the model's tokenizer
    mean_tokens = f", {sum(tokens) / len(tokens):.1f} tokens per query on average"
    print(f"\n{folder}: {len(queries)} stdlib test queries{mean_tokens}; {args.threads} torch thread(s); "
          f"best of {args.rounds} interleaved rounds; load average {os.getloadavg()[0]:.1f}")
    print(f"{'precision':>9} " + " ".join(f"{'n=' + str(s):>8}" for s in sizes) + f" {'ceiling':>9}")
    for prec in encoders:
        row = [best[prec, s] for s in sizes]
        print(f"{prec:>9} " + " ".join(f"{ms:>8.2f}" for ms in row) + f" {row[0] / min(row):>8.2f}x")
    print("(ms of encoder wall time per query, by queries per forward pass; ceiling = cost at n=1 "
          "divided by the cheapest: the most batching can multiply QPS by)")


if __name__ == "__main__":
    main()
