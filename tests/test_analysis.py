"""The analyzers: what terms BM25 sees for English and Japanese text."""
import pytest

from ranksearch.analysis import get_analyzer, language_analyzer
from ranksearch.errors import ConfigError


def test_standard_lowercases_and_drops_stopwords():
    assert get_analyzer("standard").terms("Read THE file, line by line") == \
        ["read", "file", "line", "line"]


def test_ja_segments_and_normalises():
    terms = get_analyzer("ja").terms("パスワードを忘れた場合、再設定してください。")
    assert "パスワード" in terms and "忘れる" in terms and "場合" in terms
    assert "、" not in terms and "。" not in terms
    assert all(" " not in t for t in terms)


def test_auto_picks_per_text():
    auto = get_analyzer("auto")
    assert auto.terms("Hello world") == ["hello", "world"]
    assert "接続" in auto.terms("VPNに接続できません")


def test_ja_long_text_is_cut_not_refused():
    text = ("経費精算の申請方法について説明します。\n" * 5000)  # ~300 kB, over Sudachi's limit
    terms = get_analyzer("ja").terms(text)
    assert terms.count("経費") == 5000


def test_unknown_names_fail_with_a_hint():
    with pytest.raises(ConfigError, match="did you mean 'ja'"):
        get_analyzer("jap")
    with pytest.raises(ConfigError, match="language"):
        language_analyzer("fr")
    assert language_analyzer("ja") == "ja"
