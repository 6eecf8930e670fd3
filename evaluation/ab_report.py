"""The live-experiment readout as text (``ranksearch ab status``) and as a
self-contained HTML page in the offline report's style (``ranksearch ab report``),
in English or Japanese. A pure function of ``ExperimentReport``'s JSON."""
from __future__ import annotations

import time
from typing import Any

from .page import esc, page, table

_STRINGS = {
    "en": {
        "title": "Live experiment: {collection}",
        "state": "Default variant: {default}. Split weights: {weights}. Settings: {settings}.",
        "split": "Split traffic (per answering variant)",
        "split_head": ["variant", "impressions", "CTR", "abandonment", "MRR of clicks", "p vs default"],
        "inter": "Interleaving (team draft)",
        "inter_head": ["A", "B", "impressions", "A wins", "B wins", "ties", "preference for A",
                       "95% CI", "p (sign test)"],
        "inter_note": "A tie includes impressions without a click. The sign test compares A wins "
                      "with B wins (exact binomial, p = 0.5); p < 0.05 means users prefer one side.",
        "shadow": "Shadow comparisons",
        "shadow_head": ["primary", "shadow", "requests", "overlap@k", "Kendall tau",
                        "primary p50/p95 ms", "shadow p50/p95 ms"],
        "shadow_counts": "Shadow searches: {done} done, {dropped} dropped (queue full), {failed} failed.",
        "builds": "Variant builds",
        "builds_head": ["variant", "state", "documents", "of", "error"],
        "audit": "Audit log (newest first)",
        "audit_head": ["time (UTC)", "who", "action", "details"],
        "none": "none yet",
        "small": "Fewer than 100 decided impressions: treat the preference as preliminary.",
    },
    "ja": {
        "title": "ライブ実験: {collection}",
        "state": "既定のバリアント: {default}。トラフィック配分: {weights}。設定: {settings}。",
        "split": "トラフィック分割(応答したバリアント別)",
        "split_head": ["バリアント", "表示回数", "クリック率", "離脱率", "クリックのMRR", "既定とのp値"],
        "inter": "インターリービング(チームドラフト)",
        "inter_head": ["A", "B", "表示回数", "Aの勝ち", "Bの勝ち", "引き分け", "Aが選ばれる割合",
                       "95%信頼区間", "p値(符号検定)"],
        "inter_note": "引き分けにはクリックのない表示を含みます。符号検定はAの勝ちとBの勝ちを"
                      "比較します(二項検定、p = 0.5)。p < 0.05 ならユーザーはどちらかを好んでいます。",
        "shadow": "シャドー比較",
        "shadow_head": ["本番", "シャドー", "リクエスト数", "overlap@k", "ケンドールのτ",
                        "本番 p50/p95 ms", "シャドー p50/p95 ms"],
        "shadow_counts": "シャドー検索: 完了 {done}、破棄 {dropped}(キュー満杯)、失敗 {failed}。",
        "builds": "バリアントの構築",
        "builds_head": ["バリアント", "状態", "文書数", "全体", "エラー"],
        "audit": "監査ログ(新しい順)",
        "audit_head": ["時刻 (UTC)", "実行者", "操作", "詳細"],
        "none": "まだありません",
        "small": "判定のついた表示が100件未満です。好みの判定は暫定的なものとして扱ってください。",
    },
}


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
    t = _STRINGS[lang]
    body = [f"<p>{esc(t['state'].format(default=report['default_variant'], weights=report['weights'] or '{}', settings=report['settings'] or '{}'))}</p>"]

    def section(title: str, header: list[str], rows: list[list], note: str = "") -> None:
        body.append(f"<h2>{esc(title)}</h2>")
        body.append(table(header, rows) if rows else f"<p>{esc(t['none'])}</p>")
        if note:
            body.append(f"<p>{esc(note)}</p>")

    section(t["split"], t["split_head"],
            [[n, s["impressions"], _f(s["ctr"]), _f(s["abandonment"]), _f(s["mrr_clicks"]),
              _p(s.get("p_vs_default"))] for n, s in report["split"].items()])
    small = any((r["wins_a"] + r["wins_b"]) < 100 for r in report["interleave"])
    section(t["inter"], t["inter_head"],
            [[r["variant_a"], r["variant_b"], r["impressions"], r["wins_a"], r["wins_b"], r["ties"],
              _f(r["preference_a"]), f"{r['ci95'][0]:.3f}–{r['ci95'][1]:.3f}", _p(r["p_value"])]
             for r in report["interleave"]],
            t["inter_note"] + (" " + t["small"] if small else ""))
    section(t["shadow"], t["shadow_head"],
            [[r["primary"], r["shadow"], r["requests"], _f(r["overlap_mean"]), _f(r["tau_mean"]),
              f"{r['primary_ms_p50']:.1f} / {r['primary_ms_p95']:.1f}",
              f"{r['shadow_ms_p50']:.1f} / {r['shadow_ms_p95']:.1f}"] for r in report["shadow"]],
            t["shadow_counts"].format(**report["shadow_counts"]))
    section(t["builds"], t["builds_head"],
            [[n, b["state"], b["done"], b["total"], b["error"]] for n, b in sorted(report["builds"].items())])
    section(t["audit"], t["audit_head"],
            [[time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["at"])), e["who"], e["action"],
              ", ".join(f"{k}={v}" for k, v in sorted(e["details"].items()))] for e in report["audit"]])
    return page(t["title"].format(collection=report["collection"]), lang, "".join(body))
