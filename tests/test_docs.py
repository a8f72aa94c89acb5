"""The code in the documentation is real: examples run, quotes exist.

Two kinds of fenced blocks in the Markdown files of ``DOCUMENTS``:

- ```` ```python ```` blocks are worked examples. Each runs on its own, in a
  fresh namespace, in each implementation, and states what the text says with
  ``assert``; a failing assertion or an exception fails the test named after
  the file and line.
- ```` ```python quote ```` blocks quote minicnn's source. Each line (without a
  trailing ``# comment``; a line ``...`` marks an elision) must occur in some
  line of a module under ``minicnn/``, so a renamed variable or a rewritten
  line shows up here instead of misleading a reader.

The README's blocks run too (its first look loads MNIST from ``MINICNN_DATA``, or
scikit-learn's digits where MNIST is absent).
"""

from __future__ import annotations

import contextlib
import io
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ["README.md", "docs/backprop.md", "docs/architecture.md"]

FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
                   re.MULTILINE | re.DOTALL)  # a fence may be indented, inside a list item
COMMENT = re.compile(r"\s+#.*$")


def blocks(kind: str) -> list:
    """``pytest.param(where, code)`` for every block of ``kind`` ("python" or "python quote").

    ``where`` is "file:line" of the opening fence; it is also the test's id.
    """
    found = []
    for name in DOCUMENTS:
        text = (ROOT / name).read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match["info"].strip() == kind:
                line = text.count("\n", 0, match.start()) + 1
                where = f"{name}:{line}"
                found.append(pytest.param(where, textwrap.dedent(match["code"]), id=where))
    return found


def test_documents_have_examples_and_quotes():
    """Guards the extraction itself: a broken fence pattern would silently test nothing."""
    assert len(blocks("python")) >= 10
    assert len(blocks("python quote")) >= 10


@pytest.mark.parametrize(("where", "code"), blocks("python"))
def test_worked_example_runs(where, code, implementation, tmp_path, monkeypatch):
    """In both implementations (the ``implementation`` fixture): the text's numbers hold in each.

    Each block runs in an empty working directory, so files it writes land there.
    """
    monkeypatch.chdir(tmp_path)
    name, line = where.split(":")
    padded = "\n" * int(line) + code  # tracebacks then give the line numbers of the Markdown file
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(padded, str(ROOT / name), "exec"), {"__name__": "__docs__"})


def _source_lines() -> list[str]:
    return [COMMENT.sub("", line).strip()
            for path in sorted((ROOT / "minicnn").rglob("*.py"))
            for line in path.read_text(encoding="utf-8").splitlines()]


SOURCE = _source_lines()


@pytest.mark.parametrize(("where", "code"), blocks("python quote"))
def test_quoted_code_exists(where, code):
    missing = []
    for line in code.splitlines():
        quoted = COMMENT.sub("", line).strip()
        if quoted and quoted != "..." and not any(quoted in source for source in SOURCE):
            missing.append(line.strip())
    assert not missing, f"quoted in the docs but found in no module of minicnn/: {missing}"
