"""Known-item corpora from Debian's manual pages (``ranksearch corpus build manpages``).

Source: the installed pages of ``manpages-ja-dev`` (``--lang ja``, Japanese
translations under ``/usr/share/man/ja``) or ``manpages-dev`` (``--lang en``,
``/usr/share/man``), sections 2 and 3 by default; the other sections (commands, file
formats, administration: 1, 4-8) come from ``manpages-ja`` / ``manpages``. Only those
packages' own files (``dpkg-query -L``), not pages other packages put in the same
folders. Each page file becomes::

    corpus.jsonl   {"_id": "accept.2", "title": "accept, accept4",
                    "text": <the DESCRIPTION / 説明 section, troff stripped>}
    queries.jsonl  {"_id": "q:accept.2", "text": "ソケットへの接続を受ける"}  (the NAME line's description)
    qrels/train.tsv, qrels/test.tsv
    ranksearch-corpus.json  {"language": "ja", "source": ..., "package_version": ...}

A page's query is the text after ``\\-`` on its NAME line; the page's names (before
``\\-``) become the title, so the query never contains them. Rules, in order:

- Pages are read as real files only: symlinks and ``.so`` pages are aliases of a page
  that is read anyway. Pages without a man(7) NAME line (the few mdoc pages) and
  descriptions shorter than `MIN_TEXT_CHARS` are left out.
- ``--lang ja``: only Japanese pages. A page whose description's prose is less than
  half Japanese (`translated_share` < `MIN_TRANSLATED_SHARE`: the translators left it,
  or its newer paragraphs, in English) is left out, document and query.
- One document per distinct description: pages that share one (several functions
  documented on one page, each with its own file) become one document with the first
  page's id and all the pages' names as title; every page's query points at it, so no
  known item has an identical twin.
- A query text that leads to more than one document is not a known-item query and is
  dropped; so is, in Japanese, a NAME line without kana or kanji (its document stays).

Queries go to ``test`` when sha256(query id) is even (half), else to ``train``.

Troff is stripped by this module, not rendered by groff: the output depends only on
the page sources (so on the package version recorded in ``ranksearch-corpus.json``),
not on the installed groff or terminal width. Paragraphs end in a newline; input
lines of a paragraph are joined with a space, as troff does.
"""
from __future__ import annotations

import gzip
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ranksearch.analysis import has_japanese
from ranksearch.errors import InvalidArgument

from .corpus import hash_split, replace_beir

#: Where each language's pages live and the section headings that matter.
LANGUAGES = {
    "ja": {"root": "/usr/share/man/ja", "package": "manpages-ja-dev", "user_package": "manpages-ja",
           "name": ("名前",), "description": ("説明",)},
    "en": {"root": "/usr/share/man", "package": "manpages-dev", "user_package": "manpages",
           "name": ("NAME",), "description": ("DESCRIPTION",)},
}
#: sections of the developers' package (system calls, library functions); the others
#: (1, 4-8: commands, devices, file formats, games, overviews, administration) are in
#: the users' package
DEV_SECTIONS = (2, 3)
DEFAULT_SECTIONS = (2, 3)
MIN_TEXT_CHARS = 60
MIN_QUERY_CHARS = 4
#: --lang ja: a page is Japanese when at least half of its description's prose is
#: (`translated_share`); the others were left in English by the translators and are
#: not part of a Japanese corpus.
MIN_TRANSLATED_SHARE = 0.5
#: a paragraph without kana/kanji is English prose from this many words on (shorter
#: ones are code, names, table cells)
ENGLISH_PROSE_WORDS = 8
_WORD = re.compile(r"[A-Za-z]{2,}")

# Requests whose arguments are text in one font (.B bold, .I italic, ...).
_TEXT_REQUESTS = {"B", "I", "SM", "SB"}
# Alternating-font requests: arguments are concatenated without spaces.
_ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}
# Requests that end a paragraph.
_BREAKS = {"PP", "P", "LP", "TP", "IP", "HP", "sp", "br", "SS", "TQ", "PD", "RS", "RE",
           "nf", "fi", "EX", "EE", "in", "ti"}
