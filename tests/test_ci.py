"""``.ci/run`` names test files explicitly: after installing an optional extra, it runs the tests that the
extra enables. Every test that skips without the module of an extra (:data:`EXTRA_OF_MODULE`: TensorFlow,
Dask, PyTorch, ...) must be among them, and every test file or test it names must exist."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / ".ci" / "run"
EXTRA_OF_MODULE = {"tensorflow": "keras", "distributed": "cluster", "torch": "bench",
                   "tensorboard": "tensorboard", "onnx": "onnx", "onnxruntime": "onnx",
                   "selenium": "docs"}
"""The module a test skips without, and the extra that installs it."""


def pytest_arguments_by_extra() -> dict[str | None, list[str]]:
    """The test paths (``file``, ``folder`` or ``file::test``) each ``pytest`` line of ``.ci/run`` runs,
    by the extra installed last before it (None before any)."""
    text = CI.read_text(encoding="utf-8").replace("\\\n", " ")
    extra, found = None, {}
    for line in text.splitlines():
        if installed := re.search(r'pip install .*-e "\.\[(\w+)\]"', line):
            extra = installed[1]
        elif line.startswith("pytest "):
            paths = [argument for argument in shlex.split(line)[1:] if argument.startswith("tests/")]
            found.setdefault(extra, []).extend(paths)
    return found


def skips_without(module: str) -> list[tuple[Path, str | None]]:
    """``(file, test)`` for every ``pytest.importorskip(module)`` in a test file: ``test`` is the top-level
    function it is in, None for a module-level skip (the whole file)."""
    found = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for statement in tree.body:
            for node in ast.walk(statement):
                if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "importorskip"
                        and node.args and getattr(node.args[0], "value", None) == module):
                    function = statement.name if isinstance(statement, ast.FunctionDef) else None
                    found.append((path, function))
    return found


def covers(argument: str, path: Path, function: str | None) -> bool:
    """Whether the pytest argument runs ``function`` of ``path`` (the whole file if ``function`` is None)."""
    target, _, test = argument.partition("::")
    if (ROOT / target).is_dir():
        return path.is_relative_to(ROOT / target)
    return ROOT / target == path and (not test or test == function)


@pytest.mark.parametrize("module", EXTRA_OF_MODULE)
def test_every_test_an_extra_enables_runs_after_it_is_installed(module):
    skips = skips_without(module)
    assert skips, f"no test skips without {module}: the search is broken"
    arguments = pytest_arguments_by_extra().get(EXTRA_OF_MODULE[module], [])
    missing = [f"{path.relative_to(ROOT)}{'::' + function if function else ''}" for path, function in skips
               if not any(covers(argument, path, function) for argument in arguments)]
    assert missing == [], f".ci/run does not run these after installing [{EXTRA_OF_MODULE[module]}]"


def test_every_test_ci_names_exists():
    arguments = [argument for found in pytest_arguments_by_extra().values() for argument in found]
    assert "tests/test_numba_cache.py" in arguments  # guards the parsing
    for argument in arguments:
        target, _, test = argument.partition("::")
        assert (ROOT / target).exists(), f".ci/run runs {argument}: no such file or folder"
        if test:
            assert re.search(rf"^def {test}\(", (ROOT / target).read_text(encoding="utf-8"), re.MULTILINE), (
                f".ci/run runs {argument}: no such test")


def test_no_failing_command_lets_ci_go_on():
    """``set -e`` ignores a failure of any command of an ``&&`` list but the last: with ``pip install -e
    ".[dev]" && pytest`` a failed install would skip every test and CI would go on to pass. Every line of
    ``.ci/run`` that chains commands with ``&&`` (outside comments, ``if`` conditions, subshells that start
    a line, ``$(...)`` and here-documents) ends in ``|| exit 1``."""
    lines, heredoc = [], None
    for line in CI.read_text(encoding="utf-8").splitlines():
        if heredoc:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        if opened := re.search(r"<<-?'?(\w+)'?", line):
            heredoc = opened[1]
        lines.append(line)
    chained = []
    for line in lines:
        code = re.sub(r"\$\([^()]*(\([^()]*\)[^()]*)*\)", "", line.split("  #")[0]).strip()
        if " && " in code and not code.startswith(("#", "if ", "(", "elif ", "while ")):
            chained.append(code)
    assert len(chained) >= 5, chained  # the README's test command among them
    assert any(code.startswith('pip install -e ".[dev]" && pytest') for code in chained)
    assert [code for code in chained if not code.endswith("|| exit 1")] == []
