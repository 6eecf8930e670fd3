"""The live-experiment readout as text (``ranksearch ab status``) and as a
self-contained HTML page in the offline report's style (``ranksearch ab report``),
in English or Japanese. A pure function of ``ExperimentReport``'s JSON."""
from __future__ import annotations

import time
from typing import Any

from .page import esc, page, table
from .strings import columns, text



def _f(x, digits=3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _p(x) -> str:
    return "-" if x is None else f"{x:.2g}"


def render_text(report: dict[str, Any]) -> str:
    lines = [f"collection {report['collection']}: default {report['default_variant']}, "
             f"weights {report['weights'] or '{}'}, settings {report['settings'] or '{}'}"]
    for name, b in sorted(report["builds"].items()):
        lines.append(f"build {name}: {b['state']} {b['done']}/{b['total']}"
                     + (f" ({b['error']})" if b["error"] else ""))
    for name, s in report["split"].items():
        lines.append(f"split {name}: impressions {s['impressions']} ctr {s['ctr']:.3f} "
                     f"abandonment {s['abandonment']:.3f} mrr {s['mrr_clicks']:.3f}"
                     + (f" p {s['p_vs_default']:.2g}" if "p_vs_default" in s else ""))
    for r in report["interleave"]:
        lines.append(f"interleave {r['variant_a']} vs {r['variant_b']}: {r['impressions']} impressions, "
                     f"wins {r['wins_a']}:{r['wins_b']} ties {r['ties']}, preference A "
                     f"{_f(r['preference_a'])} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] "
                     f"p {r['p_value']:.2g}")
    for r in report["shadow"]:
        lines.append(f"shadow {r['shadow']} beside {r['primary']}: {r['requests']} requests, overlap "
                     f"{r['overlap_mean']:.3f}, tau {_f(r['tau_mean'])}, p50 {r['primary_ms_p50']:.1f}/"
                     f"{r['shadow_ms_p50']:.1f} ms")
    c = report["shadow_counts"]
    lines.append(f"shadow searches: {c['done']} done, {c['dropped']} dropped, {c['failed']} failed")
    return "\n".join(lines)


def render_html(report: dict[str, Any], lang: str = "en") -> str:
    def t(key: str, **fmt) -> str:
        return text(lang, "ab_" + key, **fmt)

    state = t("state", default=report["default_variant"], weights=report["weights"] or "{}",
              settings=report["settings"] or "{}")
    body = [f"<p>{esc(state)}</p>"]

    def section(key: str, rows: list[list], note: str = "") -> None:
        body.append(f"<h2>{esc(t(key))}</h2>")
        body.append(table(columns(lang, f"ab_{key}_head"), rows) if rows else f"<p>{esc(t('none'))}</p>")
        if note:
            body.append(f"<p>{esc(note)}</p>")

    section("split",
            [[n, s["impressions"], _f(s["ctr"]), _f(s["abandonment"]), _f(s["mrr_clicks"]),
              _p(s.get("p_vs_default"))] for n, s in report["split"].items()])
    small = any((r["wins_a"] + r["wins_b"]) < 100 for r in report["interleave"])
    section("inter",
            [[r["variant_a"], r["variant_b"], r["impressions"], r["wins_a"], r["wins_b"], r["ties"],
              _f(r["preference_a"]), f"{r['ci95'][0]:.3f}–{r['ci95'][1]:.3f}", _p(r["p_value"])]
             for r in report["interleave"]],
            t("inter_note") + (" " + t("small") if small else ""))
    section("shadow",
            [[r["primary"], r["shadow"], r["requests"], _f(r["overlap_mean"]), _f(r["tau_mean"]),
              f"{r['primary_ms_p50']:.1f} / {r['primary_ms_p95']:.1f}",
              f"{r['shadow_ms_p50']:.1f} / {r['shadow_ms_p95']:.1f}"] for r in report["shadow"]],
            t("shadow_counts", **report["shadow_counts"]))
    section("builds",
            [[n, b["state"], b["done"], b["total"], b["error"]] for n, b in sorted(report["builds"].items())])
    section("audit",
            [[time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["at"])), e["who"], e["action"],
              ", ".join(f"{k}={v}" for k, v in sorted(e["details"].items()))] for e in report["audit"]])
    return page(t("title", collection=report["collection"]), lang, "".join(body))
