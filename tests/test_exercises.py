"""Exercise mode: the reference solutions pass, the untouched stubs fail, a student's answer is graded
with the right diagnosis, and the command line keeps its promises (files, exit codes)."""

import re
import textwrap

import pytest

from minicnn import exercises
from minicnn.exercises.__main__ import main
from minicnn.registry import LAYERS

NAMES = ["dense", "relu", "softmax_cross_entropy", "maxpool", "conv2d", "dropout", "adam"]

# What a student writes in place of each `raise NotImplementedError(...)`, in order of appearance.
ANSWERS = {
    "dense": ["""
        dx = dz @ W.T
        return dx, {"kernel": x.T @ dz, "bias": dz.sum(axis=0)}
    """],
    "relu": ["return dout * (a > 0), {}"],
    "softmax_cross_entropy": ["""
        dz = (np.exp(log_p) - y) / n
        return loss, dz
    """],
    "maxpool": ["""
        _, oh, ow, _ = dout.shape
        dx = np.zeros(x_shape, dtype=dout.dtype)
        for di in range(pool):
            for dj in range(pool):
                routed = np.where(argmax == di * pool + dj, dout, 0)
                dx[:, di:di + s * (oh - 1) + 1:s, dj:dj + s * (ow - 1) + 1:s, :] += routed
        return dx, {}
    """],
    "conv2d": ["""
        _, oh, ow, kh, kw, _ = dcols.shape
        dxp = np.zeros((n, h + top + bottom, w + left + right, c), dtype=dcols.dtype)
        for di in range(kh):
            for dj in range(kw):
                rows = slice(di, di + sh * (oh - 1) + 1, sh)
                columns = slice(dj, dj + sw * (ow - 1) + 1, sw)
                dxp[:, rows, columns, :] += dcols[:, :, :, di, dj, :]
        return dxp[:, top:top + h, left:left + w, :]
    """, """
        dz_rows = dz.reshape(-1, self.filters)
        cols_rows = cols.reshape(dz_rows.shape[0], -1)
        grads = {"kernel": (cols_rows.T @ dz_rows).reshape(W.shape), "bias": dz_rows.sum(axis=0)}
        dcols = (dz_rows @ W.reshape(-1, self.filters).T).reshape(cols.shape)
        return col2im(dcols, x_shape, self.strides, self.pads), grads
    """],
    "dropout": ["return dout * mask, {}"],
    "adam": ["""
        m[...] = self.beta_1 * m + (1 - self.beta_1) * grad
        v[...] = self.beta_2 * v + (1 - self.beta_2) * grad * grad
        alpha = self.learning_rate * np.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        param -= alpha * m / (np.sqrt(v) + self.epsilon)
    """],
}

TODO = re.compile(r"^( *)raise NotImplementedError\(.*\)$", re.MULTILINE)


def answer(name: str, answers: list[str]) -> str:
    """The stub of ``name`` with each TODO replaced by the corresponding answer."""
    stub, pending = exercises.get(name).stub(), list(answers)

    def fill(match: re.Match) -> str:
        return textwrap.indent(textwrap.dedent(pending.pop(0)).strip(), match.group(1))

    source = TODO.sub(fill, stub)
    assert not pending, f"{name}: more answers than TODOs"
    return source


def write(tmp_path, name: str, source: str):
    (tmp_path / f"{name}.py").write_text(source)


def test_every_backward_pass_has_an_exercise():
    assert exercises.names() == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_the_reference_solution_passes(name):
    grade = exercises.grade_solution(name)
    assert grade.passed, str(grade)
    assert len(grade.results) >= 3


@pytest.mark.parametrize("name", NAMES)
def test_the_untouched_stub_fails_with_a_pointer_to_the_docs(tmp_path, name, capsys):
    assert main(["start", name, str(tmp_path)]) == 0
    assert (tmp_path / f"{name}.py").read_text() == exercises.get(name).stub()
    assert main(["grade", name, str(tmp_path)]) == 1
    out = capsys.readouterr().out
    grade = exercises.grade(name, tmp_path)
    assert not any(failure is None for _, failure in grade.results)  # every case fails
    assert "NotImplementedError" in out and f"Read {exercises.get(name).docs}" in out
    assert not [cls for cls in LAYERS.names() if cls.startswith("My")]  # student classes register nowhere


