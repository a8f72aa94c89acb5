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

The tests the docs and the README name exist: every backticked test file or folder under
``tests/``, every ``file.py::test_name``, and every bare test name (in a table whose header says
``Test (`file.py::`)``, a test of that file; elsewhere, a test somewhere under ``tests/``).
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


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # every control character but tab and newline


def test_the_text_holds_no_control_characters():
    """A backslash escape written through a non-raw string (``"\\rfloor"``, ``"\\frac"``) leaves a
    carriage return or a form feed in the text: TeX then reads "floor" and "rac", and the site shows an
    error. No document, notebook or source file holds a control character other than tab and newline."""
    folders = ["docs", "minicnn", "tests", "benchmarks", "examples"]
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md",
             *(path for folder in folders for path in sorted((ROOT / folder).rglob("*"))
               if path.suffix in {".md", ".py", ".ipynb", ".toml", ".yml", ".json"})]
    assert len(files) >= 100
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        found += [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}: {match[0]!r}"
                  for match in CONTROL.finditer(text)]
    assert not found, found


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
    """``pytest.param(docs_section)`` of every registered layer, optimizer and loss, the fused steps and
    every exercise."""
    classes = [*LAYERS.objects(), *OPTIMIZERS.objects(), *LOSSES.objects(), fused.ConvPoolBlock,
               fused.ConvBlock]
    return ([pytest.param(getattr(cls, "docs_section", None), id=cls.__name__) for cls in classes]
            + [pytest.param(exercises.get(name).section, id=f"exercise {name}")
               for name in exercises.names()])


@pytest.mark.parametrize("section", sections())
def test_every_class_names_a_section_of_backprop_md(section):
    assert section in backprop_anchors()


# --------------------------------------------------------------------------- tests the docs name

TESTS = ROOT / "tests"
TEST_PATH = re.compile(r"`(?P<path>(?:tests/)?(?:\w+/)*(?:test_\w+\.py|\w+\.py(?=`))?)(?:::(?P<name>\w*))?`")
"""A backticked test file (``tests/x/test_y.py``, ``x/test_y.py``, ``test_y.py``), a file or folder under
``tests/`` (``tests/fused/definitions.py``, ``tests/fused/``), each with an optional ``::test_name``."""
BARE_NAME = re.compile(r"`(test_\w+)`")
SCOPE = re.compile(r"Test \(`(?P<file>[\w/]+\.py)::`\)|Test \(under `tests/(?P<folder>[\w/]+)/`\)")
"""A table header naming the file of its rows' bare test names, or the folder their files are in."""


def defined_tests(path: Path) -> set[str]:
    return set(re.findall(r"^(?:async )?def (test_\w+)\(", path.read_text(encoding="utf-8"), re.MULTILINE))


def resolve(path: str, folder: str) -> Path | None:
    """The file or folder ``path`` names, relative to ``tests/`` (a leading ``tests/`` is allowed) or to
    ``folder`` under it (the table's); None if there is none."""
    path = path.removeprefix("tests/")
    return next((p for p in (TESTS / path, TESTS / folder / path) if p.exists()), None)


def referenced_tests() -> list:
    """``pytest.param(where, reference, path, name, folder)`` for every test file, folder and test name
    the docs and the README name."""
    found = []
    for document in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]:
        scope_file, folder = None, ""
        for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), start=1):
            where = f"{document.relative_to(ROOT)}:{number}"
            if not line.startswith("|"):
                scope_file, folder = None, ""
            elif scope := SCOPE.search(line):
                scope_file, folder = scope["file"], scope["folder"] or ""
                continue
            for match in TEST_PATH.finditer(line):
                if match["path"] and (match["path"].startswith("tests/") or "test_" in match["path"]):
                    found.append(pytest.param(where, match[0], match["path"], match["name"], folder,
                                              id=f"{where} {match[0]}"))
            for match in BARE_NAME.finditer(line):
                file = scope_file if line.startswith("|") else None
                found.append(pytest.param(where, match[0], file, match[1], folder, id=f"{where} {match[0]}"))
    return found


def test_the_test_references_are_found():
    """Guards the search itself: a broken pattern would silently check nothing."""
    references = [param.values for param in referenced_tests()]
    assert len(references) >= 100
    assert any(where.startswith("docs/reliability.md:") and tuple(rest) == (
        "`test_refuses_to_replace_a_directory_naming_it`", "test_files.py",
        "test_refuses_to_replace_a_directory_naming_it", "") for where, *rest in map(tuple, references))
    assert any(ref[2] == "test_idx.py" and ref[4] == "datasets" for ref in references)


@pytest.mark.parametrize(("where", "reference", "path", "name", "folder"), referenced_tests())
def test_every_test_the_docs_name_exists(where, reference, path, name, folder):
    """Every test file, folder and ``file.py::test_name`` (or bare test name) the docs name exists."""
    if path is None:  # a bare name outside a table that names its file: a test somewhere under tests/
        assert any(name in defined_tests(p) for p in TESTS.rglob("*.py")), f"{where}: no test {reference}"
        return
    found = resolve(path, folder)
    assert found is not None, f"{where}: {reference} names no file or folder under tests/"
    if name:
        assert name in defined_tests(found), f"{where}: {found.relative_to(ROOT)} has no {name}"
