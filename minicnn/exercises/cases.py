"""The exercises and how each is graded: gradcheck on the student's code, plus targeted cases.

Every case returns None when it passes, else the text to show: gradcheck's report, or what
was expected and what came, in the words of the classic bug when the answer is one of them
(``_diagnose``: transposed weights, a sum over the wrong axis, a division by the batch
size N, a missing ReLU mask, overlapping windows that overwrite instead of adding up).
Shapes and values are drawn from the grading run's generator, so they change from run to
run; inputs have no ties unless a case is about ties. Expected values are computed here,
with the library's pieces imported before the grader blocks them (:mod:`minicnn.exercises.blocking`
leaves this module alone) or written out from the formula.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from minicnn import gradcheck
from minicnn.exercises import Case, Exercise
from minicnn.exercises.solutions import seed_model
from minicnn.kernels import conv_output_size
from minicnn.kernels.im2col import col2im_reference, im2col_reference
from minicnn.kernels.maxpool import maxpool_forward_reference
from minicnn.layers import BatchNormalization, Conv2D, Dense, Dropout, MaxPooling2D, ReLU
from minicnn.losses import softmax_cross_entropy
from minicnn.optimizers import SGD, Adam, RMSprop
from minicnn.regularizers import L2

Rng = np.random.Generator
WINDOW_COUNTS = "docs/backprop.md#window-counts-overlapping-windows-add-up"


def _seed(rng: Rng) -> int:
    """A seed for a layer or a generator, drawn from the grading run's generator."""
    return int(rng.integers(2**31))


def _size(rng: Rng, low: int, high: int) -> int:
    """A size from ``low`` to ``high``, both included."""
    return int(rng.integers(low, high + 1))


