"""The exercises and how each is graded: gradcheck on the student's code, plus targeted cases.

Every case returns None when it passes, else the text to show: gradcheck's report, or
what was expected and what came. Inputs without ties unless a case is about ties.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minicnn import gradcheck
from minicnn.exercises import Case, Exercise
from minicnn.kernels.im2col import col2im_reference, im2col_reference
from minicnn.layers import Conv2D, Dense, Dropout, MaxPooling2D, ReLU
from minicnn.losses import softmax_cross_entropy
from minicnn.optimizers import Adam


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _no_ties(shape: tuple, seed: int = 0) -> np.ndarray:
    """Distinct values in random order: no two entries of any window are equal."""
    return _rng(seed).permutation(int(np.prod(shape))).reshape(shape) * 0.1


def _gradients(make: callable, x: np.ndarray) -> Case:
    layer = make()
    return (f"gradcheck: {layer!r} on x of shape {x.shape}",
            lambda: _report_failure(gradcheck.check_layer(layer, x)))


def _report_failure(report: gradcheck.GradcheckReport) -> str | None:
    return None if report.ok else str(report)


def _leaves_dout_alone(make: callable, x: np.ndarray) -> Case:
    def check() -> str | None:
        layer = make()
        out = layer.forward(x, training=True)
        dout = _rng(1).standard_normal(out.shape).astype(out.dtype)
        before = dout.copy()
        dx = layer.backward(dout)
        if not np.array_equal(dout, before):
            return "backward changed its argument dout; compute dx as a new array (the layer contract)"
        if np.shares_memory(dx, dout):
            return "dx shares memory with dout; return a new array (the layer contract)"
        return None

    return "backward leaves dout unchanged and returns a new array", check


def _expect(description: str, got: np.ndarray, expected: np.ndarray) -> str | None:
    got = np.asarray(got)
    if got.shape != expected.shape:
        return f"{description}: expected shape {expected.shape}; got {got.shape}"
    if not np.allclose(got, expected, rtol=1e-9, atol=1e-12):
        return f"{description}:\nexpected\n{expected}\ngot\n{got}"
    return None


# --------------------------------------------------------------------------- dense


def _dense_cases(ns: SimpleNamespace) -> list[Case]:
    return [
        _gradients(lambda: ns.MyDense(5, seed=0), _rng().standard_normal((4, 7))),
        _gradients(lambda: ns.MyDense(3, seed=1), _rng(1).standard_normal((1, 6))),
        _gradients(lambda: ns.MyDense(4, activation="relu", seed=2), _rng(2).standard_normal((5, 3))),
        _leaves_dout_alone(lambda: ns.MyDense(3, seed=0), _rng().standard_normal((2, 4)).astype(np.float32)),
    ]


# --------------------------------------------------------------------------- relu


def _relu_cases(ns: SimpleNamespace) -> list[Case]:
    def zero_at_the_kink() -> str | None:
        x = np.array([[-1.0, 0.0, 2.0], [0.0, 3.0, -0.5]])
        layer = ns.MyReLU()
        layer.forward(x, training=True)
        dx = layer.backward(np.ones_like(x))
        return _expect("dx for x = [[-1, 0, 2], [0, 3, -0.5]] and dout all ones (0 at x = 0, as Keras)", dx,
                       np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))

    x4 = _rng().standard_normal((2, 4, 4, 3))
    return [
        _gradients(ns.MyReLU, _rng().standard_normal((3, 5))),
        _gradients(ns.MyReLU, x4),
        ("at x = 0 the gradient is 0", zero_at_the_kink),
        _leaves_dout_alone(ns.MyReLU, x4),
    ]


# --------------------------------------------------------------------------- softmax cross-entropy


def _softmax_cases(ns: SimpleNamespace) -> list[Case]:
    def batch(n: int) -> Case:
        z = _rng(n).standard_normal((n, 4)) * 2
        y = np.eye(4)[_rng(n + 1).integers(0, 4, n)]

        def check() -> str | None:
            _, dz = ns.softmax_cross_entropy(z, y)
            factors = [(float(n), f"the 1/N of the mean loss is missing (N = {n})")] if n > 1 else []
            report = gradcheck.check_gradient(lambda zz: ns.softmax_cross_entropy(zz, y)[0], z, dz, name="z",
                                              factors=factors)
            return _report_failure(report)

        return f"gradcheck: dz for a batch of {n} (K = 4)", check

    def large_logits() -> str | None:
        z, y = np.array([[0.0, 200.0]]), np.array([[1.0, 0.0]])
        _, dz = ns.softmax_cross_entropy(z, y)
        if not np.isfinite(dz).all():
            return f"dz for z = [[0, 200]] is {dz}: compute it from log_p, never from 1/p"
        return _expect("dz for z = [[0, 200]], y = [[1, 0]] (p rounds to [0, 1])", dz,
                       np.array([[-1.0, 1.0]]))

    return [batch(1), batch(3), batch(5), ("large logits stay finite", large_logits)]


# --------------------------------------------------------------------------- max-pooling


def _maxpool_cases(ns: SimpleNamespace) -> list[Case]:
    def ties_and_overlap() -> str | None:
        x = np.zeros((1, 3, 4, 1))
        x[0, 1, 1, 0] = 9.0
        layer = ns.MyMaxPool2D(2, strides=1)
        layer.forward(x, training=True)
        dx = layer.backward(np.ones((1, 2, 3, 1)))
        expected = np.array([[0, 0, 1, 0], [0, 4, 1, 0], [0, 0, 0, 0]], dtype=float)[None, ..., None]
        return _expect("the docs' example: the 9 wins four windows (gets 4); all-zero windows route to "
                       "their first entry", dx, expected)

    return [
        _gradients(lambda: ns.MyMaxPool2D(2), _no_ties((2, 6, 6, 3))),
        _gradients(lambda: ns.MyMaxPool2D(2), _no_ties((2, 7, 5, 2), 1)),
        _gradients(lambda: ns.MyMaxPool2D(3, strides=2), _no_ties((2, 7, 7, 2), 2)),
        _gradients(lambda: ns.MyMaxPool2D(2, strides=1), _no_ties((1, 5, 5, 2), 3)),
        ("ties and overlapping windows (stride 1 < pool 2)", ties_and_overlap),
    ]


# --------------------------------------------------------------------------- conv2d


def _conv_cases(ns: SimpleNamespace) -> list[Case]:
    def adjoint(x_shape: tuple, kh: int, kw: int, stride: tuple[int, int], pads: tuple) -> Case:
        def check() -> str | None:
            x = _rng().standard_normal(x_shape)
            cols = im2col_reference(x, kh, kw, stride, pads)
            dcols = _rng(1).standard_normal(cols.shape)
            dx = ns.col2im(dcols, x_shape, stride, pads)
            if np.shape(dx) != x_shape:
                return f"col2im returned shape {np.shape(dx)}; expected {x_shape}, the shape of x"
            left, right = float((cols * dcols).sum()), float((x * dx).sum())
            if not np.isclose(left, right, rtol=1e-10, atol=1e-10):
                return (f"col2im is not the adjoint of im2col: sum(im2col(x) * dcols) = {left:.10g} but "
                        f"sum(x * col2im(dcols)) = {right:.10g}")
            return None

        return (f"col2im is im2col's adjoint: x {x_shape}, kernel ({kh}, {kw}), stride {stride}, pads {pads}",
                check)

    return [
        adjoint((2, 5, 5, 3), 3, 3, (1, 1), (1, 1, 1, 1)),
        adjoint((1, 7, 6, 2), 3, 3, (2, 2), (1, 1, 0, 1)),
        adjoint((2, 9, 7, 1), 3, 2, (2, 1), (0, 0, 0, 0)),
        _gradients(lambda: ns.MyConv2D(3, 3, seed=0), _rng().standard_normal((2, 6, 6, 2))),
        _gradients(lambda: ns.MyConv2D(2, 3, strides=2, padding="same", seed=1),
                   _rng(1).standard_normal((2, 7, 6, 3))),
        _gradients(lambda: ns.MyConv2D(2, (3, 2), strides=2, seed=2), _rng(2).standard_normal((3, 9, 7, 1))),
        _gradients(lambda: ns.MyConv2D(4, 3, padding="same", activation="relu", seed=3),
                   _rng(3).standard_normal((1, 5, 5, 2))),
    ]


# --------------------------------------------------------------------------- dropout


def _dropout_cases(ns: SimpleNamespace) -> list[Case]:
    return [
        _gradients(lambda: ns.MyDropout(0.5, seed=0), _rng().standard_normal((3, 6))),
        _gradients(lambda: ns.MyDropout(0.25, seed=1), _rng(1).standard_normal((2, 4, 4, 3))),
        _leaves_dout_alone(lambda: ns.MyDropout(0.5, seed=2),
                           _rng().standard_normal((4, 5)).astype(np.float32)),
    ]


# --------------------------------------------------------------------------- adam


def _adam_cases(ns: SimpleNamespace) -> list[Case]:
    def steps(make: callable, description: str) -> Case:
        return (f"check_optimizer: {description}, 5 steps against the formula",
                lambda: _report_failure(gradcheck.check_optimizer(make(), steps=5)))

    def float32() -> str | None:
        param = np.array([0.5, -1.0, 2.0], dtype=np.float32)
        ns.MyAdam().apply_gradients([("w", param, np.array([0.1, -0.2, 0.0], dtype=np.float32))])
        if param.dtype != np.float32:
            return f"the parameter became {param.dtype}; update it in place, in its own dtype"
        # At t = 1 every parameter moves by about lr against the sign of its gradient (docs/backprop.md#adam).
        return _expect("float32 parameters after one step (each moves by about lr = 0.001)",
                       np.round(param.astype(np.float64), 6), np.array([0.499, -0.999, 2.0]))

    return [
        ("float32 parameters stay float32 and move by about lr at the first step", float32),
        steps(ns.MyAdam, "Keras' defaults"),
        steps(lambda: ns.MyAdam(0.01, beta_1=0.5, beta_2=0.9, epsilon=1e-3), "lr 0.01, betas 0.5 and 0.9, "
                                                                             "epsilon 1e-3"),
    ]


def _named(**objects) -> callable:
    return lambda: objects


EXERCISES: dict[str, Exercise] = {ex.name: ex for ex in [
    Exercise("dense", "the backward pass of Dense", "dense", ("MyDense",), _dense_cases,
             _named(MyDense=Dense)),
    Exercise("relu", "the backward pass of ReLU", "activations", ("MyReLU",), _relu_cases,
             _named(MyReLU=ReLU)),
    Exercise("softmax_cross_entropy", "the gradient of softmax cross-entropy with respect to the logits",
             "softmax-and-cross-entropy", ("softmax_cross_entropy",), _softmax_cases,
             _named(softmax_cross_entropy=softmax_cross_entropy)),
    Exercise("maxpool", "the backward pass of MaxPool2D", "maxpooling2d", ("MyMaxPool2D",), _maxpool_cases,
             _named(MyMaxPool2D=MaxPooling2D)),
    Exercise("conv2d", "the backward pass of Conv2D, through im2col and col2im", "conv2d",
             ("col2im", "MyConv2D"), _conv_cases, _named(col2im=col2im_reference, MyConv2D=Conv2D)),
    Exercise("dropout", "the backward pass of Dropout", "dropout", ("MyDropout",), _dropout_cases,
             _named(MyDropout=Dropout)),
    Exercise("adam", "one step of Adam", "adam", ("MyAdam",), _adam_cases, _named(MyAdam=Adam)),
]}
