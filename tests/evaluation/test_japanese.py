"""Japanese in the harness: BM25 analyses with the corpus's language, Japanese reports
embed the font they need and label their plots in Japanese, ROI in yen, console
legend and small-sample warning, and the CLI prints Japanese as UTF-8."""
from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from ranksearch.cli import main
from ranksearch.encoder.corpus import METADATA_FILE
from ranksearch.errors import ConfigError
from ranksearch.evaluation.lexical import run_bm25
from ranksearch.evaluation.results import SMALL_SAMPLE_QUERIES, load_results, summary_text
from ranksearch.evaluation.spec import parse_spec

ROI_JPY = Path(__file__).resolve().parents[2] / "evaluation" / "specs" / "roi" / "example_jpy.yaml"

JA_DOCS = {
    "pw": "パスワードを忘れた場合は、社内ポータルの再設定画面から新しいパスワードを登録してください。",
    "vpn": "自宅から社内ネットワークに接続するには、VPN クライアントを起動して認証します。",
    "leave": "有給休暇の申請は、取得日の三日前までに勤怠システムから上長に提出します。",
    "invoice": "請求書の発行は経理部が行い、取引先には月末締めで郵送します。",
}
JA_QUERIES = {"q-pw": ("パスワードの再設定", "pw"), "q-leave": ("休暇を申請したい", "leave")}


def test_bm25_segments_japanese_only_with_the_ja_analyzer():
    ids, texts = list(JA_DOCS), list(JA_DOCS.values())
    qids = list(JA_QUERIES)
    qtexts = [q for q, _ in JA_QUERIES.values()]
    ja = run_bm25(ids, texts, qids, qtexts, top_k=4, latency_queries=1, analyzer="ja")
    assert ja["analyzer"] == "ja" and "'ja'" in ja["cost"]["note"]
    for qid, (_, want) in JA_QUERIES.items():
        assert next(iter(ja["run"][qid])) == want, ja["run"][qid]
        # the standard analyzer keeps each run of kana/kanji whole: no term is shared
    std = run_bm25(ids, texts, qids, qtexts, top_k=4, latency_queries=1, analyzer="standard")
    assert all(max(hits.values()) == 0.0 for hits in std["run"].values()), std["run"]


def _spec(**extra):
    return parse_spec({"name": "x", "baseline": "m", **extra,
                       "variants": [{"name": "m", "folder": "/nowhere"}]})


def test_language_comes_from_the_cli_then_the_spec_then_the_corpus(tmp_path):
    from ranksearch.evaluation.runner import lexical_setting

    corpus = tmp_path / "beir"
    corpus.mkdir()
    assert lexical_setting(_spec(), corpus, None) == {"language": "en", "analyzer": "standard",
                                                      "from": "default"}
    (corpus / METADATA_FILE).write_text(json.dumps({"language": "ja"}))
    assert lexical_setting(_spec(), corpus, None)["analyzer"] == "ja"
    assert lexical_setting(_spec(language="auto"), corpus, None)["from"] == "spec"
    got = lexical_setting(_spec(language="auto"), corpus, "en")
    assert got == {"language": "en", "analyzer": "standard", "from": "--language"}
    with pytest.raises(ConfigError, match="language"):
        _spec(language="fr")