def _no_ties(rng: Rng, shape: tuple) -> np.ndarray:
    """Distinct values in random order: no two entries of any window are equal."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1


def _gradients(make: callable, x: np.ndarray, factors: list[tuple[float, str]] = ()) -> Case:
    layer = make()
    return (
        f"gradcheck: {layer!r} on x of shape {x.shape}",
        lambda: _report_failure(gradcheck.check_layer(layer, x, factors=factors)),
    )


def _report_failure(report: gradcheck.GradcheckReport) -> str | None:
    return None if report.ok else str(report)


def _batch_factors(n: int, rows: int | None = None, rows_name: str = "") -> list[tuple[float, str]]:
    """The constant factors a gradient check names: a division or multiplication by the batch size."""
    factors = (
        [
            (
                1 / n,
                f"divided by the batch size N = {n}: the loss's 1/N is already in dout, so a layer "
                "must not divide by N again",
            ),
            (float(n), f"multiplied by the batch size N = {n}"),
        ]
        if n > 1
        else []
    )
    if rows is not None and rows != n:
        factors.append(
            (
                1 / rows,
                f"divided by the number of windows {rows_name} = {rows}: each window's "
                "contribution is summed, not averaged",
            )
        )
    return factors


def _leaves_dout_alone(make: callable, x: np.ndarray) -> Case:
    def check() -> str | None:
        layer = make()
        out = layer.forward(x, training=True)
        dout = np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype)
        before = dout.copy()
        dx = layer.backward(dout)
        if not np.array_equal(dout, before):
            return "backward changed its argument dout; compute dx as a new array (the layer contract)"
        if np.shares_memory(dx, dout):
            return "dx shares memory with dout; return a new array (the layer contract)"
        return None

    return "backward leaves dout unchanged and returns a new array", check


def _short(a: np.ndarray) -> str:
    return np.array2string(np.asarray(a), precision=4, threshold=40, edgeitems=3, suppress_small=True)


def _expect(description: str, got, expected: np.ndarray) -> str | None:
    got = np.asarray(got)
    if got.shape != expected.shape:
        return f"{description}: expected shape {expected.shape}; got {got.shape}"
    if not np.allclose(got, expected, rtol=1e-9, atol=1e-12):
        return f"{description}:\nexpected\n{_short(expected)}\ngot\n{_short(got)}"
    return None


def _diagnose(
    what: str, got, expected: np.ndarray, wrong: list[tuple[np.ndarray, str]], rtol: float = 1e-7
) -> str | None:
    """None if ``got`` is ``expected``; else the story of the first classic bug in ``wrong`` (pairs of
    what that bug gives and what to call it) that ``got`` matches, else the two arrays."""
    got = np.asarray(got)
    for value, story in wrong:
        value = np.asarray(value)
        if (
            value.shape == got.shape
            and (value.shape != expected.shape or not np.allclose(value, expected))
            and np.allclose(got, value, rtol=rtol, atol=1e-12)
        ):
            return f"{what}: {story}"
    if got.shape != expected.shape:
        return f"{what}: expected shape {expected.shape}; got {got.shape}"
    if not np.allclose(got, expected, rtol=rtol, atol=1e-12):
        return f"{what} is wrong:\nexpected\n{_short(expected)}\ngot\n{_short(got)}"
    return None


def _first(*failures: str | None) -> str | None:
    found = [f for f in failures if f is not None]
    return "\n".join(found) or None


# --------------------------------------------------------------------------- dense


def _dense_named(ns: SimpleNamespace, rng: Rng, n: int, d: int, u: int) -> Case:
    """Each gradient of the affine part against the formula, with the classic bugs named."""

    def check() -> str | None:
        layer = ns.MyDense(u, seed=_seed(rng))
        x = rng.standard_normal((n, d))
        layer.build((d,))
        layer.astype(np.float64)
        z, cache = layer.forward_affine_pass(x, True)
        dz = rng.standard_normal(z.shape)
        W = layer.params["kernel"]
        try:
            dx, grads = layer.backward_affine_pass(dz, cache)
        except ValueError as exc:
            return (
                f"{type(exc).__name__}: {exc}\n(the shapes: x {x.shape} = (N, D), W {W.shape} = (D, U), "
                f"dz {dz.shape} = (N, U); which product of these has the shape of x, which that of W?)"
            )
        dW, db = x.T @ dz, dz.sum(axis=0)
        return _first(
            _diagnose(
                "dW",
                grads.get("kernel"),
                dW,
                [
                    (
                        dW.T,
                        f"dW has shape {dW.T.shape}, the transpose of the kernel's {W.shape}: "
                        "dW = x.T @ dz pairs each input feature d (rows) with each unit u (columns), "
                        "as W does",
                    ),
                    (dW / n, f"dW is divided by the batch size N = {n}: the loss's 1/N is already in dz"),
                ],
            ),
            _diagnose(
                "db",
                grads.get("bias"),
                db,
                [
                    (
                        dz.sum(axis=1),
                        f"db has shape ({n},), one value per sample: you summed over the units "
                        "(axis=1). b[u] is added to z[n, u] for every sample n: sum dz over the "
                        "samples, axis=0",
                    ),
                    (db / n, f"db is divided by the batch size N = {n}: the loss's 1/N is already in dz"),
                ],
            ),
            _diagnose(
                "dx",
                dx,
                dz @ W.T,
                [
                    (
                        (dz @ W.T) / n,
                        f"dx is divided by the batch size N = {n}: the loss's 1/N is already in dz",
                    )
                ]
                + (
                    [
                        (
                            dz @ W,
                            "dx = dz @ W uses the weights untransposed: x[n, d] reaches z[n, u] through "
                            "W[d, u], so dx = dz @ W.T",
                        )
                    ]
                    if d == u
                    else []
                ),
            ),
        )

    square = " (D = U, so transposed weights keep their shape)" if d == u else ""
    return f"dx, dW and db against the formula: N = {n}, D = {d}, U = {u}{square}", check


def _dense_cases(ns: SimpleNamespace, rng: Rng) -> list[Case]:
    n, d, u = _size(rng, 2, 6), _size(rng, 3, 8), _size(rng, 2, 6)
    return [
        _gradients(lambda: ns.MyDense(u, seed=_seed(rng)), rng.standard_normal((n, d)), _batch_factors(n)),
        _gradients(lambda: ns.MyDense(_size(rng, 2, 5), seed=_seed(rng)), rng.standard_normal((1, d))),
        _gradients(lambda: ns.MyDense(u, activation="relu", seed=_seed(rng)), rng.standard_normal((n, d))),
        _dense_named(ns, rng, n, d, u + (u == d)),
        _dense_named(ns, rng, n, d, d),
        _leaves_dout_alone(lambda: ns.MyDense(u, seed=0), rng.standard_normal((n, d)).astype(np.float32)),
    ]


# --------------------------------------------------------------------------- relu


def _relu_cases(ns: SimpleNamespace, rng: Rng) -> list[Case]:
    def zero_at_the_kink() -> str | None:
        x = np.array([[-1.0, 0.0, 2.0], [0.0, 3.0, -0.5]])
        layer = ns.MyReLU()
        layer.forward(x, training=True)
        dx = layer.backward(np.ones_like(x))
        return _expect(
            "dx for x = [[-1, 0, 2], [0, 3, -0.5]] and dout all ones (0 at x = 0, as Keras)",
            dx,
            np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
        )

    def masked() -> str | None:
        x = rng.standard_normal((_size(rng, 2, 4), _size(rng, 3, 6)))
        layer = ns.MyReLU()
        a = layer.forward(x, training=True)
        dout = rng.standard_normal(x.shape)
        return _diagnose(
            "dx",
            layer.backward(dout),
            dout * (x > 0),
            [
                (
                    dout,
                    "the ReLU mask is missing: dx = dout everywhere, but the gradient passes only where the "
                    "unit was active (x > 0) and is 0 where ReLU blocked its input",
                ),
                (a, "dx is the output a; it is dout, masked where the unit was inactive"),
                (
                    dout * (x < 0),
                    "the mask is the wrong way round: the gradient passes where x > 0, not x < 0",
                ),
            ],
        )

    x4 = rng.standard_normal((_size(rng, 1, 3), _size(rng, 3, 5), _size(rng, 3, 5), _size(rng, 1, 3)))
    return [
        _gradients(ns.MyReLU, rng.standard_normal((_size(rng, 2, 5), _size(rng, 3, 7)))),
        _gradients(ns.MyReLU, x4),
        ("dx is dout where x > 0 and 0 elsewhere", masked),
        ("at x = 0 the gradient is 0", zero_at_the_kink),
        _leaves_dout_alone(ns.MyReLU, x4),
    ]


# --------------------------------------------------------------------------- softmax cross-entropy


def _softmax_cases(ns: SimpleNamespace, rng: Rng) -> list[Case]:
    k = _size(rng, 3, 6)

    def batch(n: int) -> Case:
        z = rng.standard_normal((n, k)) * 2
        y = np.eye(k)[rng.integers(0, k, n)]

        def check() -> str | None:
            _, dz = ns.softmax_cross_entropy(z, y)
            factors = (
                [
                    (float(n), f"the 1/N of the mean loss is missing (N = {n}, the batch size)"),
                    (1 / n, f"dz is divided by the batch size N = {n} twice"),
                ]
                if n > 1
                else []
            )
            report = gradcheck.check_gradient(
                lambda zz: ns.softmax_cross_entropy(zz, y)[0], z, dz, name="z", factors=factors
            )
            return _report_failure(report)

        return f"gradcheck: dz for a batch of {n} (K = {k})", check

    def large_logits() -> str | None:
        z, y = np.array([[0.0, 200.0]]), np.array([[1.0, 0.0]])
        _, dz = ns.softmax_cross_entropy(z, y)
        if not np.isfinite(dz).all():
            return f"dz for z = [[0, 200]] is {dz}: compute it from log_p, never from 1/p"
        return _expect(
            "dz for z = [[0, 200]], y = [[1, 0]] (p rounds to [0, 1])", dz, np.array([[-1.0, 1.0]])
        )

    return [
        batch(1),
        batch(_size(rng, 2, 4)),
        batch(_size(rng, 5, 8)),
        ("large logits stay finite", large_logits),
    ]


# --------------------------------------------------------------------------- max-pooling


def _maxpool_cases(ns: SimpleNamespace, rng: Rng) -> list[Case]:
    def ties_and_overlap() -> str | None:
        x = np.zeros((1, 3, 4, 1))
        x[0, 1, 1, 0] = 9.0
        layer = ns.MyMaxPool2D(2, strides=1)
        layer.forward(x, training=True)
        dx = layer.backward(np.ones((1, 2, 3, 1)))
        expected = np.array([[0, 0, 1, 0], [0, 4, 1, 0], [0, 0, 0, 0]], dtype=float)[None, ..., None]
        failure = _expect(
            "the docs' example: the 9 wins four windows (gets 4); all-zero windows route to "
            "their first entry",
            dx,
            expected,
        )
        if failure and np.shape(dx) == expected.shape and np.asarray(dx)[0, 1, 1, 0] == 1.0:
            failure += (
                "\nThe 9 got 1, the gradient of one window: overlapping windows must add up. An input "
                f"that wins several windows gets the sum (+=, not =; {WINDOW_COUNTS})"
            )
        return failure

    c = _size(rng, 1, 3)
    return [
        _gradients(
            lambda: ns.MyMaxPool2D(2), _no_ties(rng, (2, 2 * _size(rng, 2, 4), 2 * _size(rng, 2, 4), c))
        ),
        _gradients(
            lambda: ns.MyMaxPool2D(2), _no_ties(rng, (2, 2 * _size(rng, 2, 3) + 1, _size(rng, 4, 7), c))
        ),
        _gradients(
            lambda: ns.MyMaxPool2D(3, strides=2), _no_ties(rng, (2, _size(rng, 6, 9), _size(rng, 6, 9), c))
        ),
        _gradients(
            lambda: ns.MyMaxPool2D(2, strides=1), _no_ties(rng, (1, _size(rng, 4, 6), _size(rng, 4, 6), c))
        ),
        ("ties and overlapping windows (stride 1 < pool 2)", ties_and_overlap),
    ]


def _maxpool_forward_cases(ns: SimpleNamespace, rng: Rng) -> list[Case]:
    def forward(pool: int, stride: int, x: np.ndarray) -> Case:
        def check() -> str | None:
            out, cache = ns.MyMaxPool2D(pool, strides=stride).forward_pass(x, True)
            expected, argmax = maxpool_forward_reference(x, pool, stride)
            failure = _diagnose("out", out, expected, [])
            if not isinstance(cache, dict) or "argmax" not in cache:
                return _first(
                    failure,
                    'the cache must be a dict with "argmax" and "x_shape" (the backward pass reads them)',
                )
            return _first(failure, _diagnose('cache["argmax"]', cache["argmax"], argmax, []))

        oh = conv_output_size(x.shape[1], pool, stride)
        return f"out and argmax: pool {pool}, stride {stride}, x {x.shape} (OH = {oh})", check

    def ties() -> str | None:
        x = np.zeros((1, 4, 4, 1))
        x[0, 0, 1, 0] = x[0, 1, 0, 0] = 5.0  # the first window: two equal maxima
        out, cache = ns.MyMaxPool2D(2).forward_pass(x, True)
        return _first(
            _expect("out for a window with a tie", out, np.array([5.0, 0, 0, 0]).reshape(1, 2, 2, 1)),
            _expect(
                "argmax on ties: the first maximum in row-major order (di * pool + dj = 1), then "
                "0 for the all-zero windows",
                np.asarray(cache["argmax"], dtype=int),
                np.array([1, 0, 0, 0]).reshape(1, 2, 2, 1),
            ),
        )

    c = _size(rng, 1, 3)
    return [
        forward(2, 2, _no_ties(rng, (2, 2 * _size(rng, 2, 4), 2 * _size(rng, 2, 4), c))),
        forward(2, 2, _no_ties(rng, (1, 2 * _size(rng, 2, 3) + 1, _size(rng, 5, 7), c))),
        forward(3, 2, _no_ties(rng, (2, _size(rng, 6, 9), _size(rng, 6, 9), c))),
        forward(2, 1, _no_ties(rng, (1, _size(rng, 4, 6), _size(rng, 4, 6), c))),
        ("ties: the first maximum wins", ties),
        _gradients(lambda: ns.MyMaxPool2D(2), _no_ties(rng, (2, 6, 4, c))),
    ]


# --------------------------------------------------------------------------- conv2d


def _window_counts(ns: SimpleNamespace, rng: Rng) -> Case:
    h, w = _size(rng, 4, 6), _size(rng, 4, 6)

    def check() -> str | None:
        ones = np.ones((1, h - 2, w - 2, 3, 3, 1))
        got = np.asarray(ns.col2im(ones, (1, h, w, 1), (1, 1), (0, 0, 0, 0)))
        counts = col2im_reference(ones, (1, h, w, 1), (1, 1), (0, 0, 0, 0))
        if got.shape == counts.shape and np.allclose(got, counts):
            return None
        text = (
            f"With dcols all ones (3x3 windows, stride 1, on a {h}x{w} image), col2im must give each pixel "
            f"the number of windows it lies in:\n{counts[0, :, :, 0].astype(int)}\n"
        )
        if got.shape != counts.shape:
            return text + f"yours has shape {got.shape}, not {counts.shape}"
        text += f"yours gives\n{_short(got[0, :, :, 0].round(4))}\n"
        if got.max() <= 1:
            text += (
                "Each pixel got the gradient of one window only: overlapping windows must add up, "
                "dxp[...] += dcols[...], where = overwrites what the earlier windows put there."
            )
        return text + f"Read {WINDOW_COUNTS}"

    return f"col2im of all ones gives each pixel its window count ({h}x{w} image, 3x3 windows)", check


def _adjoint(
    ns: SimpleNamespace, rng: Rng, x_shape: tuple, kh: int, kw: int, stride: tuple, pads: tuple
) -> Case:
    def check() -> str | None:
        x = rng.standard_normal(x_shape)
        cols = im2col_reference(x, kh, kw, stride, pads)
        dcols = rng.standard_normal(cols.shape)
        dx = ns.col2im(dcols, x_shape, stride, pads)
        if np.shape(dx) != x_shape:
            return f"col2im returned shape {np.shape(dx)}; expected {x_shape}, the shape of x"
        left, right = float((cols * dcols).sum()), float((x * dx).sum())
        if not np.isclose(left, right, rtol=1e-10, atol=1e-10):
            text = (
                f"col2im is not the adjoint of im2col: sum(im2col(x) * dcols) = {left:.10g} but "
                f"sum(x * col2im(dcols)) = {right:.10g}"
            )
            overlap = kh > stride[0] or kw > stride[1]
            if overlap and np.allclose(dx, _last_window(dcols, x_shape, stride, pads)):
                text += (
                    "\nEach pixel got the gradient of the last window that covers it: overlapping windows "
                    f"must add up (+=, not =). Read {WINDOW_COUNTS}"
                )
            return text
        return None

    return (
        f"col2im is im2col's adjoint: x {x_shape}, kernel ({kh}, {kw}), stride {stride}, pads {pads}",
        check,
    )


def _last_window(dcols: np.ndarray, x_shape: tuple, stride: tuple, pads: tuple) -> np.ndarray:
    """What col2im written with ``=`` instead of ``+=`` gives: the last window's gradient, per pixel."""
    top, bottom, left, right = pads
    n, h, w, c = x_shape
    _, oh, ow, kh, kw, _ = dcols.shape
    dxp = np.zeros((n, h + top + bottom, w + left + right, c))
    for di in range(kh):
        for dj in range(kw):
            dxp[
                :,
                di : di + stride[0] * (oh - 1) + 1 : stride[0],
                dj : dj + stride[1] * (ow - 1) + 1 : stride[1],
                :,
            ] = dcols[:, :, :, di, dj, :]
    return dxp[:, top : top + h, left : left + w, :]


