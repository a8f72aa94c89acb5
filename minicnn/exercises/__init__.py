"""Exercise mode: write each piece of a CNN yourself, and have it graded.

::

    python -m minicnn.exercises list                      # the exercises, in the order to do them
    python -m minicnn.exercises start relu [DIR]          # writes DIR/relu.py: the TODOs are yours
    python -m minicnn.exercises grade relu [DIR]          # grades DIR/relu.py; exit code 0 pass, 1 fail
    python -m minicnn.exercises grade relu --json         # the score per case, as JSON (GRADE_SCHEMA)
    python -m minicnn.exercises grade relu --seed 1234    # replay the cases of an earlier run
    python -m minicnn.exercises grade-folder SUBMISSIONS --out marks.csv   # a teacher: one row per file

There is one exercise per piece (``minicnn.exercises.cases.EXERCISES``): forward and
backward passes, the loss, optimizer updates, L2 regularisation. Grading runs the
student's file **in a subprocess** (:mod:`minicnn.exercises.run`) in which minicnn's own
implementation of that piece is unavailable (:mod:`minicnn.exercises.blocking`): calling
it fails with "you called minicnn's own ...". The cases draw their shapes and values from
a seed that changes from run to run (printed, so a failure can be replayed with
``--seed``): gradcheck on the student's code plus targeted cases (overlapping windows,
ties, stride 2, one sample, ...) whose feedback names the classic bugs. The reference
solutions are minicnn's own code (:meth:`Exercise.solution`): ``grade_solution(name)``
grades them. In a notebook, :func:`check` grades functions and classes defined in the
kernel, in the same process, and never raises.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np

from minicnn import implementation
from minicnn.exercises.blocking import blocked
from minicnn.files import atomic_write

Case = tuple[str, Callable[[], "str | None"]]
"""A description and a check that returns None when it passes, else what went wrong."""

GRADE_SCHEMA = "minicnn.exercises.grade/1"
"""The version of the JSON a grade writes (:meth:`Grade.to_dict`); a change of keys changes it."""


@dataclass(frozen=True)
class Exercise:
    """One piece to write: the names the student's file defines, how to grade them, what is blocked.

    ``make_cases(namespace, rng)`` builds the cases from the student's names, drawing shapes and
    values from ``rng``. ``blocks``: minicnn's own functions and methods (``"module:qualname"``)
    that compute the piece, unavailable while the student's code is graded. ``minutes``: an
    estimate of the time a student needs, for the teaching guide.
    """

    name: str
    title: str
    section: str
    provides: tuple[str, ...]
    make_cases: Callable[[SimpleNamespace, np.random.Generator], list[Case]]
    make_solution: Callable[[], dict[str, object]]
    blocks: tuple[str, ...]
    minutes: int
    timeout: float = 120.0
    """Seconds a subprocess may take to grade a submission before it counts as failed."""

    @property
    def docs(self) -> str:
        return f"docs/backprop.md#{self.section}"

    def stub(self) -> str:
        """The source of the student's file: what is given written, the rest TODOs."""
        return importlib.resources.files("minicnn.exercises.stubs").joinpath(f"{self.name}.py").read_text()

    def solution(self) -> SimpleNamespace:
        """minicnn's own code for the exercise (its solution), under the names the student's file defines."""
        return SimpleNamespace(**self.make_solution())


@dataclass
class Grade:
    """The outcome of grading one exercise: each case, passed (None) or what went wrong.

    ``error``: why the submission could not be graded at all (no file, a timeout, a crash of
    the grading process); then there are no results and the score is 0.
    """

    exercise: Exercise
    source: str
    seed: int
    results: list[tuple[str, str | None]] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return (self.error is None and bool(self.results)
                and all(failure is None for _, failure in self.results))

    @property
    def score(self) -> int:
        """One point per passing case."""
        return sum(failure is None for _, failure in self.results)

    @property
    def max_score(self) -> int:
        """The number of cases (0 when the submission could not be graded)."""
        return len(self.results)

    def to_dict(self) -> dict:
        """The grade as JSON-ready data, schema :data:`GRADE_SCHEMA` (documented in docs/teaching.md)."""
        return {"schema": GRADE_SCHEMA, "exercise": self.exercise.name, "source": self.source,
                "seed": self.seed, "passed": self.passed, "score": self.score, "max_score": self.max_score,
                "error": self.error, "docs": self.exercise.docs,
                "cases": [{"case": description, "passed": failure is None, "points": int(failure is None),
                           "feedback": failure} for description, failure in self.results]}

    @classmethod
    def from_dict(cls, data: dict) -> Grade:
        return cls(get(data["exercise"]), data["source"], data["seed"],
                   [(case["case"], case["feedback"]) for case in data["cases"]], data["error"])

    def __str__(self) -> str:
        ex = self.exercise
        lines = [f'Exercise "{ex.name}": {ex.title}, graded from {self.source} '
                 f"(seed {self.seed}: replay with --seed {self.seed})"]
        if self.error is not None:
            lines.append(f"  not graded: {self.error}")
        for description, failure in self.results:
            lines.append(f"  {'ok  ' if failure is None else 'FAIL'}  {description}")
            if failure is not None:
                lines += [f"        | {line}" for line in failure.splitlines()]
        if self.error is not None:
            lines.append("Not graded, score 0. Fix what is said above and grade again.")
        elif self.passed:
            lines.append(f"All {self.score} checks pass: your {ex.name} is right. Score {self.score}/"
                         f"{self.max_score}.")
        elif self.results and all("NotImplementedError" in (failure or "") for _, failure in self.results):
            lines.append(f"Not yet: the TODOs are still to write (every check met a NotImplementedError: "
                         f"a TODO left, or a call to a method minicnn leaves to you, such as super()'s). "
                         f"Read {ex.docs}, write them, and grade again.")
        else:
            lines.append(f"{self.score} of {self.max_score} checks pass. Read {ex.docs}, fix your code, "
                         f"and grade again.")
        return "\n".join(lines)


