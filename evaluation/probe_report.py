"""The probe's page: table per rank with the trivial baselines, and an MSE plot.
A pure function of the probe's results.json."""
from __future__ import annotations

import json
from pathlib import Path

from .page import esc, figure_png, fmt, img, page, table
from .strings import TASK_NAMES, text

#: full rank "small error" vs lower rank "far above": the effect is declared reproduced
#: when the best lower rank's mean MSE is at least this many times the full rank's.
EFFECT_RATIO = 3.0


def probe_effect(results: dict) -> dict:
    summary = results["summary"]
    dim = results["config"]["dim"]
    full = [s for s in summary if s["rank"] == dim]
    low = [s for s in summary if s["rank"] < dim]
    if not full or not low:
        return {"reproduced": None}
    full_mse = full[0]["mse_mean"]
    best_low = min(s["mse_min"] for s in low)
    budget_ok = all(s["qk_parameters"] >= full[0]["qk_parameters"] for s in low)
    ratio = best_low / max(full_mse, 1e-12)
    return {"reproduced": bool(ratio >= EFFECT_RATIO and budget_ok), "full_mse": full_mse,
            "best_low_mse": best_low, "ratio": ratio, "equal_or_larger_budget": budget_ok}


_BASELINE_NAMES = {"zero": lambda lang: text(lang, "baseline_zero"),
                   "attention_free": lambda lang: text(lang, "baseline_attention_free")}


def _plot(results: dict, lang: str = "en") -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .fonts import plot_rc

    with plt.rc_context(plot_rc(lang)):
        return _draw(plt, results, lang)


def _draw(plt, results: dict, lang: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 4))
    recs = results["records"]
    ax.scatter([r["rank"] for r in recs], [r["mse"] for r in recs], color="#37c", alpha=.5,
               label=text(lang, "probe_legend_seed"))
    s = results["summary"]
    ax.plot([x["rank"] for x in s], [x["mse_mean"] for x in s], "o-", color="#137",
            label=text(lang, "probe_legend_mean"))
    for name, style in (("zero", "--"), ("attention_free", ":")):
        ax.axhline(results["baselines"][name]["mse"], color="#b33", ls=style,
                   label=text(lang, "probe_legend_baseline", name=_BASELINE_NAMES[name](lang)))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(text(lang, "probe_axis_rank"))
    ax.set_ylabel("MSE")
    ax.set_xticks([x["rank"] for x in s], [str(x["rank"]) for x in s])
    ax.legend(fontsize=8)
    ax.grid(alpha=.3)
    return figure_png(fig)


def render_probe(results: dict, lang: str = "en") -> str:
    cfg = results["config"]
    task = TASK_NAMES[lang if lang in TASK_NAMES else "en"][cfg["task"]]
    title = text(lang, "probe_title", task=task, dim=cfg["dim"], points=cfg["points"])
    budget = text(lang, f"budget_{cfg['heads_budget']}")
    parts = [f"<p class='note'>{esc(text(lang, 'generated', created=results.get('created', ''), git=results.get('git_revision', '')))}</p>",
             f"<p>{esc(text(lang, 'probe_intro', task=task, points=cfg['points'], dim=cfg['dim'], budget=budget))}</p>"]
    eff = probe_effect(results)
    if eff["reproduced"] is not None:
        key = "probe_effect_yes" if eff["reproduced"] else "probe_effect_no"
        cls = "rec" if eff["reproduced"] else "warn"
        parts.append(f"<p class='{cls}' id='effect'>" + esc(text(
            lang, key, full=fmt(eff["full_mse"], 4), best_low=fmt(eff["best_low_mse"], 4),
            ratio=f"{eff['ratio']:.1f}")) + "</p>")
    parts.append(f"<h2>{esc(text(lang, 'section_probe_table'))}</h2>")
    rows = [[s["rank"], s["heads"], s["qk_parameters"], s["seeds"], fmt(s["mse_mean"], 4),
             f"{s['mse_min']:.4f}–{s['mse_max']:.4f}", fmt(s["accuracy_mean"], 3)]
            for s in results["summary"]]
    parts.append(table([text(lang, k) for k in ("col_rank", "col_heads", "col_qk", "col_seeds",
                                                "col_mse", "col_mse_range", "col_acc")],
                       rows, table_id="probe-table"))
    parts.append(f"<h2>{esc(text(lang, 'section_baselines'))}</h2>")
    b = results["baselines"]
    parts.append(table([text(lang, "col_baseline"), "MSE", text(lang, "col_acc")],
                       [[text(lang, "baseline_zero"), fmt(b["zero"]["mse"], 4), fmt(b["zero"]["accuracy"], 3)],
                        [text(lang, "baseline_attention_free"), fmt(b["attention_free"]["mse"], 4),
                         fmt(b["attention_free"]["accuracy"], 3)]], table_id="baselines"))
    parts.append(f"<h2>{esc(text(lang, 'section_probe_plot'))}</h2>")
    parts.append(img(_plot(results, lang), text(lang, "plot_probe"), "plot-probe"))
    parts.append(f"<p class='note'>{esc(text(lang, 'footer', version=results.get('versions', {}).get('ranksearch', '')))}</p>")
    return page(title, lang, "".join(parts))


def write_probe_report(out: Path, lang: str = "en") -> Path:
    results = json.loads((out / "results.json").read_text())
    path = out / "report.html"
    path.write_text(render_probe(results, lang), encoding="utf-8")
    return path


def probe_table_text(results: dict) -> str:
    """Plain-text table for the terminal and the issue note."""
    lines = ["rank heads qk_params  mse_mean  mse_min-max      acc",
             *(f"{s['rank']:>4} {s['heads']:>5} {s['qk_parameters']:>9}  {s['mse_mean']:.4f}  "
               f"{s['mse_min']:.4f}-{s['mse_max']:.4f}  {s['accuracy_mean']:.3f}"
               for s in results["summary"])]
    b = results["baselines"]
    lines.append(f"baseline zero: mse {b['zero']['mse']:.4f} acc {b['zero']['accuracy']:.3f}; "
                 f"attention-free: mse {b['attention_free']['mse']:.4f} "
                 f"acc {b['attention_free']['accuracy']:.3f}")
    return "\n".join(lines)
