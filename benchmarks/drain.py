"""Graceful drain: SIGTERM while a large Embed runs and small calls wait behind it.

Starts `ranksearch serve` on a fresh data dir (the first --corpus-docs documents of the
built-in corpus), sends one Embed of --large texts, then --small concurrent small calls
(Search and a one-text Embed, alternating), then SIGTERM after --term-after seconds.
Prints how long the server took to exit (against shutdown_grace_s) and the outcome of
every call: OK, or its status code. What the service promises (docs/PERFORMANCE.md):
exit within grace + one forward pass; small calls that arrived before SIGTERM are
served, not cancelled (the large request's passes are interleaved with them); the
large request finishes if it can within the grace, else it is answered UNAVAILABLE /
CANCELLED.

    python benchmarks/drain.py                 # grace 10 s, 1,024-text Embed, 8 small calls
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).parent))
from service_latency import small_corpus, start_server  # noqa: E402

from ranksearch.client import RpcFailed, SearchClient  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grace", type=float, default=10.0, help="shutdown_grace_s of the server")
    p.add_argument("--large", type=int, default=1024, help="texts in the large Embed")
    p.add_argument("--small", type=int, default=8, help="concurrent small calls")
    p.add_argument("--term-after", type=float, default=2.0, help="seconds from the large call to SIGTERM")
    p.add_argument("--corpus-docs", type=int, default=50)
    args = p.parse_args(argv)

    data = Path(tempfile.mkdtemp(prefix="drain-"))
    corpus = small_corpus(args.corpus_docs)
    proc, address, start_s = start_server(data, True, 40, bootstrap=corpus,
                                          extra_config={"shutdown_grace_s": args.grace})
    print(f"# server ready in {start_s:.1f}s; grace {args.grace:.0f}s; large Embed of {args.large} "
          f"texts, {args.small} small calls, SIGTERM {args.term_after:.1f}s after the large call")
    outcomes: dict[str, tuple[str, float]] = {}
    lock = threading.Lock()
    t0 = time.perf_counter()

    def call(name: str, fn) -> None:
        start = time.perf_counter()
        try:
            fn()
            outcome = "OK"
        except RpcFailed as exc:
            outcome = exc.code.name
        with lock:
            outcomes[name] = (outcome, time.perf_counter() - start)

    texts = [f"how do I read line {i} of a large file and parse its fields" for i in range(args.large)]
    with SearchClient(address, timeout=300, retries=0) as client:
        threads = [threading.Thread(target=call, args=("large Embed", lambda: client.embed(texts)))]
        threads[0].start()
        time.sleep(0.5)
        for i in range(args.small):
            if i % 2:
                fn = lambda: client.embed(["open a file"])  # noqa: E731
            else:
                fn = lambda: client.search("read a file line by line", k=5)  # noqa: E731
            threads.append(threading.Thread(target=call, args=(f"small {i} ({'Embed' if i % 2 else 'Search'})", fn)))
            threads[-1].start()
        time.sleep(max(0.0, args.term_after - 0.5))
        term_at = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=args.grace + 120)
        exit_s = time.perf_counter() - term_at
        for t in threads:
            t.join(30)
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(corpus, ignore_errors=True)
    print(f"exit {exit_s:.1f}s after SIGTERM (grace {args.grace:.0f}s, exit code {proc.returncode}); "
          f"run {time.perf_counter() - t0:.1f}s in all")
    for name, (outcome, secs) in outcomes.items():
        print(f"  {name:<22} {outcome:<18} {secs:6.1f}s")
    served = sum(1 for n, (o, _) in outcomes.items() if n.startswith("small") and o == "OK")
    print(f"small calls served: {served}/{args.small}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
