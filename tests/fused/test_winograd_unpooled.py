"""Winograd F(2x2, 3x3) without pooling (:func:`conv_forward_winograd`, :func:`conv_backward_winograd`)
computes what Conv2D's forward and backward compute."""

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicnn.fused import winograd
from minicnn.kernels.im2col import col2im_reference, im2col_reference

from .test_winograd import winograd_error_bound

geometry = st.tuples(
    st.integers(1, 3),  # N
    st.integers(1, 11),  # H: odd outputs make tiles overhang the last row
    st.integers(1, 11),  # W
    st.integers(1, 9),  # C
    st.integers(1, 20),  # F
    st.booleans(),  # same padding or valid
)


def by_definition(x, W, pads, dz):
    """Conv2D's rows ``im2col(x) @ W`` and backward ``(dW, dx)`` from the reference kernels."""
    c, f = W.shape[2:]
    cols = im2col_reference(x, 3, 3, 1, pads)
    rows = cols.reshape(-1, 9 * c)
    dx = col2im_reference((dz @ W.reshape(-1, f).T).reshape(cols.shape), x.shape, 1, pads)
    return rows @ W.reshape(-1, f), (rows.T @ dz).reshape(W.shape), dx


def make(case, seed=0, integers=False):
    n, h, w, c, f, same = case
    if not same and min(h, w) < 3:
        return None
    rng = np.random.default_rng(seed)
    draw = (lambda shape: rng.integers(-3, 4, shape) * 1.0) if integers else rng.standard_normal
    pads = (1, 1, 1, 1) if same else (0, 0, 0, 0)
    x, W = draw((n, h, w, c)), draw((3, 3, c, f))
    dz = draw((n * (h if same else h - 2) * (w if same else w - 2), f))
    return x, W, pads, dz


@given(geometry, st.booleans(), st.booleans())
def test_forward_and_backward_equal_conv2d(case, input_gradient, integers):
    made = make(case, integers=integers)
    if made is None:
        return
    x, W, pads, dz = made
    rows, dW_expected, dx_expected = by_definition(x, W, pads, dz)
    got = winograd.conv_forward_winograd(x, W, pads)
    dW, dx = winograd.conv_backward_winograd(dz, x, W, pads, input_gradient)
    if integers:  # transforms of 0, +-1, +-1/2: exact on small integers
        np.testing.assert_array_equal(got, rows)
        np.testing.assert_array_equal(dW, dW_expected)
    else:
        np.testing.assert_allclose(got, rows, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dW, dW_expected, rtol=1e-12, atol=1e-12)
    if input_gradient:
        np.testing.assert_allclose(dx, dx_expected, rtol=1e-12, atol=1e-12)
    else:
        assert dx is None


def test_float32_forward_is_within_the_rounding_bound_of_float64():
    x, W, pads, _ = make((4, 15, 16, 32, 24, True), seed=2)
    x32, W32 = x.astype(np.float32), W.astype(np.float32)
    rows, _, _ = by_definition(x32.astype(np.float64), W32.astype(np.float64), pads,
                               np.zeros((4 * 15 * 16, 24)))
    got = winograd.conv_forward_winograd(x32, W32, pads)
    assert got.dtype == np.float32
    bound = winograd_error_bound(x32, W32)
    assert bound < 1e-2 * np.abs(rows).max()  # small enough to catch a wrong term
    np.testing.assert_allclose(got, rows, rtol=0, atol=bound)


def test_the_backward_is_the_same_with_one_or_two_threads():
    x, W, pads, dz = make((20, 9, 10, 6, 5, True), seed=3)
    x, W, dz = x.astype(np.float32), W.astype(np.float32), dz.astype(np.float32)
    results = []
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(n)
            results.append((winograd.conv_forward_winograd(x, W, pads),
                            *winograd.conv_backward_winograd(dz, x, W, pads)))
    finally:
        numba.set_num_threads(threads)
    for result in results[1:]:
        for a, b in zip(result, results[0], strict=True):
            np.testing.assert_array_equal(a, b)  # fixed chunks of images, partial dU summed in order


def test_other_kernels_are_refused():
    x = np.zeros((1, 6, 6, 2))
    with pytest.raises(ValueError, match=r"W must be \(3, 3, C, F\)"):
        winograd.conv_forward_winograd(x, np.zeros((5, 5, 2, 4)), (2, 2, 2, 2))
    with pytest.raises(ValueError, match=r"W must be \(3, 3, C, F\)"):
        winograd.conv_backward_winograd(np.zeros((36, 4)), x, np.zeros((1, 1, 2, 4)), (0, 0, 0, 0))