def _conv_named(ns: SimpleNamespace, rng: Rng) -> Case:
    n, h, w, c, f = _size(rng, 2, 3), _size(rng, 5, 7), _size(rng, 5, 7), _size(rng, 1, 3), _size(rng, 2, 4)

    def check() -> str | None:
        layer = ns.MyConv2D(f, 3, seed=_seed(rng))
        x = rng.standard_normal((n, h, w, c))
        layer.build((h, w, c))
        layer.astype(np.float64)
        z, cache = layer.forward_affine_pass(x, True)
        dz = rng.standard_normal(z.shape)
        _, grads = layer.backward_affine_pass(dz, cache)
        cols = im2col_reference(x, 3, 3, (1, 1), (0, 0, 0, 0)).reshape(-1, 9 * c)
        dW = (cols.T @ dz.reshape(-1, f)).reshape(3, 3, c, f)
        rows = n * z.shape[1] * z.shape[2]
        return _first(
            _diagnose(
                "dW",
                grads.get("kernel"),
                dW,
                [
                    (dW / n, f"dW is divided by the batch size N = {n}: the loss's 1/N is already in dz"),
                    (dW / rows, f"dW is divided by the number of windows N*OH*OW = {rows}: windows add up"),
                ],
            ),
            _diagnose(
                "db",
                grads.get("bias"),
                dz.sum(axis=(0, 1, 2)),
                [
                    (
                        dz.sum(axis=0),
                        f"db has shape {dz.shape[1:]}: you summed over the batch axis only; the bias "
                        "is added at every sample, row and column, so sum dz over axes (0, 1, 2)",
                    ),
                    (
                        dz.sum(axis=(1, 2, 3)),
                        f"db has shape ({n},): you summed over every axis but the samples'; "
                        "sum over the samples, rows and columns, axes (0, 1, 2)",
                    ),
                    (dz.sum(axis=(0, 1, 2)) / n, f"db is divided by the batch size N = {n}"),
                ],
            ),
        )

    return f"dW and db against the formula: x ({n}, {h}, {w}, {c}), {f} filters of 3x3", check


