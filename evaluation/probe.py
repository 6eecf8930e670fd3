"""The synthetic rank probe (docs/BACKGROUND.md; Amsel, Yehudai & Bruna, arXiv 2407.16153).

One layer of the encoder's own ``RankedAttention`` learns to return, for each token,
the farthest point of its set (self-attention) or, for a query, the nearest of N keys
(cross-attention); all points uniform on the unit sphere S^{d-1}. A full-rank head
(r = d) can represent both exactly (Q = ±I, K = V = I with hard attention); rank
r < d cannot, whatever the head count within reason — the probe shows that gap.

Axes: b sets in a batch, n points per set (N), d point dimension, h heads, r rank.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ranksearch.encoder.attention import RankedAttention
from ranksearch.errors import InvalidArgument

TASKS = ("farthest", "nearest")
BUDGETS = ("equal", "fixed")
INPUTS = ("uniform", "orthonormal", "antipodal")


# ---- data ------------------------------------------------------------------------
def sample_sphere(b: int, n: int, d: int, generator: torch.Generator,
                  kind: str = "uniform") -> torch.Tensor:
    """(b, n, d) points on S^{d-1}: i.i.d. uniform (normalised Gaussians), orthonormal
    (QR of a Gaussian, n <= d) or antipodal (n/2 points and their negations)."""
    if kind == "uniform":
        x = torch.randn(b, n, d, generator=generator)
        return x / x.norm(dim=-1, keepdim=True)
    if kind == "orthonormal":
        if n > d:
            raise InvalidArgument("points", f"orthonormal sets need points <= dim ({n} > {d})")
        g = torch.randn(b, d, d, generator=generator)
        q, _ = torch.linalg.qr(g)                      # (b, d, d), orthonormal columns
        return q.transpose(1, 2)[:, :n, :].contiguous()  # (b, n, d)
    if kind == "antipodal":
        if n % 2:
            raise InvalidArgument("points", f"antipodal sets need an even number of points, got {n}")
        half = sample_sphere(b, n // 2, d, generator)
        return torch.cat([half, -half], dim=1)          # (b, n, d)
    raise InvalidArgument("input", f"unknown input kind {kind!r}; known: {INPUTS}")


def targets(task: str, points: torch.Tensor, queries: torch.Tensor | None) -> torch.Tensor:
    """Index of the target point per token: (b, n) for farthest (each token of the set),
    (b, m) for nearest (each query)."""
    if task == "farthest":
        sim = points @ points.transpose(1, 2)  # (b, n, n)
        return sim.argmin(dim=-1)
    sim = queries @ points.transpose(1, 2)     # (b, m, n)
    return sim.argmax(dim=-1)


def make_batch(task: str, b: int, n: int, d: int, generator: torch.Generator,
               kind: str = "uniform"):
    """Returns (tokens (b, m, d), points (b, n, d), target vectors (b, m, d),
    target index (b, m)); for farthest the tokens are the points themselves."""
    points = sample_sphere(b, n, d, generator, kind)
    queries = None if task == "farthest" else sample_sphere(b, 1, d, generator)
    idx = targets(task, points, queries)
    tgt = torch.gather(points, 1, idx[..., None].expand(-1, -1, d))  # (b, m, d)
    tokens = points if task == "farthest" else queries
    return tokens, points, tgt, idx


# ---- model -----------------------------------------------------------------------
class ProbeModel(nn.Module):
    """``layers - 1`` pre-norm residual blocks (ranked attention + MLP) followed by one
    ranked-attention readout whose output is the prediction. With ``layers=1`` it is a
    single attention layer: Σ_h softmax(Q_h y · K_h x / sqrt(r)) V_h x through out_proj,
    the paper's one-layer model. Value width per head is ceil(d / heads), so every
    setting has a total value width of at least d (equal when heads divides d): what
    differs between settings is the rank of the score, not the value budget."""

    def __init__(self, dim: int, heads: int, rank: int, layers: int = 1):
        super().__init__()
        value_dim = math.ceil(dim / heads)
        self.blocks = nn.ModuleList(_Block(dim, heads, rank, value_dim) for _ in range(layers - 1))
        self.readout = RankedAttention(dim, heads, rank, value_dim=value_dim, bias=False)

    def forward(self, tokens: torch.Tensor, points: torch.Tensor, task: str) -> torch.Tensor:
        if task == "farthest":  # self-attention over the set
            h = points
            for block in self.blocks:
                h = block(h)
            return self.readout(h)                      # (b, n, d)
        for block in self.blocks:                        # nearest: refine the keys only
            points = block(points)
        return self.readout(tokens, context=points)      # (b, 1, d)


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, rank: int, value_dim: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = RankedAttention(dim, heads, rank, value_dim=value_dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def hard_attention(attn: RankedAttention, x: torch.Tensor,
                   context: torch.Tensor | None = None) -> torch.Tensor:
    """Hard (one-hot argmax) attention through the module's own maps: (b, tq, d)."""
    ctx = x if context is None else context
    s = attn.scores(x, context)                                   # (b, h, tq, tk)
    p = torch.nn.functional.one_hot(s.argmax(-1), s.shape[-1]).to(x.dtype)
    v = attn._split(attn.v_proj(ctx), attn.value_dim)             # (b, h, tk, e)
    return attn._merge(p @ v)                                     # (b, tq, d)