_NAMED_CHARS = {"aq": "'", "dq": '"', "em": "—", "en": "–", "bu": "•", "co": "©",
                "lq": "“", "rq": "”", "oq": "‘", "cq": "’", "mu": "×", "ti": "~",
                "ha": "^", "rs": "\\", "ga": "`", "hy": "-", "<=": "≤", ">=": "≥",
                "!=": "≠", "->": "→", "<-": "←", "de": "°", "+-": "±", "pl": "+",
                "mi": "-", "eq": "=", "sl": "/", "ba": "|", "lh": "☜", "rh": "☞"}
_ESCAPE = re.compile(
    r"\\(?:"
    r"f(?:\[[^\]]*\]|\(..|.)"        # font change
    r"|s[-+]?(?:\(\d\d|\[[^\]]*\]|\d)"  # size change
    r"|\((..)"                        # \(xx named character            -> group 1
    r"|\[([^\]]*)\]"                  # \[name] named character          -> group 2
    r"|\*(?:\((..)|\[([^\]]*)\]|(.))"  # string: \*(xx \*[xx] \*x       -> groups 3-5
    r"|[kn](?:\(..|\[[^\]]*\]|.)"     # mark / number register
    r"|[hvwoNlLxbDXZ]'[^']*'"         # motions and other quoted-argument escapes
    r"|(.)"                           # any other one-character escape -> group 6
    r")")
_STRINGS = {"lq": "“", "rq": "”", "R": "®", "Tm": "™", "rq'": "”"}
_SIMPLE = {"-": "-", "e": "\\", "\\": "\\", "~": " ", " ": " ", "0": " ", "t": " ",
           "'": "'", "`": "`", ".": ".", "%": "", "&": "", ":": "", "|": "", "^": "",
           "c": "", "/": "", ",": "", "!": "", "{": "", "}": "", "a": ""}


def _replace_escape(m: re.Match) -> str:
    named, bracket, s2, sb, s1, single = m.groups()
    if named is not None:
        return _NAMED_CHARS.get(named, "")
    if bracket is not None:
        return _NAMED_CHARS.get(bracket, "")
    if s2 is not None or sb is not None or s1 is not None:
        return _STRINGS.get(s2 or sb or s1, "")
    if single is not None:
        return _SIMPLE.get(single, "")
    return ""  # font, size, register, motion


def inline_text(line: str) -> str:
    """One troff text line without its escapes."""
    return _ESCAPE.sub(_replace_escape, line)


_ARG = re.compile(r'"((?:[^"]|"")*)"?|(\S+)')


def _request_args(rest: str) -> list[str]:
    """A request's arguments: blank-separated, double quotes group ("" is a quote)."""
    return [m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2)
            for m in _ARG.finditer(rest)]


def _request_text(name: str, rest: str) -> str | None:
    """Text a request line contributes (None: none)."""
    if name in _TEXT_REQUESTS:
        return " ".join(_request_args(rest))
    if name in _ALTERNATING:
        return "".join(_request_args(rest))
    if name in ("IP", "TQ") and rest.strip():
        args = _request_args(rest)
        return args[0] if args else None
    if name == "SS":
        return rest.strip().strip('"')
    return None


@dataclass
class Page:
    """One parsed page: its sections, each a list of paragraphs (plain text)."""
    sections: dict[str, list[str]]


