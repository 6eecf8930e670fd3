"""The built-in corpus and the one BEIR loader.

Built-in corpus ("stdlib"): documentation of the Python standard library, taken from
the running interpreter's docstrings, as a BEIR-layout folder::

    corpus.jsonl      {"_id": "json.dumps", "title": "json.dumps", "text": <doc without summary>}
    queries.jsonl     {"_id": "q:json.dumps", "text": <the docstring's summary sentence>}
    qrels/train.tsv   query-id <TAB> corpus-id <TAB> score   (header row, score 1)
    qrels/test.tsv

A docstring with enough text after its summary sentence gives a document with one
known-item query (its summary sentence); a shorter docstring is kept whole as a
distractor document without a query. Queries go to ``test`` when the first 8 hex
digits of sha256(query id) are divisible by 3 (about a third), else to ``train``.
For CPython 3.11.7 with the default module list this gives 3,881 documents, 1,258
train and 597 test queries (`ranksearch corpus stats PATH` prints them).

Deterministic for a given Python build: the module list is fixed and sorted, the
docstrings are collected in a child interpreter that sees only the standard library
(``python -I -S``; see `stdlib_docs.py`), texts containing a memory address are
dropped, and nothing depends on set or hash ordering.

`load_beir` validates while it reads: a bad JSON line, a missing or duplicate
``_id``, a missing ``text``, a malformed qrels row raise `InvalidArgument` whose field
is ``file:line``; a missing file raises `InvalidArgument` naming the path. Qrels rows
that name a document or query that does not exist raise as well (``strict=True``,
the default); with ``strict=False`` they are left out of ``qrels`` and each one is
recorded in ``Beir.problems`` for the caller to print — never dropped silently.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ranksearch.errors import InvalidArgument

from . import stdlib_docs

#: Name accepted by `resolve_corpus` for the built-in corpus.
BUILTIN_NAME = "stdlib"
#: A documentation text shorter than this (characters, after removing the summary)
#: is dropped: too little to retrieve on.
MIN_TEXT_CHARS = 60
#: Docstrings too short to split are kept whole as distractors (documents without
#: a query) when at least this long.
MIN_DISTRACTOR_CHARS = 40
#: Summary sentences with fewer words make ambiguous queries and are dropped.
MIN_QUERY_WORDS = 3
MAX_QUERY_WORDS = 60
#: Optional metadata a corpus builder writes next to corpus.jsonl: {"language": "ja", ...}.
METADATA_FILE = "ranksearch-corpus.json"
#: Fraction of known-item queries in the test split is 1 / TEST_MODULUS.
TEST_MODULUS = 3

_SIGNATURE_LINE = re.compile(r"^[\w.]+\(.*\)(\s*->\s*.*)?$")
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)[.!?](?=\s+[A-Z(`'\"]|\s*$)")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


# ----------------------------------------------------------------------------------
# Building the stdlib corpus


def cache_root() -> Path:
    """`$RANKSEARCH_CACHE` or ``~/.cache/ranksearch``."""
    env = os.environ.get("RANKSEARCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ranksearch"


def builtin_corpus_dir() -> Path:
    v = sys.version_info
    return cache_root() / "corpora" / f"stdlib-py{v.major}.{v.minor}"


def _split_doc(doc: str) -> tuple[str, str] | None:
    """(summary sentence, rest of the documentation) or None if unusable."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", doc.strip()) if p.strip()]
    # C functions' docstrings often open with a signature paragraph: `f(x) -> y`.
    while paragraphs and all(_SIGNATURE_LINE.match(line.strip()) for line in paragraphs[0].splitlines()):
        paragraphs.pop(0)
    if not paragraphs:
        return None
    first = paragraphs[0]
    end = _SENTENCE_END.search(first)
    cut = end.end() if end else len(first)
    summary = " ".join(first[:cut].split())
    rest_of_first = first[cut:].strip()
    body = "\n\n".join(([rest_of_first] if rest_of_first else []) + paragraphs[1:]).strip()
    return summary, body


def stdlib_records(modules: Sequence[str] | None = None) -> list[dict[str, str]]:
    """Raw docstring records from a clean child interpreter (see `stdlib_docs`)."""
    names = list(modules) if modules is not None else list(stdlib_docs.STDLIB_MODULES)
    env = {"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8"}
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-W", "ignore", stdlib_docs.__file__, *names],
        capture_output=True, env=env, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"collecting stdlib docstrings failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    return json.loads(proc.stdout.decode("utf-8"))


