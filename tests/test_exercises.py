"""Exercise mode: the reference solutions pass, the untouched stubs fail, an answer that calls minicnn's
own piece fails saying so, the classic bugs are named, and the command line keeps its promises (files,
exit codes, JSON, a folder of submissions graded into one table)."""

import csv
import json
import re
import textwrap

import numpy as np
import pytest

from minicnn import datasets, exercises
from minicnn.exercises import classroom
from minicnn.exercises.__main__ import main
from minicnn.exercises.cases import CAPSTONE_PARTS
from minicnn.registry import LAYERS

NAMES = ["relu", "dense", "softmax_cross_entropy", "conv_forward", "maxpool_forward", "maxpool", "conv2d",
         "dropout", "batchnorm", "sgd_momentum", "rmsprop", "adam", "l2", "capstone"]
QUICK = NAMES[:-1]  # the capstone trains on MNIST for minutes: its own tests below

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
    "conv_forward": ["""
        xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
        oh, ow = (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1
        cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
        for di in range(kh):
            for dj in range(kw):
                rows, columns = slice(di, di + sh * (oh - 1) + 1, sh), slice(dj, dj + sw * (ow - 1) + 1, sw)
                cols[:, :, :, di, dj, :] = xp[:, rows, columns, :]
        return cols
    """, """
        kh, kw = self.kernel_size
        cols = im2col(x, kh, kw, self.strides, self.pads)
        z = (cols.reshape(-1, kh * kw * W.shape[2]) @ W.reshape(-1, self.filters)).reshape(
            x.shape[0], *self.output_shape) + b
        return z, {"cols": cols, "x_shape": x.shape}
    """],
    "maxpool_forward": ["""
        oh, ow = (h - pool) // s + 1, (w - pool) // s + 1
        out = np.full((n, oh, ow, c), -np.inf, dtype=x.dtype)
        argmax = np.zeros((n, oh, ow, c), dtype=np.uint8)
        for di in range(pool):
            for dj in range(pool):
                window = x[:, di:di + s * (oh - 1) + 1:s, dj:dj + s * (ow - 1) + 1:s, :]
                better = window > out
                out = np.where(better, window, out)
                argmax = np.where(better, np.uint8(di * pool + dj), argmax)
        return out, {"argmax": argmax, "x_shape": x.shape}
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
    "batchnorm": ["""
        dbeta = dout.sum(axis=axes)
        dgamma = (dout * x_hat).sum(axis=axes)
        if not batch_statistics:
            return dout * gamma * inv_std, {"gamma": dgamma, "beta": dbeta}
        m = dout.size // dout.shape[-1]
        return gamma * inv_std / m * (m * dout - dbeta - x_hat * dgamma), {"gamma": dgamma, "beta": dbeta}
    """],
    "sgd_momentum": ["""
        velocity[...] = momentum * velocity - lr * grad
        param += velocity
    """],
    "rmsprop": ["""
        v[...] = rho * v + (1 - rho) * grad * grad
        step = lr * grad / np.sqrt(v + epsilon)
        if momentum:
            m[...] = momentum * m + step
            step = m
        param -= step
    """],
    "adam": ["""
        m[...] = self.beta_1 * m + (1 - self.beta_1) * grad
        v[...] = self.beta_2 * v + (1 - self.beta_2) * grad * grad
        alpha = self.learning_rate * np.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        param -= alpha * m / (np.sqrt(v) + self.epsilon)
    """],
    "l2": ["return self.l2 * float(np.sum(kernel**2))", "return 2 * self.l2 * kernel"],
    "capstone": ["""
        return Sequential([
            Input((28, 28, 1)),
            MyConv2D(32, 3, padding="same", seed=seed), MyReLU(), MyMaxPool2D(2),
            MyDropout(0.25, seed=seed + 1),
            MyConv2D(64, 3, padding="same", seed=seed + 2), MyReLU(), MyMaxPool2D(2),
            MyDropout(0.25, seed=seed + 3),
            Flatten(), MyDense(128, seed=seed + 4), MyReLU(), MyDropout(0.5, seed=seed + 5),
            MyDense(10, activation="softmax", seed=seed + 6),
        ])
    """],
}

# An answer that hands the work to minicnn's own implementation of the piece: it must fail, saying so.
LIBRARY = {
    "relu": ["""
        from minicnn.activations import relu_backward
        return relu_backward(dout, a), {}
    """],
    "dense": ["return super().backward_affine_pass(dz, cache)"],
    "softmax_cross_entropy": ["""
        from minicnn.losses import softmax_cross_entropy as library
        return library(z, y)
    """],
    "conv_forward": ["""
        from minicnn.kernels.im2col import im2col_reference
        return im2col_reference(x, kh, kw, stride, pads)
    """, "return super().forward_affine_pass(x, training)"],
    "maxpool_forward": ["return super().forward_pass(x, training)"],
    "maxpool": ["return super().backward_pass(dout, cache)"],
    "conv2d": ["""
        from minicnn.kernels.im2col import col2im_reference
        return col2im_reference(dcols, x_shape, stride, pads)
    """, "return super().backward_affine_pass(dz, cache)"],
    "dropout": ["return super().backward_pass(dout, cache)"],
    "batchnorm": ["return super().backward_pass(dout, cache)"],
    "sgd_momentum": ["return super().update(name, param, grad)"],
    "rmsprop": ["return super().update(name, param, grad)"],
    "adam": ["return super().update(name, param, grad)"],
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


def test_every_piece_has_an_exercise():
    assert exercises.names() == NAMES


@pytest.mark.parametrize("name", QUICK)
@pytest.mark.parametrize("seed", [0, 1])
def test_the_reference_solution_passes(name, seed):
    grade = exercises.grade_solution(name, seed=seed)
    assert grade.passed, str(grade)
    assert len(grade.results) >= 3


@pytest.mark.parametrize("name", NAMES)
def test_the_untouched_stub_fails_with_a_pointer_to_the_docs(tmp_path, name, capsys):
    if name == "capstone":  # it imports the answers to the exercises before it
        for part in CAPSTONE_PARTS:
            write(tmp_path, part, answer(part, ANSWERS[part]))
    assert main(["start", name, str(tmp_path)]) == 0
    assert (tmp_path / f"{name}.py").read_text() == exercises.get(name).stub()
    assert main(["grade", name, str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "NotImplementedError" in out and f"Read {exercises.get(name).docs}" in out
    assert "Not yet: the TODOs are still to write" in out
    grade = exercises.grade_here(exercises.get(name), tmp_path / f"{name}.py", seed=0)
    assert grade.results and not any(failure is None for _, failure in grade.results)  # every case fails
    assert not [cls for cls in LAYERS.names() if cls.startswith("My")]  # student classes register nowhere


@pytest.mark.parametrize("name", QUICK)
def test_a_correct_answer_written_into_the_stub_passes(tmp_path, name, capsys):
    write(tmp_path, name, answer(name, ANSWERS[name]))
    assert main(["grade", name, str(tmp_path)]) == 0, capsys.readouterr().out
    assert f"checks pass: your {name} is right" in capsys.readouterr().out
    for seed in (1, 2):  # in this process too, twice: no registry clash, other shapes
        grade = exercises.grade_here(exercises.get(name), tmp_path / f"{name}.py", seed)
        assert grade.passed, str(grade)


@pytest.mark.parametrize("name", list(LIBRARY))
def test_an_answer_that_calls_minicnns_own_piece_fails_saying_so(tmp_path, name):
    todos = len(ANSWERS[name])
    for i, library in enumerate(LIBRARY[name]):  # one TODO handed to the library, the others answered
        answers = list(ANSWERS[name])
        answers[i if todos > 1 else 0] = library
        write(tmp_path, name, answer(name, answers))
        grade = exercises.grade(name, tmp_path, seed=3)
        assert not grade.passed and grade.error is None, str(grade)
        assert "you called minicnn's own" in str(grade) and "asks you to write it yourself" in str(grade)


def test_the_library_is_whole_again_after_grading_in_this_process():
    from minicnn.kernels import im2col as kernels
    from minicnn.layers import Conv2D

    original, method = kernels.col2im_reference, Conv2D.backward_affine_pass
    ns = exercises.get("conv2d").solution()
    grade = exercises.grade_namespace(exercises.get("conv2d"), ns, "test", seed=0)
    assert not grade.passed and "you called minicnn's own" in str(grade)  # blocked while the cases ran
    assert kernels.col2im_reference is original and Conv2D.backward_affine_pass is method
    assert exercises.grade_solution("conv2d").passed


def test_the_cases_change_with_the_seed_and_replay_with_it(tmp_path):
    write(tmp_path, "dense", answer("dense", ANSWERS["dense"]))
    ex = exercises.get("dense")
    grades = [exercises.grade_here(ex, tmp_path / "dense.py", seed) for seed in (5, 6, 5)]
    runs = [[d for d, _ in grade.results] for grade in grades]
    assert runs[0] == runs[2] and runs[0] != runs[1]
    assert exercises.new_seed() != exercises.new_seed()


def test_json_gives_a_score_per_case(tmp_path, capsys):
    wrong = ANSWERS["softmax_cross_entropy"][0].replace("/ n", "")
    write(tmp_path, "softmax_cross_entropy", answer("softmax_cross_entropy", [wrong]))
    assert main(["grade", "softmax_cross_entropy", str(tmp_path), "--json", "--seed", "7"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == exercises.GRADE_SCHEMA and data["seed"] == 7 and data["passed"] is False
    assert set(data) == {"schema", "exercise", "source", "seed", "passed", "score", "max_score", "error",
                         "docs", "cases"}
    assert [c["points"] for c in data["cases"]] == [1, 0, 0, 1]  # one sample, two batches, large logits
    assert data["score"] == 2 and data["max_score"] == 4
    assert "the 1/N of the mean loss is missing (N = " in data["cases"][1]["feedback"]


def test_grade_folder_grades_each_student_in_a_subprocess_into_one_table(tmp_path, capsys):
    submissions = tmp_path / "submissions"
    for student, source in [("ada", answer("relu", ANSWERS["relu"])), ("bob", exercises.get("relu").stub()),
                            ("cy", "while True:\n    pass\n"), ("dee", "import os\nos._exit(3)\n")]:
        (submissions / student).mkdir(parents=True)
        write(submissions / student, "relu", source)
    (submissions / "eve").mkdir()  # handed in nothing
    out = tmp_path / "marks.csv"
    assert main(["grade-folder", str(submissions), "relu", "--out", str(out), "--seed", "4",
                 "--timeout", "20"]) == 0
    rows = {r["student"]: r for r in csv.DictReader(out.open())}
    assert list(rows) == ["ada", "bob", "cy", "dee", "eve"]
    assert rows["ada"]["passed"] == "True" and rows["ada"]["score"] == rows["ada"]["max_score"] == "5"
    assert rows["bob"]["passed"] == "False" and (rows["bob"]["score"], rows["bob"]["max_score"]) == ("0", "5")
    assert "longer than 20 s" in rows["cy"]["error"]
    assert "exit code 3" in rows["dee"]["error"]
    assert rows["eve"]["error"] == "no submission" and all(r["seed"] == "4" for r in rows.values())
    assert "grading" in capsys.readouterr().out
    table = tmp_path / "marks.json"
    assert main(["grade-folder", str(submissions), "relu", "--out", str(table), "--timeout", "20"]) == 0
    data = json.loads(table.read_text())
    assert data["schema"] == classroom.FOLDER_SCHEMA and len(data["rows"][0]["cases"]) == 5


def test_check_in_a_notebook_never_raises_and_says_not_yet(capsys):
    ns = {}
    exec(compile(exercises.get("relu").stub(), "relu.py", "exec"), ns)
    grade = exercises.check("relu", MyReLU=ns["MyReLU"])
    assert not grade.passed and "Not yet" in capsys.readouterr().out
    exec(compile(answer("relu", ANSWERS["relu"]), "relu.py", "exec"), ns)
    assert exercises.check("relu", seed=1, MyReLU=ns["MyReLU"]).passed
    assert not exercises.check("relu", seed=1, MyReLU=LAYERS.get("ReLU")).passed  # minicnn's own is blocked
    assert "pass MyReLU to check()" in str(exercises.check("relu"))


# --------------------------------------------------------------------------- the classic bugs, named


def failures(tmp_path, name: str, answers: list[str], seed: int = 0) -> str:
    write(tmp_path, name, answer(name, answers))
    grade = exercises.grade_here(exercises.get(name), tmp_path / f"{name}.py", seed)
    assert not grade.passed
    return "\n".join(failure for _, failure in grade.results if failure)


def test_col2im_with_assignment_shows_the_window_counts(tmp_path):
    wrong = ANSWERS["conv2d"][0].replace("] += dcols", "] = dcols")
    assert wrong != ANSWERS["conv2d"][0]
    text = failures(tmp_path, "conv2d", [wrong, ANSWERS["conv2d"][1]])
    assert "must give each pixel the number of windows it lies in" in text
    counts = re.search(r"lies in:\n(.*?)\nyours gives\n(.*?)\nEach pixel", text, re.DOTALL)
    assert counts.group(1).startswith("[[1 2 ") and " 4 " in counts.group(1)  # corners in 1 window, inside 4+
    assert set(re.findall(r"\d+\.?", counts.group(2))) == {"1."}  # the last window's ones, everywhere
    assert "overlapping windows must add up, dxp[...] += dcols[...], where = overwrites" in text
    assert "docs/backprop.md#window-counts-overlapping-windows-add-up" in text


def test_dw_divided_by_the_batch_size_names_n(tmp_path):
    wrong = ANSWERS["dense"][0].replace('"kernel": x.T @ dz', '"kernel": x.T @ dz / len(x)')
    text = failures(tmp_path, "dense", [wrong])
    n = re.search(r"N = (\d+), D = ", text) or re.search(r"batch size N = (\d+)", text)
    assert f"dW is divided by the batch size N = {n.group(1)}" in text
    assert "/ conv" not in text
    wrong = ANSWERS["conv2d"][1].replace(".reshape(W.shape)", ".reshape(W.shape) / len(dz)")
    text = failures(tmp_path, "conv2d", [ANSWERS["conv2d"][0], wrong])
    assert "dW is divided by the batch size N = " in text


def test_transposed_weights_are_named(tmp_path):
    text = failures(tmp_path, "dense", [ANSWERS["dense"][0].replace("dz @ W.T", "dz @ W")])
    assert "dx = dz @ W uses the weights untransposed" in text
    text = failures(tmp_path, "dense", [ANSWERS["dense"][0].replace("x.T @ dz", "dz.T @ x")])
    assert "the transpose of the kernel's" in text


def test_a_sum_over_the_wrong_axis_is_named(tmp_path):
    text = failures(tmp_path, "dense", [ANSWERS["dense"][0].replace("dz.sum(axis=0)", "dz.sum(axis=1)")])
    assert "you summed over the units (axis=1)" in text
    assert "sum dz over the samples, axis=0" in text
    wrong = ANSWERS["batchnorm"][0].replace("(dout * x_hat).sum(axis=axes)", "(dout * x_hat).sum(axis=0)")
    assert "dgamma has shape" in failures(tmp_path, "batchnorm", [wrong])
    wrong = ANSWERS["conv2d"][1].replace("dz_rows.sum(axis=0)", "dz.sum(axis=0)")
    text = failures(tmp_path, "conv2d", [ANSWERS["conv2d"][0], wrong])
    assert "you summed over the batch axis only" in text


def test_a_missing_relu_mask_is_named(tmp_path):
    assert "the ReLU mask is missing" in failures(tmp_path, "relu", ["return dout.copy(), {}"])


def test_optimizer_bugs_are_named(tmp_path):
    wrong = ANSWERS["rmsprop"][0].replace("np.sqrt(v + epsilon)", "(np.sqrt(v) + epsilon)")
    assert "epsilon is added outside the square root" in failures(tmp_path, "rmsprop", [wrong])
    wrong = ANSWERS["sgd_momentum"][0].replace("param += velocity", "param -= velocity")
    assert "the sign is wrong" in failures(tmp_path, "sgd_momentum", [wrong])
    text = failures(tmp_path, "l2", ["return self.l2 * float(np.sum(kernel**2)) / 2", ANSWERS["l2"][1]])
    assert "Keras' L2 is l2 * sum(w**2), with no 1/2" in text


def test_accumulation_forgotten_fails_only_where_windows_overlap(tmp_path):
    wrong = ANSWERS["maxpool"][0].replace("] += routed", "] = routed")  # fine while windows are disjoint
    assert wrong != ANSWERS["maxpool"][0]
    write(tmp_path, "maxpool", answer("maxpool", [wrong]))
    grade = exercises.grade_here(exercises.get("maxpool"), tmp_path / "maxpool.py", 0)
    failed = [d for d, failure in grade.results if failure is not None]
    assert len(failed) == 3
    assert all("strides=1" in d or "pool_size=3" in d or "overlapping" in d for d in failed)
    assert "the 9 wins four windows (gets 4)" in str(grade)
    assert "overlapping windows must add up" in str(grade)


def test_a_missing_dropout_scale_gets_the_hint(tmp_path):
    text = failures(tmp_path, "dropout", ["return dout * (mask > 0), {}"])
    assert ("analytic = 0.5 x numeric at every checked entry: the dropout scale 1/(1 - rate) = 2 is missing"
            in text)


def test_a_missing_mean_passes_one_sample_and_fails_larger_batches(tmp_path):
    write(tmp_path, "softmax_cross_entropy",
          answer("softmax_cross_entropy", ["return loss, np.exp(log_p) - y"]))
    ex = exercises.get("softmax_cross_entropy")
    grade = exercises.grade_here(ex, tmp_path / "softmax_cross_entropy.py", 0)
    results = list(grade.results)
    assert results[0][0].startswith("gradcheck: dz for a batch of 1 ") and results[0][1] is None
    n = re.search(r"batch of (\d+)", results[1][0]).group(1)
    assert f"the 1/N of the mean loss is missing (N = {n}, the batch size)" in results[1][1]


def test_a_col2im_that_ignores_the_stride_fails_the_strided_cases(tmp_path):
    wrong = ANSWERS["conv2d"][0].replace("di + sh * (oh - 1) + 1, sh)", "di + oh)").replace(
        "dj + sw * (ow - 1) + 1, sw)", "dj + ow)")
    assert wrong != ANSWERS["conv2d"][0]
    write(tmp_path, "conv2d", answer("conv2d", [wrong, ANSWERS["conv2d"][1]]))
    grade = exercises.grade_here(exercises.get("conv2d"), tmp_path / "conv2d.py", 0)
    failed = [d for d, failure in grade.results if failure is not None]
    assert failed and all("stride (2," in d or "strides=(2," in d or "strides=2" in d for d in failed)


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
    assert "error: no file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no exercise 'softmax'; the exercises are relu, dense"):
        exercises.get("softmax")
    with pytest.raises(SystemExit) as exc:
        main(["grade", "softmax"])
    assert exc.value.code == 2


def test_list_names_every_exercise_its_section_and_time(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in NAMES:
        assert name in out
    assert "docs/backprop.md#maxpooling2d, about 30 min" in out


# --------------------------------------------------------------------------- the capstone


def test_the_capstone_needs_the_earlier_answers_and_the_seed_model(tmp_path):
    write(tmp_path, "capstone", answer("capstone", ANSWERS["capstone"]))
    text = str(exercises.grade_here(exercises.get("capstone"), tmp_path / "capstone.py", 0))
    assert "capstone.py imports your adam.py: finish the exercise adam in the same folder" in text
    architecture = exercises.get("capstone").make_cases(exercises.get("capstone").solution(),
                                                        np.random.default_rng(0))[0]
    assert architecture[0].startswith("your layers build the seed model (421,642 parameters")
    assert architecture[1]() is None  # the reference solution builds it


@pytest.mark.slow
def test_the_capstone_built_from_the_answers_reaches_97_percent_on_mnist(tmp_path):
    try:
        datasets.load_mnist(download=False)
    except datasets.DatasetError as exc:
        pytest.skip(f"needs MNIST in MINICNN_DATA or the cache: {exc}")
    for part in CAPSTONE_PARTS:
        write(tmp_path, part, answer(part, ANSWERS[part]))
    write(tmp_path, "capstone", answer("capstone", ANSWERS["capstone"]))
    grade = exercises.grade("capstone", tmp_path, seed=0)
    assert grade.passed, str(grade)
    write(tmp_path, "conv2d", answer("conv2d", [LIBRARY["conv2d"][0], ANSWERS["conv2d"][1]]))
    grade = exercises.grade("capstone", tmp_path, seed=0)
    assert not grade.passed and "you called minicnn's own col2im_reference" in str(grade)


def test_an_inherited_method_is_blocked_where_it_is_defined_and_restored():
    from minicnn.exercises.blocking import LibraryPieceCalled, blocked
    from minicnn.layers import ReLU

    x = np.array([[-1.0, 2.0]], dtype=np.float32)
    with blocked(("minicnn.layers.activation:ReLU.backward_pass",), "relu"):
        layer = ReLU()
        layer.forward(x, training=True)
        with pytest.raises(LibraryPieceCalled, match="you called minicnn's own ReLU.backward_pass"):
            layer.backward(np.ones_like(x))
    assert ReLU().forward(x).tolist() == [[0.0, 2.0]]
    layer = ReLU()
    layer.forward(x, training=True)
    assert layer.backward(np.ones_like(x)).tolist() == [[0.0, 1.0]]
