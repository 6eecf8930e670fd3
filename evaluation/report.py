"""report.html for an eval results folder: a pure function of results.json (plus an
optional ROI file). Self-contained: inline CSS, base64 PNG figures, no scripts."""
from __future__ import annotations

import functools
from pathlib import Path

from .hybrid_report import hybrid_section
from .metrics import HEADLINE
from .page import Raw, esc, figure_png, fmt, img, page, table
from .results import SMALL_SAMPLE_QUERIES, load_results, pareto, precision_delta, query_latency_ms, significance
from .strings import text

#: a uniform-attention ablation that moves nDCG@10 by less than this means the encoder
#: does not really use attention (DESIGN.md)
ATTENTION_DROP_THRESHOLD = 0.01


def _plot_rank(v: dict) -> float | None:
    rank = v.get("rank")
    if isinstance(rank, list):
        return float(sum(rank)) / len(rank) if rank else None
    return None if rank is None else float(rank)


def _mpl():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _localised(plot):
    """Run a plot function with matplotlib settings for its ``lang`` (the bundled
    Japanese font for ja), so every label, legend and tick is drawn, never a box."""
    @functools.wraps(plot)
    def wrapper(results: dict, lang: str = "en") -> str:
        from .fonts import plot_rc

        with _mpl().rc_context(plot_rc(lang)):
            return plot(results, lang)
    return wrapper


def _kind(lang: str, kind: str) -> str:
    """Plot label of a variant family (convert / train / folder)."""
    key = f"kind_{kind}"
    label = text(lang, key)
    return kind if label.startswith("[[") else label


def _families(results: dict) -> dict[str, list[dict]]:
    """Dense variants grouped by source kind (convert / train / folder) for rank plots."""
    fam: dict[str, list[dict]] = {}
    for v in results["variants"]:
        if v["kind"] not in ("bm25", "hybrid") and _plot_rank(v) is not None:
            fam.setdefault(v["kind"], []).append(v)
    return {k: sorted(vs, key=_plot_rank) for k, vs in fam.items()}


def _bm25(results: dict) -> dict | None:
    return next((v for v in results["variants"] if v["kind"] == "bm25"), None)


