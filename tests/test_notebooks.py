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
                                           "exercises_01_first_backward_passes", "exercises_02_convolution"]


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


EXERCISE_ANSWERS = {  # what a student writes in place of each TODO of an exercise notebook, and the grades
    "exercises_01_first_backward_passes": ({
        'raise NotImplementedError("write MyReLU.backward_pass")': "return dout * (a > 0), {}",
        'raise NotImplementedError("write MyDense.backward_affine_pass")':
            'return dz @ W.T, {"kernel": x.T @ dz, "bias": dz.sum(axis=0)}',
        'raise NotImplementedError("write dz")': "return loss, (np.exp(log_p) - y) / n",
    }, {"relu_grade": "relu", "dense_grade": "dense", "softmax_grade": "softmax_cross_entropy"}),
    "exercises_02_convolution": ({
        'raise NotImplementedError("write im2col")': """xp = np.pad(x, ((0, 0), (top, bottom), (left, right),
                                                                (0, 0)))
    oh, ow = (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for di in range(kh):
        for dj in range(kw):
            rows, columns = slice(di, di + sh * (oh - 1) + 1, sh), slice(dj, dj + sw * (ow - 1) + 1, sw)
            cols[:, :, :, di, dj, :] = xp[:, rows, columns, :]
    return cols""",
        'raise NotImplementedError("write MyConv2D.forward_affine_pass")': """(kh, kw) = self.kernel_size
        cols = im2col(x, kh, kw, self.strides, self.pads)
        z = (cols.reshape(-1, kh * kw * W.shape[2]) @ W.reshape(-1, self.filters)).reshape(
            x.shape[0], *self.output_shape) + b
        return z, {"cols": cols, "x_shape": x.shape}""",
        'raise NotImplementedError("write col2im")': """_, oh, ow, kh, kw, _ = dcols.shape
    dxp = np.zeros((n, h + top + bottom, w + left + right, c), dtype=dcols.dtype)
    for di in range(kh):
        for dj in range(kw):
            rows, columns = slice(di, di + sh * (oh - 1) + 1, sh), slice(dj, dj + sw * (ow - 1) + 1, sw)
            dxp[:, rows, columns, :] += dcols[:, :, :, di, dj, :]
    return dxp[:, top:top + h, left:left + w, :]""",
        'raise NotImplementedError("write MyConv2DBackward.backward_affine_pass")':
            """rows = dz.reshape(-1, self.filters)
        grads = {"kernel": (cols.reshape(len(rows), -1).T @ rows).reshape(W.shape), "bias": rows.sum(axis=0)}
        dcols = (rows @ W.reshape(-1, self.filters).T).reshape(cols.shape)
        return col2im(dcols, x_shape, self.strides, self.pads), grads""",
    }, {"forward_grade": "conv_forward", "backward_grade": "conv2d"}),
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


@pytest.mark.parametrize("stem", list(EXERCISE_ANSWERS))
def test_an_exercise_notebook_says_not_yet_until_written_then_passes_in_place(stem):
    path = ROOT / "docs" / "notebooks" / f"{stem}.ipynb"
    answers, graded = EXERCISE_ANSWERS[stem]
    source = "\n".join("".join(cell["source"]) for cell in code_cells(path))
    assert all(todo in source for todo in answers)
    assert source.count("raise NotImplementedError") == len(answers)
    unwritten, printed = run_cells(path, {})
    assert not any(unwritten[g].passed for g in graded)
    assert printed.count("Not yet: the TODOs are still to write") == len(graded)
    written, printed = run_cells(path, answers)
    assert all(written[g].passed for g in graded), printed
    assert [written[g].exercise for g in graded] == [exercises.get(name) for name in graded.values()]
