"""Lexical analysis: text -> the list of terms that BM25 (the harness baseline and the
store's lexical index) counts. One home for it, so the evaluated and the served
lexical search see the same terms.

Analyzers (``get_analyzer(name)``):
- ``standard``: lowercase, words of two or more letters/digits (``(?u)\\b\\w\\w+\\b``,
  the same pattern bm25s uses), English stopwords removed. It does not segment
  Japanese: a run of kana/kanji stays one term.
- ``ja``: SudachiPy with sudachidict-core. Each morpheme's normalised form
  (``normalized_form()``: 為る for し, 下さる for ください, ファイル for file),
  lowercased; punctuation, symbols and whitespace dropped. Split mode ``B`` by
  default (middle units; docs/JAPANESE.md has the measurement behind the choice).
- ``auto``: per text, ``ja`` if it contains kana or kanji, else ``standard``.

Terms never contain whitespace, so a store can keep them space-joined
("pre-analysed") and split them again without a tokenizer of its own.
"""
from __future__ import annotations

import re
import threading
from typing import Protocol

from ranksearch.errors import ConfigError

ANALYZERS = ("standard", "ja", "auto")
_WORD = re.compile(r"(?u)\b\w\w+\b")
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")
# SudachiPy refuses inputs over 49,149 bytes; stay well below, cutting at line ends.
_SUDACHI_MAX_BYTES = 16_000
# Part-of-speech heads (first POS field) that carry no searchable meaning.
_JA_DROP_POS = frozenset({"補助記号", "空白", "記号"})


def has_japanese(text: str) -> bool:
    """True when ``text`` contains kana or kanji (the ``auto`` analyzer's test)."""
    return _JAPANESE.search(text) is not None


class Analyzer(Protocol):
    name: str

    def terms(self, text: str) -> list[str]:
        """The terms of one text, in order (duplicates kept: BM25 counts them)."""


def _english_stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN
    return frozenset(STOPWORDS_EN)


class StandardAnalyzer:
    name = "standard"

    def __init__(self) -> None:
        self._stop = _english_stopwords()

    def terms(self, text: str) -> list[str]:
        return [w for w in _WORD.findall(text.lower()) if w not in self._stop]


class JapaneseAnalyzer:
    """SudachiPy morphemes -> normalised forms. Thread-safe: one Sudachi tokenizer per
    thread (a tokenizer object must not be shared between threads)."""

    name = "ja"

    def __init__(self, split_mode: str = "B") -> None:
        if split_mode not in ("A", "B", "C"):
            raise ConfigError("split_mode", f"must be A, B or C, got {split_mode!r}")
        try:
            from sudachipy import Dictionary, SplitMode
        except ImportError as exc:  # pragma: no cover - sudachipy is a dependency
            raise ConfigError("analyzer", "the 'ja' analyzer needs sudachipy and "
                              "sudachidict-core (pip install sudachipy sudachidict-core)") from exc
        self.split_mode = split_mode
        self._mode = getattr(SplitMode, split_mode)
        self._dictionary = Dictionary(dict="core")
        self._local = threading.local()
        self._stop = _english_stopwords()

    def _tokenizer(self):
        tok = getattr(self._local, "tok", None)
        if tok is None:
            tok = self._local.tok = self._dictionary.create(self._mode)
        return tok

    def terms(self, text: str) -> list[str]:
        tok = self._tokenizer()
        out: list[str] = []
        for chunk in _chunks(text):
            for m in tok.tokenize(chunk):
                if m.part_of_speech()[0] in _JA_DROP_POS:
                    continue
                term = m.normalized_form().lower().strip()
                if not term or any(c.isspace() for c in term) or term in self._stop:
                    continue
                out.append(term)
        return out


class AutoAnalyzer:
    """``ja`` for texts with kana/kanji, ``standard`` for the rest."""

    name = "auto"

    def __init__(self) -> None:
        self._standard = StandardAnalyzer()
        self._ja: JapaneseAnalyzer | None = None
        self._lock = threading.Lock()

    def terms(self, text: str) -> list[str]:
        if not has_japanese(text):
            return self._standard.terms(text)
        if self._ja is None:
            with self._lock:
                if self._ja is None:
                    self._ja = JapaneseAnalyzer()
        return self._ja.terms(text)


def _chunks(text: str) -> list[str]:
    """Cut ``text`` into pieces SudachiPy accepts, at line ends where possible."""
    if len(text.encode("utf-8")) <= _SUDACHI_MAX_BYTES:
        return [text]
    pieces, cur, size = [], [], 0
    for line in text.splitlines(keepends=True):
        b = len(line.encode("utf-8"))
        while b > _SUDACHI_MAX_BYTES:  # one enormous line: cut by characters
            cut = _SUDACHI_MAX_BYTES // 4  # 4 bytes per character at most
            pieces.append(line[:cut])
            line = line[cut:]
            b = len(line.encode("utf-8"))
        if size + b > _SUDACHI_MAX_BYTES and cur:
            pieces.append("".join(cur))
            cur, size = [], 0
        cur.append(line)
        size += b
    if cur:
        pieces.append("".join(cur))
    return pieces


_cache: dict[str, Analyzer] = {}
_cache_lock = threading.Lock()


def get_analyzer(name: str) -> Analyzer:
    """The shared analyzer instance for ``name`` (``standard``, ``ja``, ``auto``)."""
    if name not in ANALYZERS:
        import difflib
        close = difflib.get_close_matches(str(name), ANALYZERS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError("analyzer", f"unknown analyzer {name!r}{hint} "
                          f"(known: {', '.join(ANALYZERS)})")
    with _cache_lock:
        if name not in _cache:
            _cache[name] = {"standard": StandardAnalyzer, "ja": JapaneseAnalyzer,
                            "auto": AutoAnalyzer}[name]()
        return _cache[name]


def language_analyzer(language: str) -> str:
    """Analyzer name for a corpus/collection ``language`` setting (en, ja, auto)."""
    mapping = {"en": "standard", "ja": "ja", "auto": "auto"}
    if language not in mapping:
        raise ConfigError("language", f"unknown language {language!r} (known: en, ja, auto)")
    return mapping[language]