@_localised
def plot_quality_rank(results: dict, lang: str = "en") -> str:
    fig, ax = _mpl().subplots(figsize=(5.2, 3.6))
    for kind, vs in _families(results).items():
        xs = [_plot_rank(v) for v in vs]
        ys = [v["metrics"][HEADLINE] for v in vs]
        err = [v["spread"][HEADLINE]["std"] for v in vs]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=_kind(lang, kind))
        for v, x, y in zip(vs, xs, ys):
            ax.annotate(v["name"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    bm = _bm25(results)
    if bm:
        ax.axhline(bm["metrics"][HEADLINE], color="#b33", ls="--",
                   label=text(lang, "plot_legend_bm25", analyzer=bm.get("analyzer") or "standard"))
    ax.set_xscale("log", base=2)
    ax.set_xlabel(text(lang, "plot_axis_rank"))
    ax.set_ylabel("nDCG@10")
    ax.grid(alpha=.3)
    ax.legend(fontsize=8)
    return figure_png(fig)


@_localised
def plot_latency_rank(results: dict, lang: str = "en") -> str:
    fig, ax = _mpl().subplots(figsize=(5.2, 3.6))
    for kind, vs in _families(results).items():
        xs = [_plot_rank(v) for v in vs]
        p50 = [query_latency_ms(v) for v in vs]
        p95 = [(v["latency"]["query_encode"]["p95_ms"] or 0) + (v["latency"]["search"]["p95_ms"] or 0)
               for v in vs]
        ax.plot(xs, p50, "o-", label=f"{_kind(lang, kind)} p50")
        ax.plot(xs, p95, "s:", label=f"{_kind(lang, kind)} p95")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(text(lang, "plot_axis_rank"))
    ax.set_ylabel(text(lang, "plot_axis_latency"))
    ax.grid(alpha=.3)
    ax.legend(fontsize=8)
    return figure_png(fig)


@_localised
def plot_pareto(results: dict, lang: str = "en") -> str:
    fig, ax = _mpl().subplots(figsize=(5.6, 3.8))
    pts = [(v["name"], query_latency_ms(v), v["metrics"][HEADLINE]) for v in results["variants"]]
    front = set(pareto(pts))
    markers = {"fp32": "o", "bf16": "D", "int8": "^"}  # precision, the second axis beside rank
    precision = {v["name"]: v.get("precision") or "fp32" for v in results["variants"]}
    for name, x, y in pts:
        on = name in front
        ax.scatter([x], [y], color="#137" if on else "#999", s=40 if on else 25, zorder=3,
                   marker=markers.get(precision[name], "o"))
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    fx = sorted((p for p in pts if p[0] in front), key=lambda p: p[1])
    ax.step([p[1] for p in fx], [p[2] for p in fx], where="post", color="#137",
            label=text(lang, "plot_legend_pareto"))
    for p, m in markers.items():
        if p in precision.values():
            ax.scatter([], [], color="#555", marker=m, label=p)
    ax.set_xlabel(text(lang, "plot_axis_latency_p50"))
    ax.set_ylabel("nDCG@10")
    ax.grid(alpha=.3)
    ax.legend(fontsize=8)
    return figure_png(fig)


def _marker(results: dict, name: str, metric: str) -> Raw:
    if name == results["baseline"]:
        return Raw("")
    sig = significance(results, results["baseline"], name, metric)
    return Raw({"up": "<span class='up'>▲</span>", "down": "<span class='down'>▼</span>"}
               .get(sig["direction"], "–"))


def _ms_pair(d: dict | None) -> str:
    if not d or d.get("p50_ms") is None:
        return "–"
    return f"{d['p50_ms']:.2f} / {d['p95_ms']:.2f}"


def _rank_cell(v: dict) -> str:
    rank = v.get("rank")
    if rank is None:
        return "–"
    return str(rank[0]) if isinstance(rank, list) and len(set(rank)) == 1 else str(rank)


def _name_cell(results: dict, v: dict, lang: str) -> str:
    return v["name"] + (f" ({text(lang, 'baseline_marker')})" if v["name"] == results["baseline"] else "")


def _summary_table(results: dict, lang: str) -> str:
    """Quality per variant (id ``summary``), then cost and latency (``summary-cost``):
    two tables that each fit a 1,400 px window instead of one that runs off it."""
    t = lambda k: text(lang, k)  # noqa: E731
    has_e2e = any(v["latency"].get("end_to_end") for v in results["variants"])
    quality, cost_rows, classes = [], [], []
    for v in results["variants"]:
        m, lat, cost = v["metrics"], v["latency"], v["cost"]
        sd = v["spread"][HEADLINE]["std"]
        ndcg = fmt(m[HEADLINE], 4) + (f" ± {sd:.4f}" if len(v["seeds"]) > 1 else "")
        name = _name_cell(results, v, lang)
        delta = precision_delta(results, v)
        quality.append([name, _rank_cell(v), v.get("precision") or "–", v.get("heads") or "–", ndcg,
                        "–" if delta is None else f"{delta:+.4f}",
                        _marker(results, v["name"], HEADLINE), fmt(m["mrr@10"], 4),
                        fmt(m["recall@1"], 3), fmt(m["recall@10"], 3), fmt(m["recall@100"], 3),
                        len(v["seeds"])])
        dps = lat.get("corpus_encode_docs_per_s") or lat.get("index_docs_per_s")
        row = [name, "–" if dps is None else f"{dps:.0f}", _ms_pair(lat.get("query_encode")),
               _ms_pair(lat.get("search"))]
        if has_e2e:
            row.append(_ms_pair(lat.get("end_to_end")))
        flops = cost.get("flops_per_token")
        row += ["–" if not flops else f"{flops / 1e9:.4f}",
                "–" if not cost.get("parameters") else f"{cost['parameters'] / 1e6:.2f}",
                "–" if not cost.get("size_bytes") else f"{cost['size_bytes'] / 2**20:.1f}",
                "–" if cost.get("index_bytes") is None else f"{cost['index_bytes'] / 2**20:.2f}",
                fmt(v.get("farthest_agreement"), 3)]
        cost_rows.append(row)
        classes.append("baseline" if v["name"] == results["baseline"] else "")
    sig = results["significance"]
    legend = text(lang, "sig_legend", test=sig["test"], max_p=sig["max_p"])
    quality_head = [t("col_variant"), t("col_rank"), t("col_precision"), t("col_heads"), t("col_ndcg"),
                    t("col_precision_delta"), t("col_sig"),
                    t("col_mrr"), t("col_r1"), t("col_r10"), t("col_r100"), t("col_seeds")]
    cost_head = [t("col_variant"), t("col_enc_qps"), t("col_qenc"), t("col_search")] + \
                ([t("col_e2e")] if has_e2e else []) + \
                [t("col_flops"), t("col_params"), t("col_size"), t("col_index"), t("col_far")]
    return (table(quality_head, quality, classes, table_id="summary")
            + f"<p class='note'>{esc(legend)}</p>"
            + f"<h3>{esc(t('section_summary_cost'))}</h3>"
            + table(cost_head, cost_rows, classes, table_id="summary-cost"))


def _significance_table(results: dict, lang: str) -> str:
    t = lambda k: text(lang, k)  # noqa: E731
    rows = []
    for v in results["variants"]:
        if v["name"] == results["baseline"]:
            continue
        for metric in (HEADLINE, "mrr@10", "recall@10"):
            s = significance(results, results["baseline"], v["name"], metric)
            rows.append([v["name"], metric, f"{s['delta']:+.4f}", f"{s['p_value']:.4g}",
                         _marker(results, v["name"], metric), results["significance"]["test"]])
    return table([t("col_variant"), t("col_metric"), t("col_delta"), t("col_pvalue"), t("col_sig"),
                  t("col_test")], rows, table_id="significance")


def _attention_section(results: dict, lang: str) -> str:
    checks = [v for v in results["variants"] if (v.get("attention_use") or {}).get("available")]
    if not checks:
        return f"<p>{esc(text(lang, 'attention_none'))}</p>"
    parts = [f"<p>{esc(text(lang, 'attention_intro'))}</p>"]
    for v in checks:
        a = v["attention_use"]
        parts.append("<p>" + esc(text(lang, "attention_drop", name=v["name"], full=fmt(a["ndcg@10"], 4),
                                      ablated=fmt(a["ablated_ndcg@10"], 4), drop=f"{a['drop']:+.4f}")) + "</p>")
        parts.append(table([text(lang, "col_layer"), text(lang, "col_entropy")],
                           [[i, fmt(e, 3)] for i, e in enumerate(a["entropy_per_layer"])]))
        uses = a["drop"] >= ATTENTION_DROP_THRESHOLD
        key = "attention_verdict_uses" if uses else "attention_verdict_unused"
        parts.append(f"<p class='{'rec' if uses else 'warn'}' id='attention-verdict'>"
                     + esc(text(lang, key, threshold=ATTENTION_DROP_THRESHOLD)) + "</p>")
    return "".join(parts)


def _roi_section(results: dict, roi: dict | None, lang: str) -> str:
    if not roi:
        return f"<p>{esc(text(lang, 'roi_none'))}</p>"
    from .roi import assumptions, money, roi_rows

    c = roi["currency"]
    rows = []
    for r in roi_rows(results, roi):
        ok = r["within_latency_budget"]
        rows.append([r["variant"], fmt(r["hit_rate@10"], 3), money(r["delta_value_per_day"], c, lang),
                     money(r["delta_compute_per_day"], c, lang), money(r["net_per_day"], c, lang),
                     money(r["net_per_year"], c, lang, decimals=0),
                     "–" if ok is None else text(lang, "yes" if ok else "no")])
    t = lambda k: text(lang, k)  # noqa: E731
    out = [f"<p>{esc(t('roi_intro'))}</p>",
           table([t("col_variant"), t("roi_hits"), t("roi_value"), t("roi_compute"), t("roi_daily"),
                  t("roi_yearly"), t("roi_latency_ok")], rows, table_id="roi"),
           f"<h3>{esc(t('roi_assumptions'))}</h3>",
           table(["", ""], [[k, v] for k, v in assumptions(results, roi, lang)],
                 table_id="roi-assumptions", css_class="kv")]
    return "".join(out)


def _setup_section(results: dict, lang: str) -> str:
    hw, ver, corpus = results["hardware"], results["versions"], results["corpus"]

    def hw_label(key: str) -> str:
        label = text(lang, f"hw_{key}")
        return key if label.startswith("[[") else label

    parts = [f"<p class='note'>{esc(text(lang, 'setup_machine_note', threads=hw.get('threads_used')))}</p>",
             f"<h3>{esc(text(lang, 'setup_corpus'))}</h3>",
             f"<p>{esc(corpus['path'])}: {esc(text(lang, 'corpus_stats', docs=corpus['documents'], queries=corpus['queries'], qrels=corpus['judgements']))}</p>"]
    lexical = results.get("lexical")
    if lexical:
        source = text(lang, f"source_{lexical['from']}")
        parts.append(f"<p class='note' id='lexical'>{esc(text(lang, 'lexical_note', analyzer=lexical['analyzer'], language=lexical['language'], source=source))}</p>")
    parts += [f"<h3>{esc(text(lang, 'setup_hardware'))}</h3>",
              table(["", ""], [[hw_label(k), v] for k, v in hw.items()], css_class="kv"),
              f"<h3>{esc(text(lang, 'setup_versions'))}</h3>",
              table(["", ""], [[k, v] for k, v in ver.items()], css_class="kv")]
    return "".join(parts)


def _small_sample(results: dict, lang: str) -> str:
    n = results["corpus"].get("queries") or 0
    if n >= SMALL_SAMPLE_QUERIES:
        return ""
    return (f"<p class='warn' id='small-sample'>"
            f"{esc(text(lang, 'small_sample', n=n, minimum=SMALL_SAMPLE_QUERIES))}</p>")


def render_report(results: dict, lang: str = "en", roi: dict | None = None) -> str:
    roi = roi if roi is not None else results.get("roi_inputs")
    corpus = results["corpus"].get("name") or results["corpus"]["path"]
    title = text(lang, "eval_title", corpus=corpus)
    rec = results.get("recommendation") or {}
    h2 = lambda k: f"<h2>{esc(text(lang, k))}</h2>"  # noqa: E731
    hybrid_html = hybrid_section(results, lang)  # '' without hybrid variants
    if rec.get("name"):
        rec_html = text(lang, "recommend", name=esc(rec["name"]), ndcg=fmt(rec["ndcg@10"], 4),
                        best=esc(rec["best"]), best_ndcg=fmt(rec["best_ndcg@10"], 4))
        if rec["name"] == rec["best"]:
            rec_html += " " + esc(text(lang, "recommend_same"))
    else:
        rec_html = esc(text(lang, "recommend_none"))
    body = [f"<p class='note'>{esc(text(lang, 'generated', created=results.get('created', ''), git=results.get('git_revision', '')))}</p>",
            h2("section_recommendation"), f"<p class='rec' id='recommendation'>{rec_html}</p>",
            _small_sample(results, lang),
            h2("section_attention"), _attention_section(results, lang),
            h2("section_summary"), _summary_table(results, lang),
            h2("section_plots"),
            img(plot_quality_rank(results, lang), text(lang, "plot_quality_rank"), "plot-quality-rank"),
            img(plot_latency_rank(results, lang), text(lang, "plot_latency_rank"), "plot-latency-rank"),
            img(plot_pareto(results, lang), text(lang, "plot_pareto"), "plot-pareto"),
            *([h2("section_hybrid"), hybrid_html] if hybrid_html else []),
            h2("section_significance"), _significance_table(results, lang),
            h2("section_roi"), _roi_section(results, roi, lang),
            h2("section_setup"), _setup_section(results, lang),
            f"<p class='note'>{esc(text(lang, 'footer', version=results['versions'].get('ranksearch', '')))}</p>"]
    return page(title, lang, "".join(body))


def write_report(folder: Path, lang: str = "en", roi_file: Path | None = None) -> Path:
    results = load_results(folder)
    roi = None
    if roi_file is not None:
        from .roi import load_roi
        roi = load_roi(roi_file)
    name = "report.html" if lang == "en" else f"report.{lang}.html"
    path = Path(folder) / name
    path.write_text(render_report(results, lang, roi), encoding="utf-8")
    return path