def exact_head(dim: int, task: str) -> RankedAttention:
    """The paper's construction: one full-rank head, K = V = out = I, Q = I (nearest)
    or Q = -I (farthest); exact under hard attention for any number of points."""
    attn = RankedAttention(dim, heads=1, rank=dim, value_dim=dim, bias=False)
    eye = torch.eye(dim)
    with torch.no_grad():
        attn.q_proj.weight.copy_(eye if task == "nearest" else -eye)
        for lin in (attn.k_proj, attn.v_proj, attn.out_proj):
            lin.weight.copy_(eye)
    return attn


# ---- metrics ---------------------------------------------------------------------
def mse(pred: torch.Tensor, tgt: torch.Tensor) -> float:
    """Mean over tokens of ||pred - target||² (zero predictor scores 1.0)."""
    return float(((pred - tgt) ** 2).sum(-1).mean())


def top1_accuracy(pred: torch.Tensor, points: torch.Tensor, idx: torch.Tensor) -> float:
    """Fraction of tokens whose output is closer to the target point than to any other
    point of the set."""
    dist = torch.cdist(pred, points)  # (b, m, n)
    return float((dist.argmin(-1) == idx).float().mean())


def attention_free_baseline(task: str, n: int, d: int, seed: int,
                            samples: int = 4096, kind: str = "uniform") -> dict:
    """Best predictor that ignores attention: least squares on the token itself and the
    set mean (what uniform attention sees), fitted on one sample, scored on another."""
    g = torch.Generator().manual_seed(10_000 + seed)

    def feats(task_tokens, pts):
        mean = pts.mean(1, keepdim=True).expand_as(task_tokens)
        return torch.cat([task_tokens, mean], -1).reshape(-1, 2 * d)  # (b*m, 2d)

    tok, pts, tgt, _ = make_batch(task, samples, n, d, g, kind)
    w = torch.linalg.lstsq(feats(tok, pts).double(), tgt.reshape(-1, d).double()).solution
    tok, pts, tgt, idx = make_batch(task, samples, n, d, g, kind)
    pred = (feats(tok, pts).double() @ w).float().reshape(tgt.shape)
    return {"mse": mse(pred, tgt), "accuracy": top1_accuracy(pred, pts, idx)}