def _is_test(query_id: str, modulus: int = TEST_MODULUS) -> bool:
    return int(hashlib.sha256(query_id.encode("utf-8")).hexdigest()[:8], 16) % modulus == 0


def hash_split(pairs: list[tuple[str, str]], modulus: int = TEST_MODULUS) -> dict[str, list[tuple[str, str]]]:
    """(query id, doc id) pairs -> {"train": ..., "test": ...}: a query is in ``test``
    when the first 8 hex digits of sha256(query id) are divisible by ``modulus`` (about
    1/modulus of the queries); deterministic, and stable when queries are added."""
    return {"train": [p for p in pairs if not _is_test(p[0], modulus)],
            "test": [p for p in pairs if _is_test(p[0], modulus)]}


def stdlib_beir_rows(records: list[dict[str, str]]) -> tuple[list[dict], list[dict], list[tuple[str, str]]]:
    """(corpus rows, query rows, (query id, doc id) pairs) after filtering and dedupe.

    A docstring with enough text after its summary sentence becomes a document
    (that text) with a known-item query (the summary); a shorter one becomes a
    distractor document (the whole docstring, no query). Drops: unusable docstrings,
    texts with memory addresses, texts identical to an earlier (by name) document's,
    and queries whose summary sentence is shared by several documents (they would not
    be known-item queries).
    """
    kept: list[tuple[str, str, str, bool]] = []  # (name, summary, text, has query)
    seen_texts: set[str] = set()
    for rec in sorted(records, key=lambda r: r["name"]):
        split = _split_doc(rec["doc"])
        if split is None:
            continue
        summary, body = split
        words = len(summary.split())
        if not MIN_QUERY_WORDS <= words <= MAX_QUERY_WORDS or _ADDRESS.search(summary + body):
            continue
        if len(body) >= MIN_TEXT_CHARS:
            text, has_query = body, True
        elif len(summary) + len(body) >= MIN_DISTRACTOR_CHARS:
            # Too short to split into query + text: a distractor document (whole
            # docstring, no query) that makes retrieval harder.
            text, has_query = f"{summary} {body}".strip(), False
        else:
            continue
        if text in seen_texts:
            continue
        seen_texts.add(text)
        kept.append((rec["name"], summary, text, has_query))
    summary_count: dict[str, int] = {}
    for _, summary, _, _ in kept:
        key = summary.lower()
        summary_count[key] = summary_count.get(key, 0) + 1
    corpus = [{"_id": name, "title": name, "text": text} for name, _, text, _ in kept]
    queries, pairs = [], []
    for name, summary, _, has_query in kept:
        if not has_query or summary_count[summary.lower()] > 1:
            continue
        qid = f"q:{name}"
        queries.append({"_id": qid, "text": summary})
        pairs.append((qid, name))
    return corpus, queries, pairs


