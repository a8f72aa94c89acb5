"""Grading one submission in a subprocess of its own: blocked pieces, prints and crashes stay in it.

The parent (:func:`grade_file`) runs ``python -m minicnn.exercises.run NAME FILE SEED RESULT``
with a timeout; the child (:func:`main`) grades ``FILE`` with
:func:`minicnn.exercises.grade_here` and writes the grade as JSON to ``RESULT``. Whatever the
student's code prints goes to the child's output, which the parent keeps only to explain a
crash. The child imports the same minicnn as the parent (its folder leads ``PYTHONPATH``),
and finds the student's other files (the capstone imports them) in the submission's folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import minicnn
from minicnn import exercises
from minicnn.files import atomic_write


def grade_file(exercise: exercises.Exercise, path: Path, seed: int, timeout: float) -> exercises.Grade:
    """Grade ``path`` in a subprocess that may take ``timeout`` seconds; a crash or timeout is a Grade
    with ``error`` set, never an exception."""
    root = str(Path(minicnn.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, str(path.resolve().parent),
                                                        os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "grade.json"
        command = [sys.executable, "-m", "minicnn.exercises.run", exercise.name, str(path), str(seed),
                   str(result)]
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return exercises.Grade(exercise, str(path), seed,
                                   error=f"grading took longer than {timeout:g} s (an endless loop?)")
        if not result.is_file():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            return exercises.Grade(exercise, str(path), seed,
                                   error=f"the grading process ended with exit code {done.returncode}: "
                                         f"{tail}")
        return exercises.Grade.from_dict(json.loads(result.read_text()))


def main(argv: list[str]) -> int:
    """The child's side: ``argv`` is ``NAME FILE SEED RESULT``; grades ``FILE`` and writes the grade as
    JSON to ``RESULT``."""
    name, path, seed, result = argv
    grade = exercises.grade_here(exercises.get(name), Path(path), int(seed))
    atomic_write(Path(result), lambda f: f.write(json.dumps(grade.to_dict()).encode()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