def parse_page(source: str) -> Page:
    """Split a man(7) page into sections of plain-text paragraphs."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    para: list[str] = []
    in_table = table_format = False

    def flush() -> None:
        if current is not None and para:
            text = " ".join(" ".join(para).split())
            if text:
                current.append(text)
        para.clear()

    for raw in source.splitlines():
        if raw.startswith(('.\\"', "'\\\"", '.\\#')) or raw.strip() in (".", "'"):
            continue
        if in_table:
            if raw.startswith(".TE"):
                in_table = False
                flush()
            elif table_format:
                table_format = not raw.rstrip().endswith(".")
            elif not raw.startswith("."):
                cells = raw.replace("T{", "").replace("T}", "").split("\t")
                para.append(" ".join(inline_text(c) for c in cells))
                flush()
            continue
        if raw.startswith((".", "'")):
            name, _, rest = raw[1:].lstrip().partition(" ")
            if name in ("SH", "Sh"):
                flush()
                title = inline_text(rest.strip().strip('"')).strip()
                current = sections.setdefault(title, [])
                continue
            if name == "TS":
                flush()
                in_table = table_format = True
                continue
            text = _request_text(name, rest)
            if name in _BREAKS:
                flush()
            if text is not None:
                para.append(inline_text(text))
                if name in ("SS", "IP", "TQ"):
                    flush()
            continue
        if raw.strip():
            para.append(inline_text(raw))
        else:
            flush()
    flush()
    return Page(sections)


def _section(page: Page, names: tuple[str, ...]) -> list[str] | None:
    for n in names:
        if n in page.sections:
            return page.sections[n]
    return None


def name_line(page: Page, lang: str) -> tuple[str, str] | None:
    """(names, description) of the NAME section's ``names - description`` line."""
    paras = _section(page, LANGUAGES[lang]["name"])
    if not paras:
        return None
    names, sep, desc = " ".join(paras).partition(" - ")
    if not sep:
        return None
    return " ".join(names.split()), " ".join(desc.split())