def _conv_cases(ns: SimpleNamespace, rng: Rng) -> list[Case]:
    n = _size(rng, 2, 3)
    x1 = rng.standard_normal((n, _size(rng, 5, 8), _size(rng, 5, 8), _size(rng, 1, 3)))
    oh, ow = x1.shape[1] - 2, x1.shape[2] - 2
    return [
        _window_counts(ns, rng),
        _adjoint(ns, rng, (2, _size(rng, 4, 6), _size(rng, 4, 6), 3), 3, 3, (1, 1), (1, 1, 1, 1)),
        _adjoint(ns, rng, (1, _size(rng, 6, 8), _size(rng, 5, 7), 2), 3, 3, (2, 2), (1, 1, 0, 1)),
        _adjoint(ns, rng, (2, _size(rng, 7, 9), _size(rng, 6, 8), 1), 3, 2, (2, 1), (0, 0, 0, 0)),
        _conv_named(ns, rng),
        _gradients(
            lambda: ns.MyConv2D(3, 3, seed=_seed(rng)),
            x1,
            _batch_factors(n, n * oh * ow, f"N*OH*OW = {n}*{oh}*{ow}"),
        ),
        _gradients(
            lambda: ns.MyConv2D(2, 3, strides=2, padding="same", seed=_seed(rng)),
            rng.standard_normal((2, _size(rng, 6, 8), _size(rng, 5, 7), 3)),
        ),
        _gradients(
            lambda: ns.MyConv2D(2, (3, 2), strides=2, seed=_seed(rng)),
            rng.standard_normal((3, _size(rng, 7, 9), _size(rng, 6, 8), 1)),
        ),
        _gradients(
            lambda: ns.MyConv2D(4, 3, padding="same", activation="relu", seed=_seed(rng)),
            rng.standard_normal((1, 5, 5, 2)),
        ),
    ]


