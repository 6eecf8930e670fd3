"""The README's Python snippet runs as written against a fresh server (only the
address is changed): it must create its collection before writing to it."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_snippet_runs_on_a_fresh_server(make_server):
    server = make_server()  # no collections at all
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    (snippet,) = [b for b in blocks if "SearchClient(" in b]
    code = snippet.replace('"127.0.0.1:50051"', repr(server.address))
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert [h.id for h in scope["res"].hits] == ["n1"]
    assert [h.id for h in scope["far"].hits] == ["n1"]