def read_page(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def page_files(root: Path, sections, owned: set[str] | None = None) -> list[Path]:
    """Real page files of ``sections`` under ``root`` (no symlinks), sorted; only those
    in ``owned`` when given (the package's own files, not other packages' pages)."""
    out = []
    for sec in sections:
        folder = root / f"man{sec}"
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.is_symlink() or not p.is_file() or (owned is not None and str(p) not in owned):
                continue
            out.append(p)
    return out


def package_files(package: str) -> set[str] | None:
    """Paths the Debian package installed (``dpkg-query -L``), None if unknown."""
    try:
        proc = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        return None
    return set(proc.stdout.splitlines()) if proc.returncode == 0 else None


def page_id(path: Path) -> str:
    name = path.name
    return name[:-3] if name.endswith(".gz") else name


@dataclass
class _Entry:
    """One page that made it into the corpus: its id, names, query and description."""
    page: str
    names: str
    query: str
    text: str


def _read_entries(files: list[Path], lang: str) -> list[_Entry]:
    """Pages with a NAME line and a long enough description, in ``files`` order; with
    ``--lang ja`` only pages whose description is mostly Japanese (`translated_share`)."""
    desc_names = LANGUAGES[lang]["description"]
    out = []
    for path in files:
        source = read_page(path)
        if source.lstrip().startswith(".so "):
            continue
        page = parse_page(source)
        nl = name_line(page, lang)
        body = _section(page, desc_names)
        if nl is None or not body:
            continue
        if lang == "ja" and translated_share(body) < MIN_TRANSLATED_SHARE:
            continue
        text = "\n".join(body)
        if len(text) >= MIN_TEXT_CHARS:
            out.append(_Entry(page_id(path), nl[0], nl[1], text))
    return out


def manpage_rows(files: list[Path], lang: str) -> tuple[list[dict], list[dict], list[tuple[str, str]]]:
    """(corpus rows, query rows, (query id, doc id) pairs) for the given page files.

    One document per distinct description: pages that share one (several functions
    documented together) become one document, id of the first page, titled with all
    their names, and each page's query points at it. A query text that leads to more
    than one document is not a known-item query and is dropped; so is, in Japanese, a
    NAME line without kana or kanji."""
    groups: dict[str, list[_Entry]] = {}
    for e in _read_entries(files, lang):
        groups.setdefault(e.text, []).append(e)
    corpus, targets = [], {}  # targets: query text -> {doc id: first page with that query}
    for text, entries in groups.items():
        did = entries[0].page
        names = list(dict.fromkeys(n.strip() for e in entries for n in e.names.split(",")))
        corpus.append({"_id": did, "title": ", ".join(names), "text": text})
        for e in entries:
            targets.setdefault(e.query, {}).setdefault(did, e.page)
    queries, pairs = [], []
    for query, docs in targets.items():
        if len(docs) > 1 or len(query) < MIN_QUERY_CHARS or (lang == "ja" and not has_japanese(query)):
            continue
        (did, page), = docs.items()
        qid = f"q:{page}"
        queries.append({"_id": qid, "text": query})
        pairs.append((qid, did))
    return corpus, queries, pairs


def translated_share(paragraphs: list[str]) -> float:
    """Share of a description's prose that is Japanese: characters in paragraphs with
    kana or kanji over those plus the characters in English prose paragraphs (no kana
    or kanji, at least `ENGLISH_PROSE_WORDS` words). Code, tables and lists of names
    (short paragraphs without Japanese) count for neither."""
    japanese = english = 0
    for p in paragraphs:
        if has_japanese(p):
            japanese += len(p)
        elif len(_WORD.findall(p)) >= ENGLISH_PROSE_WORDS:
            english += len(p)
    return japanese / (japanese + english) if japanese + english else 0.0


def section_packages(lang: str, sections) -> list[str]:
    """The Debian packages holding ``sections`` of ``lang``'s pages, in a fixed order."""
    info = LANGUAGES[lang]
    wanted = {info["package"] if s in DEV_SECTIONS else info["user_package"] for s in sections}
    return [p for p in (info["package"], info["user_package"]) if p in wanted]


def package_version(package: str) -> str | None:
    try:
        proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                              capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def parse_sections(text: str | None) -> tuple[int, ...]:
    if not text:
        return DEFAULT_SECTIONS
    try:
        out = tuple(sorted({int(s) for s in text.split(",") if s.strip()}))
    except ValueError:
        raise InvalidArgument("sections", f"must be comma-separated section numbers, got {text!r}") from None
    if not out or any(not 1 <= s <= 9 for s in out):
        raise InvalidArgument("sections", f"must be section numbers 1-9, got {text!r}")
    return out


def build_manpage_corpus(out: Path | str, lang: str = "ja", sections=DEFAULT_SECTIONS,
                         root: Path | str | None = None) -> Path:
    """Build the man-page corpus as a BEIR folder at ``out`` (atomically) and return it.

    ``root`` overrides the man tree (tests use a small tree of real pages)."""
    if lang not in LANGUAGES:
        raise InvalidArgument("lang", f"must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    info = LANGUAGES[lang]
    packages = section_packages(lang, sections)
    owned = None
    if root is None:
        listed = [package_files(p) for p in packages]
        owned = set().union(*[f for f in listed if f is not None]) if any(f is not None for f in listed) else None
    root = Path(root or info["root"])
    files = page_files(root, sections, owned)
    names = ", ".join(packages)
    if not files:
        raise InvalidArgument("lang", f"no manual pages of sections {list(sections)} under {root}: "
                              f"install Debian's {names} (apt-get install -y {' '.join(packages)})")
    corpus, queries, pairs = manpage_rows(files, lang)
    versions = list(dict.fromkeys(v for v in map(package_version, packages) if v))
    meta = {"language": lang, "source": f"Debian {names}: {root}",
            "package": names, "package_version": ", ".join(versions) or None,
            "sections": list(sections), "query": "NAME line description",
            "document": "DESCRIPTION section, troff stripped"}
    return replace_beir(Path(out), corpus, queries, hash_split(pairs, 2), meta)