def new_seed() -> int:
    """A seed for one grading run, from the operating system: cases differ from run to run."""
    return int.from_bytes(os.urandom(4), "little")


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


def grade(name: str, directory: str | Path = ".", seed: int | None = None,
          timeout: float | None = None) -> Grade:
    """Grade the student's file ``directory/name.py`` in a subprocess
    (:func:`minicnn.exercises.run.grade_file`), the cases drawn from ``seed`` (a new one if None).

    ``directory`` may also be the file itself. FileNotFoundError when there is no such file.
    """
    from minicnn.exercises.run import grade_file

    exercise = get(name)
    path = Path(directory)
    if not path.suffix == ".py":
        path = path / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}: start the exercise with `python -m minicnn.exercises "
                                f"start {name} {directory}`")
    return grade_file(exercise, path, new_seed() if seed is None else seed,
                      exercise.timeout if timeout is None else timeout)


def grade_here(exercise: Exercise, path: Path, seed: int) -> Grade:
    """Grade ``path`` in this process, minicnn's own piece blocked while it is imported and graded."""
    with blocked(exercise.blocks, exercise.name):
        try:
            module = load_student_file(path)
        except Exception as exc:  # the student's file may fail in any way: show where, as Python would
            failure = traceback.format_exc(limit=-1).strip()
            if isinstance(exc, ModuleNotFoundError) and exc.name in names():
                failure += (f"\n{path.name} imports your {exc.name}.py: finish the exercise {exc.name} in "
                            f"the same folder ({path.parent}) first")
            return Grade(exercise, str(path), seed, [(f"import {path}", failure)])
        missing = [n for n in exercise.provides if not hasattr(module, n)]
        if missing:
            return Grade(exercise, str(path), seed, [(f"{path} defines {', '.join(exercise.provides)}",
                                                      f"{path} defines no {', '.join(missing)}")])
        namespace = SimpleNamespace(**{n: getattr(module, n) for n in exercise.provides})
        return grade_namespace(exercise, namespace, str(path), seed, block=False)


def check(name: str, seed: int | None = None, **objects) -> Grade:
    """Grade functions and classes defined in a notebook, in this process; print and return the grade.

    ``check("relu", MyReLU=MyReLU)``. Never raises: a TODO still to write is reported as "not yet".
    minicnn's own piece is blocked while the cases run.
    """
    exercise = get(name)
    missing = [n for n in exercise.provides if n not in objects]
    seed = new_seed() if seed is None else seed
    if missing:
        result = Grade(exercise, "the notebook", seed, error=f"pass {', '.join(missing)} to check()")
    else:
        result = grade_namespace(exercise, SimpleNamespace(**objects), "the notebook", seed)
    print(result)
    return result


def grade_solution(name: str, seed: int = 0) -> Grade:
    """Grade minicnn's own code: every exercise's reference solution must pass."""
    exercise = get(name)
    return grade_namespace(exercise, exercise.solution(), "minicnn's own solution", seed, block=False)


def grade_namespace(exercise: Exercise, namespace: SimpleNamespace, source: str, seed: int,
                    block: bool = True) -> Grade:
    """Run every case of ``exercise`` on the functions and classes in ``namespace``, in the reference
    implementation, with the cases drawn from ``seed`` (and minicnn's own piece blocked if ``block``)."""
    result = Grade(exercise, source, seed)
    with implementation.use("reference"), blocked(exercise.blocks if block else (), exercise.name):
        for description, check_case in exercise.make_cases(namespace, np.random.default_rng(seed)):
            try:
                failure = check_case()
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