def _conv_forward_cases(ns: SimpleNamespace, rng: Rng) -> list[Case]:
    def unfold(x_shape: tuple, kh: int, kw: int, stride: tuple, pads: tuple) -> Case:
        def check() -> str | None:
            x = rng.standard_normal(x_shape)
            return _diagnose(
                "im2col(x)",
                ns.im2col(x, kh, kw, stride, pads),
                im2col_reference(x, kh, kw, stride, pads),
                [
                    (
                        im2col_reference(x, kh, kw, stride, (0, 0, 0, 0)),
                        "the padding is missing: pad x with pads = (top, bottom, left, right) zeros first",
                    )
                ]
                if any(pads)
                else [],
            )

        return f"im2col: x {x_shape}, kernel ({kh}, {kw}), stride {stride}, pads {pads}", check

    def forward(filters: int, kernel, strides, padding: str, x_shape: tuple) -> Case:
        def check() -> str | None:
            layer = ns.MyConv2D(filters, kernel, strides=strides, padding=padding, seed=_seed(rng))
            layer.build(x_shape[1:])
            layer.astype(np.float64)
            layer.params["bias"] = rng.standard_normal(filters)
            x = rng.standard_normal(x_shape)
            z, cache = layer.forward_affine_pass(x, True)
            (kh, kw), W = layer.kernel_size, layer.params["kernel"]
            cols = im2col_reference(x, kh, kw, layer.strides, layer.pads)
            xw = (cols.reshape(-1, kh * kw * W.shape[2]) @ W.reshape(-1, filters)).reshape(
                x_shape[0], *layer.output_shape
            )
            return _diagnose(
                "z", z, xw + layer.params["bias"], [(xw, "the bias is missing: z = cols @ W + b")]
            )

        return (
            f"z = im2col(x) @ W + b: {filters} filters {kernel}, strides {strides}, {padding}, x {x_shape}",
            check,
        )

    return [
        unfold((2, _size(rng, 4, 6), _size(rng, 4, 6), 2), 3, 3, (1, 1), (0, 0, 0, 0)),
        unfold((1, _size(rng, 6, 8), _size(rng, 5, 7), 3), 3, 3, (2, 2), (1, 1, 0, 1)),
        unfold((2, _size(rng, 7, 9), _size(rng, 6, 8), 1), 3, 2, (2, 1), (1, 0, 1, 1)),
        forward(_size(rng, 2, 4), 3, 1, "valid", (2, _size(rng, 5, 7), _size(rng, 5, 7), 2)),
        forward(_size(rng, 2, 4), 3, 2, "same", (2, _size(rng, 6, 8), _size(rng, 5, 7), 3)),
        forward(2, (3, 2), (2, 1), "valid", (1, _size(rng, 7, 9), _size(rng, 6, 8), 1)),
        _gradients(
            lambda: ns.MyConv2D(2, 3, padding="same", seed=_seed(rng)), rng.standard_normal((2, 5, 5, 2))
        ),
    ]


# --------------------------------------------------------------------------- dropout


def _dropout_cases(ns: SimpleNamespace, rng: Rng) -> list[Case]:
    return [
        _gradients(lambda: ns.MyDropout(0.5, seed=_seed(rng)), rng.standard_normal((_size(rng, 2, 5), 6))),
        _gradients(
            lambda: ns.MyDropout(0.25, seed=_seed(rng)), rng.standard_normal((2, 4, _size(rng, 3, 5), 3))
        ),
        _leaves_dout_alone(
            lambda: ns.MyDropout(0.5, seed=2), rng.standard_normal((4, 5)).astype(np.float32)
        ),
    ]


# --------------------------------------------------------------------------- batch normalization


def _batchnorm_layer(ns: SimpleNamespace, rng: Rng, shape: tuple, trainable: bool = True):
    def make():
        layer = ns.MyBatchNormalization(trainable=trainable)
        layer.build(shape[1:])
        c = shape[-1]
        layer.params = {
            "gamma": rng.uniform(0.5, 2.0, c).astype(np.float32),
            "beta": rng.standard_normal(c).astype(np.float32),
        }
        if not trainable:
            layer.state = {
                "moving_mean": rng.standard_normal(c).astype(np.float32),
                "moving_variance": rng.uniform(0.5, 2.0, c).astype(np.float32),
            }
        return layer

    return make


def _batchnorm_named(ns: SimpleNamespace, rng: Rng) -> Case:
    shape = (_size(rng, 2, 3), _size(rng, 2, 4), _size(rng, 2, 4), _size(rng, 2, 4))
    m = shape[0] * shape[1] * shape[2]

    def check() -> str | None:
        layer = _batchnorm_layer(ns, rng, shape)().astype(np.float64)
        x = rng.standard_normal(shape) * 2 + 1
        _, cache = layer.forward_pass(x, True)
        dout = rng.standard_normal(shape)
        _, grads = layer.backward_pass(dout, cache)
        x_hat = cache["x_hat"]
        return _first(
            _diagnose(
                "dgamma",
                grads.get("gamma"),
                (dout * x_hat).sum(axis=(0, 1, 2)),
                [
                    (
                        (dout * x_hat).sum(axis=0),
                        f"dgamma has shape {shape[1:]}: you summed over the batch axis only; "
                        "gamma scales every value of its channel, so sum over every axis but "
                        "the last, (0, 1, 2)",
                    ),
                    ((dout * x_hat).sum(axis=(0, 1, 2)) / m, f"dgamma is divided by M = N*H*W = {m}"),
                ],
            ),
            _diagnose(
                "dbeta",
                grads.get("beta"),
                dout.sum(axis=(0, 1, 2)),
                [
                    (
                        dout.sum(axis=0),
                        f"dbeta has shape {shape[1:]}: you summed over the batch axis only; sum over "
                        "every axis but the channel axis, (0, 1, 2)",
                    ),
                    (dout.sum(axis=(0, 1, 2)) / m, f"dbeta is divided by M = N*H*W = {m}"),
                ],
            ),
        )

    return f"dgamma and dbeta against the formula: x {shape} (M = N*H*W = {m} values per channel)", check


def _batchnorm_cases(ns: SimpleNamespace, rng: Rng) -> list[Case]:
    n2 = (_size(rng, 3, 8), _size(rng, 2, 5))
    n4 = (_size(rng, 2, 3), _size(rng, 2, 4), _size(rng, 2, 4), _size(rng, 2, 3))
    m4 = n4[0] * n4[1] * n4[2]

    def factors(m: int, what: str) -> list[tuple[float, str]]:
        return [
            (1 / m, f"divided by M = {what} = {m}, the values per channel, once too often"),
            (float(m), f"multiplied by M = {what} = {m}: the 1/M of the mean is missing"),
        ]

    return [
        _gradients(_batchnorm_layer(ns, rng, n2), rng.standard_normal(n2) * 2 + 1, factors(n2[0], "N")),
        _gradients(_batchnorm_layer(ns, rng, n4), rng.standard_normal(n4) - 0.5, factors(m4, "N*H*W")),
        _batchnorm_named(ns, rng),
        _gradients(_batchnorm_layer(ns, rng, n2, trainable=False), rng.standard_normal(n2)),
        _leaves_dout_alone(_batchnorm_layer(ns, rng, n2), rng.standard_normal(n2).astype(np.float32)),
    ]


