"""The report's hybrid section: dense, lexical and hybrid side by side.

A grouped bar chart (nDCG@10 and MRR@10 of every hybrid and of the runs it fuses)
and a table of each hybrid's fusion parameters with its paired significance against
each component. Pure functions of results.json, like the rest of the report.
"""
from __future__ import annotations

from .metrics import HEADLINE
from .page import Raw, esc, figure_png, fmt, img, table
from .results import significance
from .strings import text

PLOT_METRICS = (HEADLINE, "mrr@10")
_ARROWS = {"up": "▲", "down": "▼", "": "–"}
_DENSE_COLOURS = ["#4a6fa5", "#8fa9cf", "#2c3e66"]
_LEXICAL_COLOUR = "#c0392b"
_HYBRID_COLOURS = ["#2a9d4b", "#f28e2b", "#8c5fb0", "#d4a017", "#17a2a2"]


def hybrids(results: dict) -> list[dict]:
    return [v for v in results["variants"] if v["kind"] == "hybrid"]


def _components(results: dict) -> list[dict]:
    """The dense and lexical variants the hybrids fuse, in results order."""
    used = {n for h in hybrids(results) for n in h["fusion"]["components"].values()}
    return [v for v in results["variants"] if v["name"] in used]


def _versus(results: dict, hybrid: dict, role: str, metric: str) -> dict:
    """``hybrid`` against its ``role`` component ('dense' or 'lexical'): direction is the
    hybrid's ('up' = significantly better)."""
    return significance(results, hybrid["fusion"]["components"][role], hybrid["name"], metric)


def _mark(sig: dict) -> str:
    return _ARROWS[sig["direction"]]


def plot_hybrid(results: dict) -> str:
    """Grouped bars: one group per metric, one bar per component and hybrid; above each
    hybrid bar its significance against the dense (D) and lexical (L) component."""
    from .report import _mpl

    plt = _mpl()
    bars = _components(results) + hybrids(results)
    fig, ax = plt.subplots(figsize=(max(5.2, 1.2 + 0.9 * len(bars)), 3.8))
    width = 0.8 / len(bars)
    palette = {"dense": iter(_DENSE_COLOURS * len(bars)), "hybrid": iter(_HYBRID_COLOURS * len(bars)),
               "bm25": iter([_LEXICAL_COLOUR] * len(bars))}
    for i, v in enumerate(bars):
        xs = [m + (i - (len(bars) - 1) / 2) * width for m in range(len(PLOT_METRICS))]
        ys = [v["metrics"][m] for m in PLOT_METRICS]
        role = v["kind"] if v["kind"] in ("bm25", "hybrid") else "dense"
        ax.bar(xs, ys, width * 0.92, label=v["name"], color=next(palette[role]),
               edgecolor="#333", linewidth=0.5)
        if v["kind"] == "hybrid":
            for x, y, m in zip(xs, ys, PLOT_METRICS):
                note = "D" + _mark(_versus(results, v, "dense", m)) + "\nL" + \
                       _mark(_versus(results, v, "lexical", m))
                ax.annotate(note, (x, y), textcoords="offset points", xytext=(0, 2),
                            ha="center", va="bottom", fontsize=7, linespacing=0.9)
    ax.set_xticks(range(len(PLOT_METRICS)), ["nDCG@10", "MRR@10"])
    ax.set_ylim(0, min(1.0, max(v["metrics"][m] for v in bars for m in PLOT_METRICS) * 1.25 + 0.02))
    ax.set_ylabel("score (evaluated split)")
    ax.grid(axis="y", alpha=.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure_png(fig)


def _params(fusion: dict) -> str:
    p = fusion["params"]
    parts = ([f"k={p['k']}"] if "k" in p else []) + \
            [f"w=({', '.join(f'{w:g}' for w in p['weights'])})"]
    if fusion["depth"]:
        parts.append(f"depth={fusion['depth']}")
    return ", ".join(parts)


def _fitted(fusion: dict, lang: str) -> str:
    on = fusion.get("fitted_on")
    if not on:
        return text(lang, "hybrid_from_spec")
    return text(lang, "hybrid_fitted", split=on["split"], queries=on["queries"],
                metric=on["metric"], score=fmt(on["train_score"], 4))


def hybrid_section(results: dict, lang: str) -> str:
    """The section's HTML ('' when the spec has no hybrid variant)."""
    found = hybrids(results)
    if not found:
        return ""
    t = lambda k: text(lang, k)  # noqa: E731
    rows = []
    for h in found:
        f = h["fusion"]
        name = f["fusion"] if f["fusion"] == "rrf" else f"{f['fusion']} ({f['norm']})"
        row = [h["name"], f"{f['components']['dense']} + {f['components']['lexical']}", name,
               _params(f), _fitted(f, lang)]
        for m in PLOT_METRICS:
            row.append(fmt(h["metrics"][m], 4))
            for role in ("dense", "lexical"):
                s = _versus(results, h, role, m)
                p = "" if s["p_value"] is None else f" (p={s['p_value']:.3g})"
                row.append(Raw(esc(f"{s['delta']:+.4f}") + " " + _mark_html(s) + esc(p)))
        rows.append(row)
    header = [t("col_variant"), t("col_fuses"), t("col_fusion"), t("col_fusion_params"),
              t("col_fitted_on"), t("col_ndcg"), t("col_vs_dense"), t("col_vs_lexical"),
              t("col_mrr"), t("col_vs_dense"), t("col_vs_lexical")]
    sig = results["significance"]
    return "".join([
        f"<p>{esc(t('hybrid_intro'))}</p>",
        img(plot_hybrid(results), t("plot_hybrid"), "plot-hybrid"),
        table(header, rows, table_id="hybrid"),
        f"<p class='note'>{esc(text(lang, 'hybrid_legend', test=sig['test'], max_p=sig['max_p']))}</p>"])


def _mark_html(sig: dict) -> str:
    cls = {"up": "up", "down": "down"}.get(sig["direction"])
    arrow = _ARROWS[sig["direction"]]
    return f"<span class='{cls}'>{arrow}</span>" if cls else arrow


def hybrid_text(results: dict) -> list[str]:
    """The hybrid table as plain-text lines (terminal, issue notes); [] without hybrids."""
    found = hybrids(results)
    if not found:
        return []
    lines = [f"{'hybrid':<14} {'fuses':<14} {'parameters':<22} {'from':<6} "
             + "  ".join(f"{m:>8} {'vs dense (p)':>20} {'vs lexical (p)':>20}" for m in PLOT_METRICS)]
    for h in found:
        f = h["fusion"]
        cells = []
        for m in PLOT_METRICS:
            vs = [_versus(results, h, role, m) for role in ("dense", "lexical")]
            cells.append(f"{h['metrics'][m]:>8.4f} " + " ".join(
                f"{s['delta']:>+8.4f} {_mark(s)} ({s['p_value']:.2g})".rjust(20) for s in vs))
        lines.append(f"{h['name']:<14} {f['components']['dense'] + '+' + f['components']['lexical']:<14} "
                     f"{_params(f):<22} {(f['fitted_on'] or {}).get('split', 'spec'):<6} " + "  ".join(cells))
    return lines
