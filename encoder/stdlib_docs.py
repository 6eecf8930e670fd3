"""Collect docstrings of the Python standard library (stdlib only, runnable as a script).

`ranksearch.encoder.corpus` runs this file in a clean child interpreter
(``python -I -S stdlib_docs.py MODULE...``) so that nothing but the standard library
is importable there: what third-party packages may have patched or imported in the
parent process cannot change the corpus, and a module's import side effects stay in
the child. The output is a JSON list of ``{"name", "doc"}`` records, sorted by name,
on stdout.

Walk: each listed module's own docstring, its public classes and functions that are
defined in it (``__module__`` is the module or its private C twin ``_module``), and
each such class's public methods and properties whose docstring is set on that class
(so an inherited docstring is not repeated for every subclass).
"""
from __future__ import annotations

import importlib
import inspect
import json
import sys
import warnings

#: Modules walked by default: a fixed, sorted list of importable, side-effect-free
#: standard-library modules (no GUI, no Easter eggs, no platform-specific ones, no
#: deprecated-on-import modules). Changing it changes the corpus.
STDLIB_MODULES: tuple[str, ...] = (
    "abc", "argparse", "array", "ast", "asyncio", "asyncio.base_events",
    "asyncio.events", "asyncio.futures", "asyncio.locks", "asyncio.protocols",
    "asyncio.queues", "asyncio.streams", "asyncio.subprocess", "asyncio.tasks",
    "asyncio.transports", "base64", "bdb", "binascii", "bisect", "builtins", "bz2",
    "calendar", "cmath", "cmd", "code", "codecs", "codeop", "collections",
    "collections.abc", "colorsys", "compileall", "concurrent.futures",
    "concurrent.futures.process", "concurrent.futures.thread", "configparser",
    "contextlib", "contextvars", "copy", "copyreg", "csv", "ctypes", "dataclasses",
    "datetime", "dbm", "decimal", "difflib", "dis", "doctest", "email", "email.charset",
    "email.contentmanager", "email.encoders", "email.errors", "email.feedparser",
    "email.generator", "email.header", "email.headerregistry", "email.iterators",
    "email.message", "email.mime.application", "email.mime.base",
    "email.mime.multipart", "email.mime.text", "email.parser", "email.policy",
    "email.utils", "enum", "errno", "filecmp", "fileinput", "fnmatch", "fractions",
    "ftplib", "functools", "gc", "getopt", "gettext", "glob", "graphlib", "gzip",
    "hashlib", "heapq", "hmac", "html", "html.parser", "http", "http.client",
    "http.cookiejar", "http.cookies", "http.server", "imaplib", "importlib",
    "importlib.abc", "importlib.machinery", "importlib.metadata", "importlib.resources",
    "importlib.util", "inspect", "io", "ipaddress", "itertools", "json", "json.decoder",
    "json.encoder", "keyword", "linecache", "locale", "logging", "logging.config",
    "logging.handlers", "lzma", "mailbox", "marshal", "math", "mimetypes", "mmap",
    "modulefinder", "multiprocessing", "multiprocessing.connection",
    "multiprocessing.managers", "multiprocessing.pool", "multiprocessing.process",
    "multiprocessing.queues", "multiprocessing.shared_memory",
    "multiprocessing.synchronize", "netrc", "numbers", "opcode", "operator", "optparse",
    "os", "os.path", "pathlib", "pdb", "pickle", "pickletools", "pkgutil", "platform",
    "plistlib", "poplib", "pprint", "profile", "pstats", "py_compile", "pyclbr",
    "pydoc", "queue", "quopri", "random", "re", "reprlib", "rlcompleter", "runpy",
    "sched", "secrets", "select", "selectors", "shelve", "shlex", "shutil", "signal",
    "smtplib", "socket", "socketserver", "sqlite3", "ssl", "stat", "statistics",
    "string", "stringprep", "struct", "subprocess", "symtable", "sys", "sysconfig",
    "tabnanny", "tarfile", "tempfile", "textwrap", "threading", "time", "timeit",
    "token", "tokenize", "tomllib", "trace", "traceback", "tracemalloc", "types",
    "typing", "unicodedata", "unittest", "unittest.case", "unittest.loader",
    "unittest.mock", "unittest.result", "unittest.runner", "unittest.suite",
    "urllib.error", "urllib.parse", "urllib.request", "urllib.response",
    "urllib.robotparser", "uuid", "venv", "warnings", "wave", "weakref",
    "wsgiref.handlers", "wsgiref.simple_server", "wsgiref.util", "xml.dom.expatbuilder",
    "xml.dom.minidom", "xml.dom.pulldom", "xml.etree.ElementTree", "xml.sax",
    "xml.sax.handler", "xml.sax.saxutils", "xmlrpc.client", "xmlrpc.server", "zipapp",
    "zipfile", "zipimport", "zlib", "zoneinfo",
)

_CALLABLE_KINDS = (staticmethod, classmethod, property)


def _own_doc(obj: object) -> str | None:
    """The docstring set on `obj` itself (None if absent or not a string)."""
    target = obj.__func__ if isinstance(obj, (staticmethod, classmethod)) else obj
    doc = getattr(target, "__doc__", None)
    return doc if isinstance(doc, str) and doc.strip() else None


def _defined_in(obj: object, module_name: str) -> bool:
    owner = getattr(obj, "__module__", None)
    leaf = module_name.rsplit(".", 1)[-1]
    return owner in (module_name, "_" + leaf) or (module_name == "os" and owner == "posix")


def _class_members(cls: type, qualname: str) -> list[tuple[str, str]]:
    out = []
    for attr in sorted(cls.__dict__):
        if attr.startswith("_"):
            continue
        member = cls.__dict__[attr]
        if not (callable(member) or isinstance(member, _CALLABLE_KINDS)):
            continue
        doc = _own_doc(member)
        if doc is not None:
            out.append((f"{qualname}.{attr}", doc))
    return out


def collect(modules: list[str] | tuple[str, ...]) -> list[dict[str, str]]:
    """Docstring records ``{"name", "doc"}`` of the given modules, sorted by name."""
    found: dict[str, str] = {}
    for module_name in sorted(modules):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(module_name)
        except Exception:  # noqa: BLE001 - a module missing on this build is skipped
            continue
        doc = _own_doc(module)
        if doc is not None:
            found.setdefault(module_name, doc)
        for attr in sorted(vars(module)):
            if attr.startswith("_"):
                continue
            obj = vars(module)[attr]
            if not (inspect.isclass(obj) or inspect.isroutine(obj)):
                continue
            if not _defined_in(obj, module_name):
                continue
            qualname = f"{module_name}.{attr}"
            doc = _own_doc(obj)
            if doc is not None:
                found.setdefault(qualname, doc)
            if inspect.isclass(obj):
                for name, member_doc in _class_members(obj, qualname):
                    found.setdefault(name, member_doc)
    return [{"name": name, "doc": inspect.cleandoc(found[name])} for name in sorted(found)]


if __name__ == "__main__":
    names = sys.argv[1:] or list(STDLIB_MODULES)
    json.dump(collect(names), sys.stdout, ensure_ascii=False)