# --------------------------------------------------------------------------- optimizers


def _trajectory(
    make, formula, rng: Rng, steps: int, what: str, wrong: list[tuple[callable, str]] = ()
) -> Case:
    """``steps`` updates of the optimizer ``make()`` on two float64 parameters against
    ``formula(state, key, g, t) -> param change``; ``wrong``: formulas of classic bugs and their stories."""

    def run(step_formula):
        state: dict = {}
        return [
            {k: step_formula(state, k, g, t) for k, g in grads[t - 1].items()} for t in range(1, steps + 1)
        ]

    shapes = {"kernel": (_size(rng, 2, 4), _size(rng, 2, 4)), "bias": (_size(rng, 2, 5),)}
    start = {k: rng.standard_normal(s) for k, s in shapes.items()}
    grads = [{k: rng.standard_normal(s) for k, s in shapes.items()} for _ in range(steps)]

    def check() -> str | None:
        opt, params = make(), {k: v.copy() for k, v in start.items()}
        expected = run(formula)
        for t in range(1, steps + 1):
            before = {k: p.copy() for k, p in params.items()}
            opt.apply_gradients((k, params[k], grads[t - 1][k]) for k in params)
            for k in params:
                change, want = params[k] - before[k], expected[t - 1][k]
                if np.allclose(change, want, rtol=1e-9, atol=1e-13):
                    continue
                for bug, story in wrong:
                    if np.allclose(change, run(bug)[t - 1][k], rtol=1e-9, atol=1e-13):
                        return f"step {t}, {k}: {story}"
                text = (
                    f"step {t}, {k}: the update is wrong:\nexpected\n{_short(want)}\ngot\n{_short(change)}"
                )
                if t > 1:
                    text += (
                        "\nThe first step is right: is the state (velocity, moments) kept in "
                        "self.state[name] and updated in place, so the next step sees it?"
                    )
                return text
        return None

    return f"{steps} steps against the formula: {what}", check


def _stays_float32(make, description: str) -> Case:
    def check() -> str | None:
        param = np.array([0.5, -1.0, 2.0], dtype=np.float32)
        make().apply_gradients([("w", param, np.array([0.1, -0.2, 0.3], dtype=np.float32))])
        if param.dtype != np.float32:
            return f"the parameter became {param.dtype}; update it in place, in its own dtype"
        if np.array_equal(param, np.array([0.5, -1.0, 2.0], dtype=np.float32)):
            return "the parameter did not move: update it in place (param -= ..., not param = param - ...)"
        return None

    return f"float32 parameters are updated in place and stay float32 ({description})", check


def _sgd_cases(ns: SimpleNamespace, rng: Rng) -> list[Case]:
    def sgd(lr: float, momentum: float):
        def formula(state, k, g, t):
            v = state.setdefault(k, np.zeros_like(g))
            v[...] = momentum * v - lr * g
            return v.copy()

        def sign(state, k, g, t):
            return -formula(state, k, g, t)

        def no_memory(state, k, g, t):
            return -lr * g if t > 1 else formula(state, k, g, t)

        return formula, [
            (sign, "the sign is wrong: the velocity points downhill, param += velocity"),
            (
                no_memory,
                "only the gradient step moves the parameter from step 2 on: keep the "
                "velocity in self.state[name] and update it in place, v[...] = ...",
            ),
        ]

    lr, momentum = float(rng.choice([0.01, 0.05, 0.1])), float(rng.choice([0.5, 0.8, 0.9]))
    f0, w0 = sgd(lr, 0.0)
    f1, w1 = sgd(lr, momentum)
    return [
        _stays_float32(lambda: ns.MySGD(0.1, momentum=0.9), "momentum 0.9"),
        _trajectory(lambda: ns.MySGD(lr), f0, rng, 3, f"lr {lr}, no momentum", w0[:1]),
        _trajectory(
            lambda: ns.MySGD(lr, momentum=momentum), f1, rng, 5, f"lr {lr}, momentum {momentum}", w1
        ),
    ]


def _rmsprop_cases(ns: SimpleNamespace, rng: Rng) -> list[Case]:
    def rmsprop(lr: float, rho: float, momentum: float, epsilon: float):
        def formula(state, k, g, t, inside: bool = True):
            s = state.setdefault(k, {"v": np.zeros_like(g), "m": np.zeros_like(g)})
            s["v"] = rho * s["v"] + (1 - rho) * g * g
            step = lr * g / (np.sqrt(s["v"] + epsilon) if inside else np.sqrt(s["v"]) + epsilon)
            if momentum:
                s["m"] = momentum * s["m"] + step
                step = s["m"]
            return -step

        def outside(state, k, g, t):
            return formula(state, k, g, t, inside=False)

        def no_decay(state, k, g, t):
            s = state.setdefault(k, {"v": np.zeros_like(g)})
            s["v"] = rho * s["v"] + g * g
            return -lr * g / np.sqrt(s["v"] + epsilon)

        return formula, [
            (
                outside,
                "epsilon is added outside the square root; Keras' RMSprop adds it inside, "
                "sqrt(v + epsilon) (Adam adds it outside)",
            ),
            (
                no_decay,
                "the new squared gradient is added without its weight (1 - rho): "
                "v = rho * v + (1 - rho) * grad**2",
            ),
        ]

    lr, rho = float(rng.choice([0.001, 0.01])), float(rng.choice([0.8, 0.9]))
    f0, w0 = rmsprop(lr, rho, 0.0, 0.1)
    f1, w1 = rmsprop(lr, rho, 0.9, 1e-7)
    return [
        _stays_float32(lambda: ns.MyRMSprop(0.01), "Keras' defaults"),
        _trajectory(
            lambda: ns.MyRMSprop(lr, rho=rho, epsilon=0.1),
            f0,
            rng,
            4,
            f"lr {lr}, rho {rho}, epsilon 0.1 (large, to see where it goes)",
            w0,
        ),
        _trajectory(
            lambda: ns.MyRMSprop(lr, rho=rho, momentum=0.9),
            f1,
            rng,
            4,
            f"lr {lr}, rho {rho}, momentum 0.9",
            w1[1:],
        ),
    ]


