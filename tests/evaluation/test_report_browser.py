"""The reports render in a real headless Chromium: no console errors, every plot
loaded (naturalWidth > 0), expected content on the page; a screenshot is taken."""
import json
import shutil
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


def _open(browser, path: Path, shot: Path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
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


def test_japanese_report_renders(browser, eval_results, tmp_path):
    assert main(["eval", "report", str(eval_results), "--lang", "ja"]) == 0
    errors, failed, widths, text = _open(browser, eval_results / "report.ja.html", tmp_path / "ja.png")
    assert errors == [] and failed == []
    assert len(widths) == 3 and all(nw > 0 for _, _, nw in widths)
    assert "推奨" in text and "[[" not in text


def test_probe_report_renders(browser, tmp_path):
    out = tmp_path / "probe"
    assert main(["probe", "--out", str(out), "--dim", "4", "--points", "4", "--ranks", "1,4",
                 "--steps", "10", "--seeds", "1"]) == 0
    errors, failed, widths, text = _open(browser, out / "report.html", tmp_path / "probe.png")
    assert errors == [] and failed == []
    assert [w[0] for w in widths] == ["plot-probe"] and widths[0][2] > 0
    assert "Trivial baselines" in text and "Zero vector" in text
