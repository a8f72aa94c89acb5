"""Grading a class: every submission in a folder, each in its own subprocess, into one table.

The folder holds one subfolder per student (``submissions/ada/conv2d.py``, ...) or, for one
exercise, one file per student (``submissions/ada.py``). :func:`grade_folder` grades each file
with :func:`minicnn.exercises.grade` (a subprocess with a timeout: an endless loop or a crash in
one submission is that row's ``error``, and the others go on), all with the same seed so every
student meets the same cases. :func:`write_table` writes the rows as CSV (one line per student
and exercise) or JSON (each row with its cases), atomically.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from minicnn import exercises
from minicnn.files import atomic_write

FOLDER_SCHEMA = "minicnn.exercises.folder/1"
"""The version of the JSON table :func:`write_table` writes."""

COLUMNS = ("student", "exercise", "score", "max_score", "passed", "seed", "error")
"""The columns of the table, one row per student and exercise."""


@dataclass
class Row:
    """One student's grade for one exercise; ``grade`` is None when there was no file to grade."""

    student: str
    exercise: str
    seed: int
    grade: exercises.Grade | None

    def as_dict(self) -> dict:
        if self.grade is None:
            return {"student": self.student, "exercise": self.exercise, "score": 0, "max_score": 0,
                    "passed": False, "seed": self.seed, "error": "no submission"}
        g = self.grade
        return {"student": self.student, "exercise": self.exercise, "score": g.score,
                "max_score": g.max_score, "passed": g.passed, "seed": g.seed, "error": g.error}


def submissions(folder: Path, names: list[str]) -> list[tuple[str, str, Path]]:
    """``(student, exercise, path)`` for every submission in ``folder``; the path may not exist (a named
    exercise a student did not hand in). Without ``names``, the exercises each subfolder holds."""
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            wanted = names or [n for n in exercises.names() if (entry / f"{n}.py").is_file()]
            found += [(entry.name, name, entry / f"{name}.py") for name in wanted]
        elif entry.suffix == ".py":
            if len(names) != 1:
                raise ValueError(f"{entry}: one file per student needs exactly one exercise named "
                                 f"(e.g. grade-folder {folder} conv2d); got {len(names)}")
            found.append((entry.stem, names[0], entry))
    return found


def grade_folder(folder: str | Path, names: list[str], seed: int, timeout: float | None = None,
                 report=None) -> list[Row]:
    """Grade every submission in ``folder`` (see :func:`submissions`) with ``seed``; ``report(row)`` is
    called after each, to show progress."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}: expected one subfolder (or .py file) per student")
    for name in names:
        exercises.get(name)
    rows = []
    for student, name, path in submissions(folder, names):
        grade = exercises.grade(name, path, seed=seed, timeout=timeout) if path.is_file() else None
        rows.append(Row(student, name, seed, grade))
        if report:
            report(rows[-1])
    return rows


def write_table(rows: list[Row], path: str | Path) -> None:
    """Write ``rows`` to ``path``: CSV (``.csv``, the columns :data:`COLUMNS`) or JSON (``.json``, each row
    with its grade's cases, schema :data:`FOLDER_SCHEMA`)."""
    path = Path(path)
    if path.suffix == ".csv":
        text = io.StringIO()
        writer = csv.DictWriter(text, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(row.as_dict() for row in rows)
        data = text.getvalue()
    elif path.suffix == ".json":
        data = json.dumps({"schema": FOLDER_SCHEMA, "rows": [
            {**row.as_dict(), "cases": row.grade.to_dict()["cases"] if row.grade else []} for row in rows]},
            indent=1)
    else:
        raise ValueError(f"--out {path}: expected a .csv or .json file")
    atomic_write(path, lambda f: f.write(data.encode()))