def _adam_cases(ns: SimpleNamespace, rng: Rng) -> list[Case]:
    def steps(make: callable, description: str) -> Case:
        return (
            f"check_optimizer: {description}, 5 steps against the formula",
            lambda: _report_failure(gradcheck.check_optimizer(make(), steps=5, seed=_seed(rng))),
        )

    def float32() -> str | None:
        param = np.array([0.5, -1.0, 2.0], dtype=np.float32)
        ns.MyAdam().apply_gradients([("w", param, np.array([0.1, -0.2, 0.0], dtype=np.float32))])
        if param.dtype != np.float32:
            return f"the parameter became {param.dtype}; update it in place, in its own dtype"
        # At t = 1 every parameter moves by about lr against the sign of its gradient (docs/backprop.md#adam).
        return _expect(
            "float32 parameters after one step (each moves by about lr = 0.001)",
            np.round(param.astype(np.float64), 6),
            np.array([0.499, -0.999, 2.0]),
        )

    lr = float(rng.choice([0.01, 0.05]))
    return [
        ("float32 parameters stay float32 and move by about lr at the first step", float32),
        steps(ns.MyAdam, "Keras' defaults"),
        steps(
            lambda: ns.MyAdam(lr, beta_1=0.5, beta_2=0.9, epsilon=1e-3),
            f"lr {lr}, betas 0.5 and 0.9, epsilon 1e-3",
        ),
    ]


# --------------------------------------------------------------------------- L2 regularisation


def _l2_cases(ns: SimpleNamespace, rng: Rng) -> list[Case]:
    def value(shape: tuple) -> Case:
        l2 = float(rng.choice([0.01, 0.001, 0.05]))
        kernel = rng.standard_normal(shape)

        def check() -> str | None:
            got = ns.MyL2(l2)(kernel)
            if not isinstance(got, float):
                return f"the penalty must be a Python float (float(...)); got {type(got).__name__}"
            total = float((kernel**2).sum())
            return _diagnose(
                "the penalty",
                np.array(got),
                np.array(l2 * total),
                [
                    (
                        np.array(l2 * total / 2),
                        "the penalty is half what it should be: Keras' L2 is l2 * sum(w**2), with no 1/2",
                    ),
                    (
                        np.array(l2 * total / kernel.size),
                        f"the penalty is divided by the number of weights "
                        f"({kernel.size}): a sum, not a mean",
                    ),
                    (np.array(total), f"the factor l2 = {l2} is missing"),
                ],
            )

        return f"the penalty l2 * sum(kernel**2): l2 {l2}, kernel {shape}", check

    def gradient(shape: tuple) -> Case:
        l2 = float(rng.choice([0.01, 0.002]))
        kernel = rng.standard_normal(shape)

        def check() -> str | None:
            regularizer = ns.MyL2(l2)
            report = gradcheck.check_gradient(
                regularizer,
                kernel,
                regularizer.gradient(kernel),
                name="kernel",
                factors=[
                    (0.5, "the 2 of d(w**2)/dw = 2w is missing"),
                    (1 / l2, f"the factor l2 = {l2} is missing"),
                ],
            )
            return _report_failure(report)

        return f"gradcheck: the gradient 2 * l2 * kernel, kernel {shape}", check

    def rises() -> str | None:
        kernel = rng.standard_normal((3, 4))
        small, large = ns.MyL2(0.01)(kernel), ns.MyL2(0.02)(kernel)
        if not np.isclose(large, 2 * small):
            return (
                f"doubling l2 must double the penalty: {small:.6g} at l2 = 0.01, {large:.6g} at l2 = 0.02"
            )
        return None

    dense = (_size(rng, 3, 8), _size(rng, 2, 6))
    conv = (3, 3, _size(rng, 1, 3), _size(rng, 2, 4))
    return [
        value(dense),
        value(conv),
        gradient(dense),
        gradient(conv),
        ("the penalty rises with l2", rises),
    ]



# --------------------------------------------------------------------------- the capstone

SEED_MODEL_PARAMS = 421_642
"""The published MNIST CNN's parameter count (docs/backprop.md and the README's model)."""

CAPSTONE_ACCURACY = 0.97


def _capstone_cases(ns: SimpleNamespace, rng: Rng) -> list[Case]:
    seed = _seed(rng) % 10_000

    def architecture() -> str | None:
        model = ns.build_model(seed)
        kinds = [type(layer).__name__ for layer in model.layers]
        if model.count_params() != SEED_MODEL_PARAMS:
            return (f"the model has {model.count_params():,} parameters, the seed model "
                    f"{SEED_MODEL_PARAMS:,}; "
                    f"your layers: {', '.join(kinds)}")
        return None

    def trained() -> str | None:
        from minicnn.datasets import load_mnist
        from minicnn.losses import to_categorical

        model = ns.build_model(seed)
        (x_train, y_train), (x_test, y_test) = load_mnist()
        prepare = lambda x: (x.astype(np.float32) / 255)[..., None]  # noqa: E731
        model.compile(optimizer=ns.optimizer(), loss="categorical_crossentropy", metrics=["accuracy"],
                      implementation="reference")
        model.fit(prepare(x_train), to_categorical(y_train, 10), batch_size=128, epochs=1, verbose=0,
                  seed=seed)
        _, accuracy = model.evaluate(prepare(x_test), to_categorical(y_test, 10), batch_size=500)
        if accuracy < CAPSTONE_ACCURACY:
            return (f"test accuracy {accuracy:.4f} after one epoch; the seed model reaches >= "
                    f"{CAPSTONE_ACCURACY} (a layer that gradchecks but trains badly? grade each exercise "
                    "again)")
        return None

    return [
        (f"your layers build the seed model ({SEED_MODEL_PARAMS:,} parameters, seed {seed})", architecture),
        (f"one epoch on MNIST with your Adam, every pass yours: test accuracy >= {CAPSTONE_ACCURACY}",
         trained),
    ]

