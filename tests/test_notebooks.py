"""The notebooks in docs/notebooks: saved without outputs, each checking what it shows, run by CI.

CI executes them with nbmake (``pytest --nbmake docs/notebooks``, the last step of ``.ci/run``);
these tests check what must hold of the files themselves, and that an exercise notebook's TODO cells,
once written, are graded as passing in place (unwritten, CI runs them: they report "Not yet").
"""

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from minicnn import exercises

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("*.ipynb"))


def code_cells(path: Path) -> list[dict]:
    return [cell for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]


def test_the_notebooks():
    assert [p.stem for p in NOTEBOOKS] == ["01_one_training_step_by_hand", "02_break_a_layer_read_gradcheck",
                                           "03_what_the_mnist_network_learned", "04_digits_toy",
                                           "exercises_01_first_backward_passes"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_saved_without_outputs(path):
    for cell in code_cells(path):
        assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name}: a cell has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_each_notebook_asserts_what_it_shows(path):
    source = "\n".join("".join(cell["source"]) for cell in code_cells(path))
    assert re.search(r"^\s*assert |\.assert_ok\(\)|np\.testing\.assert", source, re.MULTILINE)


def test_ci_executes_the_notebooks_with_the_dev_extra():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pytest -q --nbmake docs/notebooks" in ci
    assert '"nbmake>=1.5"' in (ROOT / "pyproject.toml").read_text()


def test_the_mnist_notebook_falls_back_to_digits():
    source = "\n".join("".join(cell["source"]) for cell in code_cells(NOTEBOOKS[2]))
    assert "load_mnist(download=False)" in source and "except datasets.DatasetError" in source
    assert "load_digits()" in source


EXERCISE_ANSWERS = {  # what a student writes in place of each TODO of exercises_01, in order
    "raise NotImplementedError(\"write MyReLU.backward_pass\")": "return dout * (a > 0), {}",
    "raise NotImplementedError(\"write MyDense.backward_affine_pass\")":
        "return dz @ W.T, {\"kernel\": x.T @ dz, \"bias\": dz.sum(axis=0)}",
    "raise NotImplementedError(\"write dz\")": "return loss, (np.exp(log_p) - y) / n",
}


def run_cells(path: Path, replace: dict[str, str]) -> tuple[dict, str]:
    """Run the code cells in one namespace, each TODO replaced: the namespace, and what they printed."""
    namespace, printed = {}, io.StringIO()
    with contextlib.redirect_stdout(printed):
        for cell in code_cells(path):
            source = "".join(cell["source"])
            for todo, written in replace.items():
                source = source.replace(todo, written)
            exec(compile(source, path.name, "exec"), namespace)
    return namespace, printed.getvalue()


def test_the_exercise_notebook_says_not_yet_until_written_then_passes_in_place():
    path = ROOT / "docs" / "notebooks" / "exercises_01_first_backward_passes.ipynb"
    source = "\n".join("".join(cell["source"]) for cell in code_cells(path))
    assert all(todo in source for todo in EXERCISE_ANSWERS)
    unwritten, printed = run_cells(path, {})
    grades = [unwritten[g] for g in ("relu_grade", "dense_grade", "softmax_grade")]
    assert not any(g.passed for g in grades) and printed.count("Not yet: the TODOs are still to write") == 3
    written, printed = run_cells(path, EXERCISE_ANSWERS)
    grades = [written[g] for g in ("relu_grade", "dense_grade", "softmax_grade")]
    assert all(g.passed for g in grades), printed
    assert [g.exercise.name for g in grades] == ["relu", "dense", "softmax_cross_entropy"]
    assert grades[0].exercise is exercises.get("relu")