def test_eval_report_help_is_its_own(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "report", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "RESULTS_DIR" in out and "--lang" in out and "--roi" in out
    assert "--spec" not in out and "--corpus" not in out


def test_console_summary_explains_sig_and_warns_on_few_queries(eval_results):
    res = load_results(eval_results)
    assert res["corpus"]["queries"] < SMALL_SAMPLE_QUERIES
    en = summary_text(res)
    assert "sig: nDCG@10 against the baseline tiny16" in en
    assert "+ significantly better, - significantly worse, ns not significant" in en
    assert f"rests on {res['corpus']['queries']} test queries" in en
    ja = summary_text(res, lang="ja")
    assert "有意に良い" in ja and "注意" in ja and "推奨" in ja
    many = {**res, "corpus": {**res["corpus"], "queries": SMALL_SAMPLE_QUERIES}}
    assert "Caution" not in summary_text(many)


def test_reports_warn_about_a_small_sample_in_both_languages(eval_results):
    assert "id='small-sample'" in (eval_results / "report.html").read_text()
    assert main(["eval", "report", str(eval_results), "--lang", "ja"]) == 0
    html = (eval_results / "report.ja.html").read_text(encoding="utf-8")
    assert "id='small-sample'" in html and "クエリを増やして" in html


def _embedded_font(html: str):
    from fontTools.ttLib import TTFont

    m = re.search(r"font-family:'RanksearchJP'.*?base64,([A-Za-z0-9+/=]+)", html)
    assert m, "no embedded @font-face"
    return TTFont(io.BytesIO(base64.b64decode(m.group(1))))


def test_japanese_report_embeds_a_font_covering_every_character(eval_results):
    import html as html_mod

    assert main(["eval", "report", str(eval_results), "--lang", "ja"]) == 0
    page = (eval_results / "report.ja.html").read_text(encoding="utf-8")
    font = _embedded_font(page)
    cmap = font.getBestCmap()
    visible = html_mod.unescape(re.sub(r"<[^>]+>", " ", re.sub(
        r"<style>.*?</style>|data:[^\"')]*", "", page, flags=re.S)))
    japanese = {c for c in visible if ord(c) > 0x2FFF}
    assert japanese and not {c for c in japanese if ord(c) not in cmap}
    assert "Open Font License" in page          # the licence travels with the subset
    assert len(page) < 1_500_000                # a subset, not the 16 MB font
    assert "body{font-family:'RanksearchJP'," in page


def test_english_report_embeds_no_font(eval_results):
    assert "@font-face" not in (eval_results / "report.html").read_text()


def test_japanese_plots_draw_every_glyph(eval_results):
    """matplotlib warns "Glyph ... missing from font(s)" for each glyph it cannot draw:
    the Japanese plots must raise none (the English font alone would)."""
    from ranksearch.evaluation.fonts import plot_rc
    from ranksearch.evaluation.report import plot_latency_rank, plot_pareto, plot_quality_rank

    res = load_results(eval_results)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for plot in (plot_quality_rank, plot_latency_rank, plot_pareto):
            assert plot(res, "ja").startswith("data:image/png;base64,")
    assert not [w for w in caught if "missing from" in str(w.message)], caught

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings(record=True) as control:
        warnings.simplefilter("always")
        with plt.rc_context({"font.family": ["DejaVu Sans"]}):
            fig, ax = plt.subplots()
            ax.set_xlabel("ランク")
            fig.canvas.draw()
            plt.close(fig)
    assert [w for w in control if "missing from" in str(w.message)], "the check must detect tofu"
    assert plot_rc("en") == {}


def test_roi_in_yen(eval_results):
    from ranksearch.evaluation.roi import load_roi, money

    roi = load_roi(ROI_JPY)
    assert roi["currency"] == "JPY" and roi["days_per_year"] == 245
    assert money(1234.5, "JPY", "ja") == "+1,234 円" or money(1234.5, "JPY", "ja") == "+1,235 円"
    assert money(1234.5, "EUR") == "+1,234.50 EUR"
    assert main(["eval", "report", str(eval_results), "--lang", "ja", "--roi", str(ROI_JPY)]) == 0
    page = (eval_results / "report.ja.html").read_text(encoding="utf-8")
    assert "1 日あたりのクエリ数" in page and "3,000" in page and "円" in page
    assert not re.search(r"\d\.\d\d 円", page)            # yen without decimals
    assert "人件費は時給 3,000 円" in page                   # the file's notes are shown


def test_cli_prints_japanese_as_utf8_whatever_the_locale(eval_results, tmp_path):
    folder = tmp_path / "評価結果"
    shutil.copytree(eval_results, folder)
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C"}
    cmd = [sys.executable, "-m", "ranksearch.cli"]
    out = subprocess.run(cmd + ["eval", "report", str(folder), "--lang", "ja"], env=env,
                         capture_output=True, check=False)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    assert "評価結果".encode() in out.stdout
    beir = tmp_path / "日本語コーパス"
    shutil.copytree(Path(load_results(eval_results)["corpus"]["path"]), beir)
    stats = subprocess.run(cmd + ["corpus", "stats", str(beir), "--json"], env=env,
                           capture_output=True, check=False)
    assert stats.returncode == 0, stats.stderr.decode(errors="replace")
    assert json.loads(stats.stdout.decode("utf-8"))["path"] == str(beir)
    assert "日本語コーパス".encode() in stats.stdout and b"\\u" not in stats.stdout


def test_own_faq_and_articles_become_beir_folders(tmp_path, capsys):
    from ranksearch.encoder.corpus import corpus_language, load_beir
    from ranksearch.evaluation.to_beir import main as to_beir

    faq = tmp_path / "faq.csv"
    faq.write_text("\ufeffquestion,answer\n"                       # Excel writes a BOM
                   + "".join(f"質問{i}はどうすればよいですか,回答{i}: 手順を説明します。\n"
                             for i in range(20)), encoding="utf-8")
    assert to_beir([str(faq), "--out", str(tmp_path / "faq")]) == 0
    test, train = load_beir(tmp_path / "faq", "test"), load_beir(tmp_path / "faq", "train")
    assert len(test.corpus) == 20 and len(test.queries) + len(train.queries) == 20
    assert test.queries and train.queries
    qid = next(iter(test.queries))
    doc = next(iter(test.qrels[qid]))
    assert test.queries[qid].startswith("質問") and test.corpus[doc]["text"].startswith("回答")
    assert corpus_language(tmp_path / "faq") == "ja"
    articles = tmp_path / "articles.jsonl"
    articles.write_text(json.dumps({"id": "a1", "title": "経費精算", "body": "領収書を添付して申請します。"},
                                   ensure_ascii=False) + "\n"
                        + json.dumps({"id": "a2", "body": "見出しのない文書"}, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    assert to_beir([str(articles), "--out", str(tmp_path / "art"), "--lang", "auto"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "art" / "corpus.jsonl").read_text().splitlines()]
    assert {r["_id"] for r in rows} == {"a1", "a2"} and all("経費精算" not in r["text"] for r in rows)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "質問だけ"}\n', encoding="utf-8")
    assert to_beir([str(bad), "--out", str(tmp_path / "bad")]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err
