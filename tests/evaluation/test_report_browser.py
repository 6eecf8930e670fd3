"""The reports render in a real headless Chromium: no console errors, every plot
loaded (naturalWidth > 0), expected content on the page; a screenshot is taken.

The Japanese report is checked on this machine's fonts as they are: no CJK font
package is installed (``fc-list :lang=ja`` is empty), so every Japanese glyph on the
page must come from the font subset the report embeds."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ranksearch.cli import main

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() and not shutil.which("chromium"),
                                reason="Debian chromium not installed (make test installs it)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")),
                              args=ARGS)
        yield b
        b.close()


def _open(browser, path: Path, shot: Path, width: int = 1200):
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors, failed = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    widths = page.eval_on_selector_all("img.plot", "els => els.map(e => [e.id, e.complete, e.naturalWidth])")
    page.screenshot(path=str(shot), full_page=True)
    text = page.inner_text("body")
    page.close()
    return errors, failed, widths, text


def test_eval_report_renders_with_every_plot_visible(browser, eval_results, tmp_path):
    shot = tmp_path / "report.png"
    errors, failed, widths, text = _open(browser, eval_results / "report.html", shot)
    assert errors == [] and failed == []
    assert sorted(w[0] for w in widths) == ["plot-latency-rank", "plot-pareto", "plot-quality-rank"]
    assert all(complete and nw > 0 for _, complete, nw in widths), widths
    assert shot.stat().st_size > 10_000
    res = json.loads((eval_results / "results.json").read_text())
    assert f"Recommended: {res['recommendation']['name']}" in text
    for needle in ("Summary", "nDCG@10", "tiny4", "tiny16", "bm25", "Does the encoder use its attention?",
                   "Pareto", "Business impact (ROI)", "Net per year", "student"):
        assert needle in text, needle


def system_japanese_fonts() -> list[str]:
    try:
        out = subprocess.run(["fc-list", ":lang=ja", "family"], capture_output=True, text=True,
                             check=False).stdout
    except FileNotFoundError:
        return []
    return [line for line in out.splitlines() if line.strip()]


def test_summary_tables_fit_a_1400px_window(browser, eval_results, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto((eval_results / "report.html").as_uri())
    page.wait_for_load_state("load")
    overflow = page.evaluate("""() => ({
        scroll: document.documentElement.scrollWidth,
        tables: ['summary', 'summary-cost'].map(id =>
            document.getElementById(id).getBoundingClientRect().right)})""")
    page.screenshot(path=str(tmp_path / "report-1400.png"), full_page=True)
    page.close()
    assert overflow["scroll"] <= 1400, overflow
    assert all(right <= 1400 for right in overflow["tables"]), overflow


def test_japanese_report_draws_every_glyph_without_system_cjk_fonts(browser, eval_results, tmp_path):
    assert system_japanese_fonts() == [], ("a CJK font is installed system-wide; the test must "
                                           "show the report needs none")
    assert main(["eval", "report", str(eval_results), "--lang", "ja"]) == 0
    errors, failed, widths, text = _open(browser, eval_results / "report.ja.html", tmp_path / "ja.png")
    assert errors == [] and failed == []
    assert len(widths) == 3 and all(nw > 0 for _, _, nw in widths)
    assert "推奨" in text and "[[" not in text
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto((eval_results / "report.ja.html").as_uri())
    page.wait_for_load_state("load")
    page.evaluate("document.fonts.ready")
    faces = page.evaluate("[...document.fonts].map(f => [f.family, f.status])")
    assert ["RanksearchJP", "loaded"] in [[f.strip("'\""), s] for f, s in faces], faces
    # The renderer's own account of the font that drew the title: the embedded web font.
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    h1 = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "h1"})["nodeId"]
    used = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": h1})["fonts"]
    assert used and all(f["isCustomFont"] for f in used), used
    # Glyph metrics and pixels, drawn on a canvas at the same place: with the embedded
    # font each ideograph is one em wide and two different words give different pixels;
    # the fallback (no CJK font on this machine) draws the same empty boxes for both.
    probe = page.evaluate("""async () => {
        await document.fonts.load('40px RanksearchJP', '推奨概要');
        const draw = (word, family) => {
            const c = document.createElement('canvas');
            c.width = 120; c.height = 60;
            const x = c.getContext('2d');
            x.fillStyle = '#fff'; x.fillRect(0, 0, 120, 60);
            x.fillStyle = '#000'; x.font = `40px ${family}`;
            x.fillText(word, 5, 45);
            return {width: x.measureText(word).width,
                    px: Array.from(x.getImageData(0, 0, 120, 60).data)};
        };
        const r = [draw('推奨', 'RanksearchJP'), draw('概要', 'RanksearchJP'),
                   draw('推奨', 'sans-serif'), draw('概要', 'sans-serif')];
        const same = (a, b) => a.px.every((v, i) => v === b.px[i]);
        const ink = a => a.px.filter((v, i) => i % 4 === 0 && v < 128).length;
        return {widths: r.map(d => d.width), ink: r.map(ink),
                embeddedDiffer: !same(r[0], r[1]), fallbackSame: same(r[2], r[3]),
                embeddedVsFallback: !same(r[0], r[2])};
    }""")
    page.screenshot(path=str(tmp_path / "ja-probe.png"))
    page.close()
    assert probe["widths"][:2] == [pytest.approx(80, abs=0.5)] * 2, probe["widths"]  # 2 ideographs = 2 em
    assert min(probe["ink"][:2]) > 200, probe["ink"]          # real strokes drawn
    assert probe["embeddedDiffer"], "embedded font: two different words must render differently"
    assert probe["fallbackSame"], "the fallback (no CJK font here) draws the same empty boxes"
    assert probe["embeddedVsFallback"]


def test_probe_report_renders(browser, tmp_path):
    out = tmp_path / "probe"
    assert main(["probe", "--out", str(out), "--dim", "4", "--points", "4", "--ranks", "1,4",
                 "--steps", "10", "--seeds", "1"]) == 0
    errors, failed, widths, text = _open(browser, out / "report.html", tmp_path / "probe.png")
    assert errors == [] and failed == []
    assert [w[0] for w in widths] == ["plot-probe"] and widths[0][2] > 0
    assert "Trivial baselines" in text and "Zero vector" in text