@pytest.mark.parametrize("name", NAMES)
def test_a_correct_answer_written_into_the_stub_passes(tmp_path, name, capsys):
    write(tmp_path, name, answer(name, ANSWERS[name]))
    assert main(["grade", name, str(tmp_path)]) == 0, capsys.readouterr().out
    assert "checks pass: your backward pass is right" in capsys.readouterr().out
    assert main(["grade", name, str(tmp_path)]) == 0  # graded twice in one process: no registry clash


def test_accumulation_forgotten_fails_only_where_windows_overlap(tmp_path):
    wrong = ANSWERS["maxpool"][0].replace("] += routed", "] = routed")  # fine while windows are disjoint
    assert wrong != ANSWERS["maxpool"][0]
    write(tmp_path, "maxpool", answer("maxpool", [wrong]))
    grade = exercises.grade("maxpool", tmp_path)
    failed = [d for d, failure in grade.results if failure is not None]
    assert failed == ["gradcheck: MyMaxPool2D(pool_size=3, strides=2) on x of shape (2, 7, 7, 2)",
                      "gradcheck: MyMaxPool2D(pool_size=2, strides=1) on x of shape (1, 5, 5, 2)",
                      "ties and overlapping windows (stride 1 < pool 2)"]
    assert "the 9 wins four windows (gets 4)" in str(grade)


def test_a_missing_dropout_scale_gets_the_hint(tmp_path):
    write(tmp_path, "dropout", answer("dropout", ["return dout * (mask > 0), {}"]))
    text = str(exercises.grade("dropout", tmp_path))
    assert ("analytic = 0.5 x numeric at every checked entry: the dropout scale 1/(1 - rate) = 2 is missing"
            in text)
    assert "Read docs/backprop.md#dropout" in text


def test_a_missing_mean_passes_one_sample_and_fails_larger_batches(tmp_path):
    write(tmp_path, "softmax_cross_entropy",
          answer("softmax_cross_entropy", ["return loss, np.exp(log_p) - y"]))
    grade = exercises.grade("softmax_cross_entropy", tmp_path)
    results = dict(grade.results)
    assert results["gradcheck: dz for a batch of 1 (K = 4)"] is None
    assert "the 1/N of the mean loss is missing (N = 3)" in results["gradcheck: dz for a batch of 3 (K = 4)"]


def test_a_col2im_that_ignores_the_stride_fails_the_strided_cases(tmp_path):
    wrong = ANSWERS["conv2d"][0].replace("di + sh * (oh - 1) + 1, sh)", "di + oh)").replace(
        "dj + sw * (ow - 1) + 1, sw)", "dj + ow)")
    assert wrong != ANSWERS["conv2d"][0]
    write(tmp_path, "conv2d", answer("conv2d", [wrong, ANSWERS["conv2d"][1]]))
    failed = [d for d, failure in exercises.grade("conv2d", tmp_path).results if failure is not None]
    assert failed and all("stride (2," in d or "strides=(2," in d for d in failed)


def test_a_file_that_does_not_import_is_a_failure_not_a_crash(tmp_path, capsys):
    write(tmp_path, "relu", "def broken(:\n")
    assert main(["grade", "relu", str(tmp_path)]) == 1
    assert "SyntaxError" in capsys.readouterr().out


def test_a_file_without_the_class_says_so(tmp_path):
    write(tmp_path, "relu", "x = 1\n")
    assert "relu.py defines no MyReLU" in str(exercises.grade("relu", tmp_path))


def test_start_never_overwrites_and_grade_needs_a_file(tmp_path, capsys):
    write(tmp_path, "dense", "# my work\n")
    assert main(["start", "dense", str(tmp_path)]) == 1
    assert (tmp_path / "dense.py").read_text() == "# my work\n"
    assert "exists already" in capsys.readouterr().err
    assert main(["grade", "adam", str(tmp_path)]) == 1
    assert "start the exercise with" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no exercise 'softmax'; the exercises are dense, relu"):
        exercises.get("softmax")
    with pytest.raises(SystemExit) as exc:
        main(["grade", "softmax"])
    assert exc.value.code == 2


def test_list_names_every_exercise_and_its_section(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in NAMES:
        assert name in out
    assert "docs/backprop.md#maxpooling2d" in out
