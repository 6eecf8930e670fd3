"""Self-contained HTML pages: inline CSS, PNG figures embedded as base64, no scripts,
no external resources (the page works offline and behind any firewall)."""
from __future__ import annotations

import base64
import html
import io
import re

FONTS = 'system-ui,-apple-system,"Segoe UI","Noto Sans CJK JP","Hiragino Sans",sans-serif'
CSS = """
body{margin:2em auto;max-width:1340px;color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right}
th{max-width:9em}table.kv td{text-align:left}#summary td,#summary-cost td{white-space:nowrap}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
tr.baseline td{background:#fffbe6}.up{color:#127a12}.down{color:#b00}
figure{display:inline-block;margin:.5em 1em .5em 0}figcaption{font-size:.9em;color:#555}
.note{color:#555;font-size:.9em}.rec{background:#eef6ff;padding:.7em 1em;border-left:4px solid #37c}
.warn{background:#fff0f0;padding:.7em 1em;border-left:4px solid #c33}
"""


def esc(value) -> str:
    return html.escape(str(value))


def figure_png(fig) -> str:
    """Render a matplotlib figure to a base64 PNG data URI and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def img(uri: str, caption: str, plot_id: str) -> str:
    return (f'<figure><img class="plot" id="{esc(plot_id)}" src="{uri}" alt="{esc(caption)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def table(header: list[str], rows: list[list], row_classes: list[str] | None = None,
          table_id: str = "", css_class: str = "") -> str:
    """Cells are escaped unless wrapped in ``Raw``."""
    def cell(v):
        return v.html if isinstance(v, Raw) else esc(v)
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>")
    tid = f' id="{esc(table_id)}"' if table_id else ""
    tid += f' class="{esc(css_class)}"' if css_class else ""
    return f"<table{tid}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class Raw:
    """Trusted HTML for a table cell."""

    def __init__(self, html_text: str):
        self.html = html_text


def page(title: str, lang: str, body: str) -> str:
    """The whole document. A Japanese page, or any page with kana/kanji in it, embeds
    the subset of the bundled Japanese font its characters need (`fonts.py`) and
    names it first, so it renders the same with or without CJK fonts installed."""
    from ranksearch.analysis import has_japanese

    fonts, face = FONTS, ""
    if lang == "ja" or has_japanese(title) or has_japanese(body):
        from .fonts import CSS_FAMILY, font_face_css

        face = font_face_css(_visible_chars(title + body))
        fonts = f"'{CSS_FAMILY}',{FONTS}"
    return (f'<!DOCTYPE html><html lang="{esc(lang)}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{face}body{{font-family:{fonts}}}{CSS}</style>"
            f"</head><body><h1>{esc(title)}</h1>{body}</body></html>")


_DATA_URI = re.compile(r"data:[^\"')]*")


def _visible_chars(markup: str) -> str:
    """The characters the page can show: markup without embedded data URIs, unescaped."""
    return "".join(set(html.unescape(_DATA_URI.sub("", markup))))


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
