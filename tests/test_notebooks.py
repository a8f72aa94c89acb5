"""The notebooks in docs/notebooks: saved without outputs, each checking what it shows, run by CI.

CI executes them with nbmake (``pytest --nbmake docs/notebooks``, the last step of ``.ci/run``);
these tests check what must hold of the files themselves.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("*.ipynb"))


def code_cells(path: Path) -> list[dict]:
    return [cell for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]


def test_the_four_notebooks():
    assert [p.stem for p in NOTEBOOKS] == ["01_one_training_step_by_hand", "02_break_a_layer_read_gradcheck",
                                           "03_what_the_mnist_network_learned", "04_digits_toy"]


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
