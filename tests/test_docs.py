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

Links into ``docs/backprop.md`` resolve: every ``backprop.md#anchor`` in the code, the docs,
the notebooks and the README, every ``(#anchor)`` inside backprop.md, and the
``docs_section`` of every registered layer, optimizer and loss (which gradient-check reports
print) is the anchor GitHub gives one of backprop.md's headings.
"""

from __future__ import annotations

import contextlib
import io
import re
import textwrap
from pathlib import Path

import pytest

from minicnn import exercises, fused
from minicnn.registry import LAYERS, LOSSES, OPTIMIZERS

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


# --------------------------------------------------------------------------- links into backprop.md

BACKPROP = ROOT / "docs" / "backprop.md"
LINK = re.compile(r"backprop\.md#([\w-]+)")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: its text without Markdown's marks, in lower case, with
    punctuation and symbols dropped and each space a hyphen ("Conv2D → MaxPool2D" is "conv2d--maxpool2d")."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def backprop_anchors() -> set[str]:
    """The anchors of backprop.md's headings (not of ``#`` lines inside code blocks); a repeated
    heading gets ``-1``, ``-2``, ... as on GitHub."""
    anchors, seen, in_code = set(), {}, False
    for line in BACKPROP.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        elif not in_code and (heading := re.match(r"#{1,6} (.+)", line)):
            anchor = github_anchor(heading[1])
            anchors.add(f"{anchor}-{seen[anchor]}" if anchor in seen else anchor)
            seen[anchor] = seen.get(anchor, 0) + 1
    return anchors


def test_github_anchors_follow_githubs_rules():
    assert github_anchor("The fast path: one step for Conv2D → MaxPool2D → Dropout") == (
        "the-fast-path-one-step-for-conv2d--maxpool2d--dropout")
    assert github_anchor("`im2col` and *col2im*, again!") == "im2col-and-col2im-again"
    assert github_anchor("SGD with [Nesterov](https://x.org) momentum") == "sgd-with-nesterov-momentum"
    anchors = backprop_anchors()
    assert {"dense", "conv2d", "im2col-and-col2im", "adam", "leakyrelu"} <= anchors
    assert "a-kink-on-an-all-zero-input-with-zero-biases-every-z-is-0-exactly-at-relus-kink" not in anchors


def referenced_anchors() -> list:
    """``pytest.param(anchor, where)`` for each link into backprop.md in the code, docs, notebooks, README."""
    files = [*sorted((ROOT / "minicnn").rglob("*.py")), *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "docs" / "notebooks").glob("*.ipynb")), ROOT / "README.md"]
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for match in LINK.finditer(text):
            where = f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}"
            found.append(pytest.param(match[1], where, id=f"{where}#{match[1]}"))
    backprop = BACKPROP.read_text(encoding="utf-8")
    for match in re.finditer(r"\]\(#([\w-]+)\)", backprop):
        where = f"docs/backprop.md:{backprop.count(chr(10), 0, match.start()) + 1}"
        found.append(pytest.param(match[1], where, id=f"{where}#{match[1]}"))
    return found


def test_the_links_are_found():
    """Guards the search itself: a broken pattern would silently check nothing."""
    assert len(referenced_anchors()) >= 40


@pytest.mark.parametrize(("anchor", "where"), referenced_anchors())
def test_every_link_into_backprop_md_resolves(anchor, where):
    assert anchor in backprop_anchors(), f"{where} links to backprop.md#{anchor}, which is no heading"


def sections() -> list:
    """``pytest.param(docs_section)`` of every registered layer, optimizer and loss, the fused step and
    every exercise."""
    classes = [*LAYERS.objects(), *OPTIMIZERS.objects(), *LOSSES.objects(), fused.ConvPoolBlock]
    return ([pytest.param(getattr(cls, "docs_section", None), id=cls.__name__) for cls in classes]
            + [pytest.param(exercises.get(name).section, id=f"exercise {name}")
               for name in exercises.names()])


@pytest.mark.parametrize("section", sections())
def test_every_class_names_a_section_of_backprop_md(section):
    assert section in backprop_anchors()