# ---- training --------------------------------------------------------------------
@dataclass
class ProbeConfig:
    dim: int = 16
    points: int = 16
    task: str = "farthest"
    ranks: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    heads_budget: str = "equal"   # equal: heads·rank = dim; fixed: `heads` heads at every rank
    heads: int = 1                # used by heads_budget=fixed
    layers: int = 1
    steps: int = 2000
    seeds: int = 2
    batch: int = 128
    lr: float = 3e-2
    eval_sets: int = 2048
    input: str = "uniform"
    threads: int = 1              # tiny tensors: a second thread only adds contention

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InvalidArgument("task", f"must be one of {TASKS}, got {self.task!r}")
        if self.heads_budget not in BUDGETS:
            raise InvalidArgument("heads_budget", f"must be one of {BUDGETS}, got {self.heads_budget!r}")
        if self.input not in INPUTS:
            raise InvalidArgument("input", f"must be one of {INPUTS}, got {self.input!r}")
        for name in ("dim", "points", "layers", "steps", "seeds", "batch", "heads", "eval_sets"):
            if getattr(self, name) < 1:
                raise InvalidArgument(name, f"must be >= 1, got {getattr(self, name)}")
        if self.points < 2:
            raise InvalidArgument("points", f"must be >= 2, got {self.points}")
        for r in self.ranks:
            if not 1 <= r <= self.dim:
                raise InvalidArgument("ranks", f"each rank must be in [1, dim={self.dim}], got {r}")

    def heads_for(self, rank: int) -> int:
        """Equal budget: heads·rank >= dim (ceil), so no lower rank has fewer q/k
        parameters than the full-rank head."""
        return math.ceil(self.dim / rank) if self.heads_budget == "equal" else self.heads


def qk_parameters(dim: int, heads: int, rank: int, layers: int) -> int:
    """Query and key projection weights of all attention layers: 2·h·r·d per layer."""
    return 2 * heads * rank * dim * layers


def train_setting(cfg: ProbeConfig, rank: int, seed: int) -> dict:
    """Train one (rank, seed) setting on fresh samples each step; evaluate on held-out sets."""
    heads = cfg.heads_for(rank)
    torch.manual_seed(seed)
    model = ProbeModel(cfg.dim, heads, rank, cfg.layers)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    warm = max(1, cfg.steps // 10)  # linear warm-up, then cosine decay to zero
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    model.train()
    for _ in range(cfg.steps):
        tok, pts, tgt, _ = make_batch(cfg.task, cfg.batch, cfg.points, cfg.dim, g, cfg.input)
        loss = ((model(tok, pts, cfg.task) - tgt) ** 2).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    train_s = time.perf_counter() - t0
    model.eval()
    ge = torch.Generator().manual_seed(1_000_000 + seed)
    with torch.no_grad():
        tok, pts, tgt, idx = make_batch(cfg.task, cfg.eval_sets, cfg.points, cfg.dim, ge, cfg.input)
        pred = model(tok, pts, cfg.task)
    return {"rank": rank, "heads": heads, "layers": cfg.layers, "points": cfg.points,
            "dim": cfg.dim, "task": cfg.task, "seed": seed,
            "mse": mse(pred, tgt), "accuracy": top1_accuracy(pred, pts, idx),
            "qk_parameters": qk_parameters(cfg.dim, heads, rank, cfg.layers),
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_seconds": round(train_s, 2)}


def run_probe(cfg: ProbeConfig, progress: bool = True) -> dict:
    """All settings × seeds plus the trivial baselines; the body of results.json."""
    from tqdm import tqdm

    torch.set_num_threads(cfg.threads)
    settings = [(r, s) for r in cfg.ranks for s in range(cfg.seeds)]
    records = []
    for rank, seed in tqdm(settings, desc="probe", unit="setting", disable=not progress):
        records.append(train_setting(cfg, rank, seed))
    baselines = {"zero": {"mse": 1.0, "accuracy": 0.0,
                          "note": "predicts the zero vector: equidistant from every point, never strictly closest"},
                 "attention_free": {**attention_free_baseline(cfg.task, cfg.points, cfg.dim, 0,
                                                              kind=cfg.input),
                                    "note": "least squares on the token and the set mean"}}
    return {"kind": "probe", "config": asdict(cfg), "records": records,
            "summary": summarize(records), "baselines": baselines}


def summarize(records: list[dict]) -> list[dict]:
    """Mean and spread (min, max) over seeds per rank."""
    out = []
    for rank in sorted({r["rank"] for r in records}):
        rs = [r for r in records if r["rank"] == rank]
        mses = [r["mse"] for r in rs]
        accs = [r["accuracy"] for r in rs]
        out.append({"rank": rank, "heads": rs[0]["heads"], "qk_parameters": rs[0]["qk_parameters"],
                    "seeds": len(rs), "mse_mean": sum(mses) / len(mses),
                    "mse_min": min(mses), "mse_max": max(mses),
                    "accuracy_mean": sum(accs) / len(accs)})
    return out