def _named(**objects) -> callable:
    return lambda: objects


_COL2IM = (
    "minicnn.kernels.im2col:col2im_reference",
    "minicnn.kernels.im2col:col2im_numba",
    "minicnn.kernels.im2col:col2im",
)
_IM2COL = (
    "minicnn.kernels.im2col:im2col_reference",
    "minicnn.kernels.im2col:im2col_numba",
    "minicnn.kernels.im2col:im2col",
)

EXERCISES: dict[str, Exercise] = {
    ex.name: ex
    for ex in [
        Exercise(
            "relu",
            "the backward pass of ReLU",
            "activations",
            ("MyReLU",),
            _relu_cases,
            _named(MyReLU=ReLU),
            ("minicnn.activations:relu_backward",),
            15,
        ),
        Exercise(
            "dense",
            "the backward pass of Dense",
            "dense",
            ("MyDense",),
            _dense_cases,
            _named(MyDense=Dense),
            ("minicnn.layers.dense:Dense.backward_affine_pass",),
            30,
        ),
        Exercise(
            "softmax_cross_entropy",
            "the gradient of softmax cross-entropy with respect to the logits",
            "softmax-and-cross-entropy",
            ("softmax_cross_entropy",),
            _softmax_cases,
            _named(softmax_cross_entropy=softmax_cross_entropy),
            ("minicnn.losses:softmax_cross_entropy",),
            30,
        ),
        Exercise(
            "conv_forward",
            "the forward pass of Conv2D, through im2col",
            "im2col-and-col2im",
            ("im2col", "MyConv2D"),
            _conv_forward_cases,
            _named(im2col=im2col_reference, MyConv2D=Conv2D),
            _IM2COL
            + (
                "minicnn.layers.conv2d:Conv2D.forward_affine_pass",
                "minicnn.layers.conv2d:Conv2D.correlate",
            ),
            45,
        ),
        Exercise(
            "maxpool_forward",
            "the forward pass of MaxPool2D, with the argmax the backward pass needs",
            "maxpooling2d",
            ("MyMaxPool2D",),
            _maxpool_forward_cases,
            _named(MyMaxPool2D=MaxPooling2D),
            (
                "minicnn.kernels.maxpool:maxpool_forward_reference",
                "minicnn.kernels.maxpool:maxpool_forward_numba",
                "minicnn.kernels.maxpool:maxpool_forward",
                "minicnn.layers.pooling:MaxPooling2D.forward_pass",
            ),
            30,
        ),
        Exercise(
            "maxpool",
            "the backward pass of MaxPool2D",
            "maxpooling2d",
            ("MyMaxPool2D",),
            _maxpool_cases,
            _named(MyMaxPool2D=MaxPooling2D),
            (
                "minicnn.kernels.maxpool:maxpool_backward_reference",
                "minicnn.kernels.maxpool:maxpool_backward_numba",
                "minicnn.kernels.maxpool:maxpool_backward",
                "minicnn.layers.pooling:MaxPooling2D.backward_pass",
            ),
            30,
        ),
        Exercise(
            "conv2d",
            "the backward pass of Conv2D, through im2col and col2im",
            "conv2d",
            ("col2im", "MyConv2D"),
            _conv_cases,
            _named(col2im=col2im_reference, MyConv2D=Conv2D),
            _COL2IM + ("minicnn.layers.conv2d:Conv2D.backward_affine_pass",),
            60,
        ),
        Exercise(
            "dropout",
            "the backward pass of Dropout",
            "dropout",
            ("MyDropout",),
            _dropout_cases,
            _named(MyDropout=Dropout),
            ("minicnn.layers.dropout:Dropout.backward_pass",),
            15,
        ),
        Exercise(
            "batchnorm",
            "the backward pass of BatchNormalization",
            "batchnormalization",
            ("MyBatchNormalization",),
            _batchnorm_cases,
            _named(MyBatchNormalization=BatchNormalization),
            ("minicnn.layers.batch_normalization:BatchNormalization.backward_pass",),
            60,
        ),
        Exercise(
            "sgd_momentum",
            "one step of SGD with momentum, Keras' rule",
            "sgd-with-nesterov-momentum",
            ("MySGD",),
            _sgd_cases,
            _named(MySGD=SGD),
            ("minicnn.optimizers:SGD.update",),
            20,
        ),
        Exercise(
            "rmsprop",
            "one step of RMSprop, Keras' rule",
            "rmsprop",
            ("MyRMSprop",),
            _rmsprop_cases,
            _named(MyRMSprop=RMSprop),
            ("minicnn.optimizers:RMSprop.update",),
            25,
        ),
        Exercise(
            "adam",
            "one step of Adam",
            "adam",
            ("MyAdam",),
            _adam_cases,
            _named(MyAdam=Adam),
            (
                "minicnn.optimizers:Adam.update",
                "minicnn.optimizers:adam_update_reference",
                "minicnn.optimizers:adam_update_numba",
                "minicnn.optimizers:adam_update",
            ),
            30,
        ),
        Exercise(
            "l2",
            "L2 regularisation: the penalty and its gradient, Keras' L2",
            "l2-regularisation",
            ("MyL2",),
            _l2_cases,
            _named(MyL2=L2),
            ("minicnn.regularizers:L2.__call__", "minicnn.regularizers:L2.gradient"),
            15,
        ),
    ]
}

CAPSTONE_PARTS = ("relu", "dense", "conv_forward", "conv2d", "maxpool_forward", "maxpool", "dropout", "adam")
"""The exercises whose answers the capstone imports: every piece of them is blocked while it trains."""

EXERCISES["capstone"] = Exercise(
    "capstone",
    "the seed model from your own layers, trained on MNIST to >= 97%",
    "the-training-step",
    ("build_model", "optimizer"),
    _capstone_cases,
    _named(build_model=seed_model, optimizer=Adam),
    tuple(dict.fromkeys(block for name in CAPSTONE_PARTS for block in EXERCISES[name].blocks)),
    30,
    timeout=1800.0,
)
"""Last: it trains a network made of the student's answers to the exercises before it."""