def write_beir(out: Path, corpus: list[dict], queries: list[dict], qrels: dict[str, list[tuple[str, str]]]) -> None:
    """Write a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) into `out`."""
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for row in corpus:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for row in queries:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    for split, pairs in qrels.items():
        with open(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8", newline="\n") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for qid, did in pairs:
                f.write(f"{qid}\t{did}\t1\n")


def build_stdlib_corpus(out: Path | str, modules: Sequence[str] | None = None) -> Path:
    """Build the stdlib corpus as a BEIR folder at `out` (atomically) and return it.

    `modules` restricts the walk (tests use a few modules); default: the fixed list
    `stdlib_docs.STDLIB_MODULES`. An existing `out` is replaced.
    """
    out = Path(out)
    corpus, queries, pairs = stdlib_beir_rows(stdlib_records(modules))
    return replace_beir(out, corpus, queries, hash_split(pairs))


def replace_beir(out: Path, corpus: list[dict], queries: list[dict],
                 qrels: dict[str, list[tuple[str, str]]], metadata: dict | None = None) -> Path:
    """`write_beir` into a temporary sibling, then replace ``out`` with it atomically;
    ``metadata`` (e.g. ``{"language": "ja"}``) goes to `METADATA_FILE`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_beir(tmp, corpus, queries, qrels)
        if metadata is not None:
            (tmp / METADATA_FILE).write_text(json.dumps(metadata, ensure_ascii=False, indent=2)
                                             + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def resolve_corpus(path_or_name: str | Path) -> Path:
    """"stdlib" -> the built-in corpus (built once into the cache); a path -> itself.

    A path must exist (a BEIR folder or a JSONL file); otherwise InvalidArgument
    names it.
    """
    if str(path_or_name) == BUILTIN_NAME:
        target = builtin_corpus_dir()
        if not (target / "corpus.jsonl").is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".stdlib-build.", dir=target.parent))
            try:
                built = build_stdlib_corpus(tmp / "corpus")
                try:
                    os.replace(built, target)  # atomic; a concurrent builder may win
                except OSError:
                    if not (target / "corpus.jsonl").is_file():
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return target
    path = Path(path_or_name).expanduser()
    if not path.exists():
        raise InvalidArgument("corpus", f"{path} does not exist (give a BEIR folder, a JSONL file or {BUILTIN_NAME!r})")
    return path


# ----------------------------------------------------------------------------------
# Loading


@dataclass
class Beir:
    """A loaded BEIR split. `queries` holds only the queries that have qrels in it."""

    corpus: dict[str, dict[str, str]]  # doc id -> {"title", "text"}
    queries: dict[str, str]  # query id -> text
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance}
    split: str = "test"
    problems: list[str] = field(default_factory=list)  # only with strict=False


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    """Yield (``file:line``, object) for each non-blank line; bad JSON or bytes that
    are not UTF-8 raise naming the line. A UTF-8 byte order mark is accepted."""
    if not path.is_file():
        raise InvalidArgument(str(path), "file not found")
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidArgument(where, f"not valid UTF-8 (byte {exc.start + 1} of the line)") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidArgument(where, f"invalid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise InvalidArgument(where, f"expected a JSON object, got {type(obj).__name__}")
            yield where, obj


def _str_field(where: str, obj: dict, key: str, required: bool = True) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidArgument(where, f"{key}: missing")
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidArgument(where, f"{key}: must be a string, got {type(value).__name__}")
    return str(value)


def _load_corpus(path: Path) -> dict[str, dict[str, str]]:
    corpus: dict[str, dict[str, str]] = {}
    for where, obj in _read_jsonl(path):
        doc_id = _str_field(where, obj, "_id")
        if doc_id in corpus:
            raise InvalidArgument(where, f"_id: duplicate {doc_id!r}")
        corpus[doc_id] = {"title": _str_field(where, obj, "title", required=False), "text": _str_field(where, obj, "text")}
    return corpus


def _load_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for where, obj in _read_jsonl(path):
        qid = _str_field(where, obj, "_id")
        if qid in queries:
            raise InvalidArgument(where, f"_id: duplicate {qid!r}")
        queries[qid] = _str_field(where, obj, "text")
    return queries


def _read_qrels(path: Path) -> Iterator[tuple[str, str, str, int]]:
    """Yield (``file:line``, query id, doc id, score); the header row is required."""
    if not path.is_file():
        splits = sorted(p.stem for p in path.parent.glob("*.tsv")) if path.parent.is_dir() else []
        raise InvalidArgument(str(path), f"qrels file not found (available splits: {', '.join(splits) or 'none'})")
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            where = f"{path}:{lineno}"
            if lineno == 1:
                if [c.strip() for c in row[:3]] != ["query-id", "corpus-id", "score"]:
                    raise InvalidArgument(where, "expected the header row 'query-id<TAB>corpus-id<TAB>score'")
                continue
            if not row or not "".join(row).strip():
                continue
            if len(row) != 3:
                raise InvalidArgument(where, f"expected 3 tab-separated columns, got {len(row)}")
            try:
                score = int(row[2])
            except ValueError:
                raise InvalidArgument(where, f"score must be an integer, got {row[2]!r}") from None
            yield where, row[0], row[1], score


def load_beir(path: Path | str, split: str = "test", strict: bool = True) -> Beir:
    """Load and validate a BEIR folder's corpus, queries and ``qrels/<split>.tsv``."""
    path = Path(path)
    if not path.is_dir():
        raise InvalidArgument(str(path), "not a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    corpus = _load_corpus(path / "corpus.jsonl")
    all_queries = _load_queries(path / "queries.jsonl")
    qrels: dict[str, dict[str, int]] = {}
    problems: list[str] = []
    for where, qid, doc_id, score in _read_qrels(path / "qrels" / f"{split}.tsv"):
        missing = []
        if qid not in all_queries:
            missing.append(f"query-id {qid!r} is not in queries.jsonl")
        if doc_id not in corpus:
            missing.append(f"corpus-id {doc_id!r} is not in corpus.jsonl")
        if missing:
            if strict:
                raise InvalidArgument(where, "; ".join(missing))
            problems.append(f"{where}: {'; '.join(missing)}")
            continue
        qrels.setdefault(qid, {})[doc_id] = score
    queries = {qid: all_queries[qid] for qid in qrels}
    return Beir(corpus=corpus, queries=queries, qrels=qrels, split=split, problems=problems)


def document_text(doc) -> str:
    """The text to encode (or to index lexically) for a document: ``title: text``.

    ``doc`` is a BEIR corpus entry (a dict with "title"/"text") or any object with
    ``title`` and ``text`` attributes (``SourceDocument``). Training, conversion, the
    BM25 baseline, evaluation, the first-start bootstrap and ``ranksearch import`` all
    use this one function, so the served collection encodes the form that was
    evaluated.
    """
    if isinstance(doc, dict):
        title, text = doc.get("title", ""), doc.get("text", "")
    else:
        title, text = getattr(doc, "title", ""), getattr(doc, "text", "")
    return f"{title}: {text}" if title else text


def corpus_language(path: Path | str) -> str | None:
    """The ``language`` a BEIR folder's builder recorded in `METADATA_FILE` (None: none)."""
    meta = Path(path) / METADATA_FILE
    if not meta.is_file():
        return None
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidArgument(str(meta), f"invalid JSON ({exc.msg})") from None
    lang = data.get("language") if isinstance(data, dict) else None
    if lang is not None and not isinstance(lang, str):
        raise InvalidArgument(f"{meta}:language", f"must be a string, got {type(lang).__name__}")
    return lang


def available_splits(path: Path | str) -> list[str]:
    """Names of the qrels splits in a BEIR folder (sorted)."""
    return sorted(p.stem for p in (Path(path) / "qrels").glob("*.tsv"))


# ----------------------------------------------------------------------------------
# Plain JSONL of documents (import)


@dataclass(frozen=True)
class SourceDocument:
    id: str
    text: str
    title: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    where: str = field(default="", compare=False)  # "file:line" it was read from


def iter_documents(path: Path | str) -> Iterator[SourceDocument]:
    """Documents from a JSONL file (``{"id"|"_id", "text", "title"?, "metadata"?}``)
    or from a BEIR folder's corpus.jsonl. Metadata values must be strings; ids must
    be unique within the file. Errors name ``file:line: field: reason``."""
    path = Path(path)
    if path.is_dir():
        path = path / "corpus.jsonl"
    seen: dict[str, str] = {}  # id -> where first seen
    for where, obj in _read_jsonl(path):
        if "id" not in obj and "_id" not in obj:
            raise InvalidArgument(where, "id: missing (expected 'id' or '_id')")
        key = "id" if "id" in obj else "_id"
        doc_id = _str_field(where, obj, key)
        if not doc_id:
            raise InvalidArgument(where, f"{key}: is empty")
        if doc_id in seen:
            raise InvalidArgument(where, f"{key}: duplicate {doc_id!r} (first at {seen[doc_id]})")
        seen[doc_id] = where
        metadata = obj.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidArgument(where, f"metadata: must be an object, got {type(metadata).__name__}")
        for k, v in metadata.items():
            if not isinstance(v, str):
                raise InvalidArgument(where, f"metadata.{k}: must be a string, got {type(v).__name__}")
        yield SourceDocument(
            id=doc_id,
            text=_str_field(where, obj, "text"),
            title=_str_field(where, obj, "title", required=False),
            metadata=dict(metadata),
            where=where,
        )


def corpus_stats(path: Path | str) -> dict:
    """Counts for a BEIR folder: documents, queries, qrels per split, text lengths."""
    path = Path(path)
    corpus = _load_corpus(path / "corpus.jsonl")
    queries = _load_queries(path / "queries.jsonl")
    lengths = sorted(len(d["text"].split()) for d in corpus.values())
    stats = {
        "path": str(path),
        "documents": len(corpus),
        "queries": len(queries),
        "words_per_document_median": lengths[len(lengths) // 2] if lengths else 0,
        "splits": {},
    }
    for split in available_splits(path):
        rows = list(_read_qrels(path / "qrels" / f"{split}.tsv"))
        stats["splits"][split] = {"queries": len({r[1] for r in rows}), "qrels": len(rows)}
    return stats
