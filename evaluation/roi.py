"""Business inputs -> a daily and yearly figure per variant, relative to the baseline.

```yaml
queries_per_day: 50000
value_per_answered_query: 0.02   # money gained when a relevant document is in the top 10
cost_per_miss: 0.0               # money lost when none is (either or both may be given)
server_cost_per_hour: 1.50       # one server process answering one query at a time
latency_budget_ms: 50            # p95 of query encoding + search
currency: EUR
days_per_year: 365
notes: "..."                     # optional: where the figures come from (printed as is)
```

Money is printed with the currency's usual decimals (none for JPY, "円" in a
Japanese report); see `specs/roi/example_jpy.yaml` for a yen example.

Model (every assumption is printed beside the figures):
- a query is *answered* when hit_rate@10 says a relevant document is in the top 10;
- Δ value/day = queries/day × Δhit_rate × (value per answered query + cost per miss);
- compute cost/day = queries/day × measured single-query time (encode p50 + search p50)
  / 3600 × server cost/hour; Δ against the baseline;
- net/day = Δ value − Δ compute; net/year = net/day × days/year.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from ranksearch.errors import ConfigError

from .results import query_latency_ms


@dataclass
class RoiInputs:
    queries_per_day: float
    server_cost_per_hour: float
    value_per_answered_query: float = 0.0
    cost_per_miss: float = 0.0
    latency_budget_ms: float | None = None
    currency: str = "USD"
    days_per_year: int = 365
    notes: str = ""

    def __post_init__(self) -> None:
        for f in ("queries_per_day", "server_cost_per_hour", "value_per_answered_query",
                  "cost_per_miss", "days_per_year"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"roi.{f}", f"must be a number >= 0, got {v!r}")
        for f in ("currency", "notes"):
            if not isinstance(getattr(self, f), str):
                raise ConfigError(f"roi.{f}", f"must be a string, got {getattr(self, f)!r}")
        if self.value_per_answered_query == 0 and self.cost_per_miss == 0:
            raise ConfigError("roi.value_per_answered_query",
                              "give value_per_answered_query or cost_per_miss (> 0)")


def parse_roi(data) -> dict:
    if not isinstance(data, dict):
        raise ConfigError("roi", f"must be a mapping, got {type(data).__name__}")
    known = [f.name for f in fields(RoiInputs)]
    for key in data:
        if key not in known:
            raise ConfigError(f"roi.{key}", f"unknown key (known: {', '.join(known)})")
    for key in ("queries_per_day", "server_cost_per_hour"):
        if key not in data:
            raise ConfigError(f"roi.{key}", "is required")
    return asdict(RoiInputs(**data))


def load_roi(path: Path | str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("roi", f"{path} not found")
    try:
        return parse_roi(yaml.safe_load(path.read_text()))
    except yaml.YAMLError as exc:
        raise ConfigError("roi", f"{path}: invalid YAML ({exc})") from None


def _p95_ms(v: dict) -> float:
    lat = v["latency"]
    return ((lat.get("query_encode") or {}).get("p95_ms") or 0.0) + (lat["search"]["p95_ms"] or 0.0)


def roi_rows(results: dict, roi: dict) -> list[dict]:
    base = next(v for v in results["variants"] if v["name"] == results["baseline"])
    per_query_value = roi["value_per_answered_query"] + roi["cost_per_miss"]
    qpd = roi["queries_per_day"]

    def compute_cost(v):
        return qpd * query_latency_ms(v) / 1000.0 / 3600.0 * roi["server_cost_per_hour"]

    rows = []
    for v in results["variants"]:
        d_hit = v["metrics"]["hit_rate@10"] - base["metrics"]["hit_rate@10"]
        d_value = qpd * d_hit * per_query_value
        d_compute = compute_cost(v) - compute_cost(base)
        net = d_value - d_compute
        budget = roi.get("latency_budget_ms")
        rows.append({"variant": v["name"], "hit_rate@10": v["metrics"]["hit_rate@10"],
                     "delta_value_per_day": d_value, "compute_cost_per_day": compute_cost(v),
                     "delta_compute_per_day": d_compute, "net_per_day": net,
                     "net_per_year": net * roi["days_per_year"],
                     "p95_ms": _p95_ms(v),
                     "within_latency_budget": None if budget is None else _p95_ms(v) <= budget})
    return rows


#: currencies written without minor units
_NO_DECIMALS = {"JPY", "KRW"}


def money(value: float, currency: str, lang: str = "en", signed: bool = True,
          decimals: int | None = None) -> str:
    """``+1,234.50 EUR``; yen without decimals, ``+1,235 円`` in Japanese."""
    if decimals is None:
        decimals = 0 if currency in _NO_DECIMALS else 2
    unit = "円" if currency == "JPY" and lang == "ja" else currency
    return f"{value:{'+' if signed else ''},.{decimals}f} {unit}"


def assumptions(results: dict, roi: dict, lang: str = "en") -> list[tuple[str, str]]:
    from .strings import text

    c = roi["currency"]
    t = lambda key, **kw: text(lang, key, **kw)  # noqa: E731
    threads = results.get("hardware", {}).get("threads_used")
    out = [(t("roi_queries_per_day"), f"{roi['queries_per_day']:,.0f}"),
           (t("roi_value_answered"), money(roi["value_per_answered_query"], c, lang, False)),
           (t("roi_cost_miss"), money(roi["cost_per_miss"], c, lang, False)),
           (t("roi_server_cost"), money(roi["server_cost_per_hour"], c, lang, False)),
           (t("roi_budget"),
            t("none") if roi.get("latency_budget_ms") is None else f"{roi['latency_budget_ms']} ms"),
           (t("roi_days"), str(roi["days_per_year"])),
           (t("roi_quality_measure"), t("roi_quality_measure_text")),
           (t("roi_compute_measure"), t("roi_compute_measure_text", threads=threads)),
           (t("roi_baseline"), results["baseline"])]
    if roi.get("notes"):
        out.append((t("roi_notes"), roi["notes"]))
    return out
