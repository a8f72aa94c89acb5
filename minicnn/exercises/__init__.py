"""Exercise mode: write each backward pass yourself, and have it graded.

::

    python -m minicnn.exercises list                  # the exercises
    python -m minicnn.exercises start maxpool [DIR]   # writes DIR/maxpool.py: forward written, backward to do
    python -m minicnn.exercises grade maxpool [DIR]   # grades DIR/maxpool.py; exit code 0 pass, 1 fail

There is one exercise per backward pass (:data:`EXERCISES`). Grading imports the
student's file and runs, in the reference implementation, :mod:`minicnn.gradcheck` on the
student's layer plus targeted cases (overlapping windows, ties, stride 2, odd sizes,
one sample, ...). The feedback is gradcheck's diagnosis and the section of
``docs/backprop.md`` to read. The reference solutions are minicnn's own layers,
kernels and optimizer (:meth:`Exercise.solution`): ``grade_solution(name)`` grades them.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace

from minicnn import implementation
from minicnn.files import atomic_write

Case = tuple[str, Callable[[], "str | None"]]
"""A description and a check that returns None when it passes, else what went wrong."""


@dataclass(frozen=True)
class Exercise:
    """One backward pass to write: the names the student's file defines, and how to grade them."""

    name: str
    title: str
    section: str
    provides: tuple[str, ...]
    make_cases: Callable[[SimpleNamespace], list[Case]]
    make_solution: Callable[[], dict[str, object]]

    @property
    def docs(self) -> str:
        return f"docs/backprop.md#{self.section}"

    def stub(self) -> str:
        """The source of the student's file: the forward pass written, the backward a TODO."""
        return importlib.resources.files("minicnn.exercises.stubs").joinpath(f"{self.name}.py").read_text()

    def solution(self) -> SimpleNamespace:
        """minicnn's own code for the exercise (its solution), under the names the student's file defines."""
        return SimpleNamespace(**self.make_solution())


@dataclass
class Grade:
    """The outcome of grading one exercise: each case, passed (None) or what went wrong."""

    exercise: Exercise
    source: str
    results: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(failure is None for _, failure in self.results)

    def __str__(self) -> str:
        ex = self.exercise
        lines = [f'Exercise "{ex.name}": {ex.title}, graded from {self.source} (reference implementation)']
        for description, failure in self.results:
            lines.append(f"  {'ok  ' if failure is None else 'FAIL'}  {description}")
            if failure is not None:
                lines += [f"        | {line}" for line in failure.splitlines()]
        good = sum(failure is None for _, failure in self.results)
        if self.passed:
            lines.append(f"All {good} checks pass: your backward pass is right.")
        else:
            lines.append(f"{good} of {len(self.results)} checks pass. Read {ex.docs}, fix your code, "
                         f"and grade again.")
        return "\n".join(lines)


def start(name: str, directory: str | Path = ".") -> Path:
    """Write the student's file ``directory/name.py``; FileExistsError rather than overwrite one."""
    exercise = get(name)
    path = Path(directory) / f"{name}.py"
    if path.exists():
        raise FileExistsError(f"{path} exists already: grade it with `python -m minicnn.exercises grade "
                              f"{name} {directory}`, or delete it to start over")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(exercise.stub().encode()))
    return path


def grade(name: str, directory: str | Path = ".") -> Grade:
    """Grade the student's file ``directory/name.py``."""
    exercise = get(name)
    path = Path(directory) / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}: start the exercise with `python -m minicnn.exercises "
                                f"start {name} {directory}`")
    try:
        module = load_student_file(path)
    except Exception:  # the student's file may fail in any way: show where, as Python would
        return Grade(exercise, str(path), [(f"import {path}", traceback.format_exc(limit=-1).strip())])
    missing = [n for n in exercise.provides if not hasattr(module, n)]
    if missing:
        return Grade(exercise, str(path), [(f"{path} defines {', '.join(exercise.provides)}",
                                            f"{path} defines no {', '.join(missing)}")])
    return grade_namespace(exercise, SimpleNamespace(**{n: getattr(module, n) for n in exercise.provides}),
                           str(path))


def grade_solution(name: str) -> Grade:
    """Grade minicnn's own code: every exercise's reference solution must pass."""
    exercise = get(name)
    return grade_namespace(exercise, exercise.solution(), "minicnn's own solution")


def grade_namespace(exercise: Exercise, namespace: SimpleNamespace, source: str) -> Grade:
    """Run every case of ``exercise`` on the functions and classes in ``namespace``, in the reference
    implementation."""
    result = Grade(exercise, source)
    with implementation.use("reference"):
        for description, check in exercise.make_cases(namespace):
            try:
                failure = check()
            except Exception as exc:  # a student's code may raise anything: report it as a failure
                failure = f"{type(exc).__name__}: {exc}"
            result.results.append((description, failure))
    return result


def load_student_file(path: Path) -> ModuleType:
    """Import ``path`` as a fresh module (its classes register nowhere, so it may be imported again)."""
    spec = importlib.util.spec_from_file_location(f"minicnn_exercise_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def get(name: str) -> Exercise:
    """The exercise called ``name``; ValueError listing the names otherwise."""
    from minicnn.exercises.cases import EXERCISES

    if name not in EXERCISES:
        raise ValueError(f"no exercise {name!r}; the exercises are {', '.join(EXERCISES)}")
    return EXERCISES[name]


def names() -> list[str]:
    from minicnn.exercises.cases import EXERCISES

    return list(EXERCISES)
