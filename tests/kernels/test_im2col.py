"""im2col and col2im (:mod:`minicnn.kernels.im2col`): the Numba kernels agree with the NumPy references,
and the references with the definition; col2im is im2col's adjoint."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicnn.kernels import im2col as conv_kernels

rng = np.random.default_rng


def naive_im2col(x, kh, kw, stride, pads):
    """im2col by the definition, one window at a time."""
    top, bottom, left, right = pads
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    oh = (xp.shape[1] - kh) // stride + 1
    ow = (xp.shape[2] - kw) // stride + 1
    cols = np.zeros((x.shape[0], oh, ow, kh, kw, x.shape[3]), x.dtype)
    for i in range(oh):
        for j in range(ow):
            cols[:, i, j] = xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
    return cols


conv_cases = st.tuples(
    st.integers(1, 3),  # N
    st.integers(1, 9),  # H
    st.integers(1, 9),  # W
    st.integers(1, 4),  # C
    st.integers(1, 4),  # KH
    st.integers(1, 4),  # KW
    st.integers(1, 3),  # stride
    st.tuples(*[st.integers(0, 2)] * 4),  # pads
)


@given(conv_cases, st.sampled_from([np.float32, np.float64]))
def test_im2col_fast_and_reference_match_the_definition(case, dtype):
    n, h, w, c, kh, kw, stride, pads = case
    if h + pads[0] + pads[1] < kh or w + pads[2] + pads[3] < kw:
        return
    x = np.random.default_rng(0).standard_normal((n, h, w, c)).astype(dtype)
    expected = naive_im2col(x, kh, kw, stride, pads)
    np.testing.assert_array_equal(conv_kernels.im2col_reference(x, kh, kw, stride, pads), expected)
    fast = conv_kernels.im2col_numba(x, kh, kw, stride, pads)
    assert fast.dtype == dtype
    np.testing.assert_array_equal(fast, expected)


@given(conv_cases, st.sampled_from([np.float32, np.float64]))
def test_col2im_is_the_adjoint_of_im2col(case, dtype):
    """<im2col(x), d> == <x, col2im(d)> for all x, d: the defining property of the backward pass."""
    n, h, w, c, kh, kw, stride, pads = case
    if h + pads[0] + pads[1] < kh or w + pads[2] + pads[3] < kw:
        return
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, h, w, c))
    d = rng.standard_normal(naive_im2col(x, kh, kw, stride, pads).shape)
    lhs = np.sum(naive_im2col(x, kh, kw, stride, pads) * d)
    reference = conv_kernels.col2im_reference(d.astype(dtype), x.shape, stride, pads)
    fast = conv_kernels.col2im_numba(d.astype(dtype), x.shape, stride, pads)
    assert fast.dtype == dtype
    np.testing.assert_allclose(np.sum(x * reference), lhs, rtol=1e-5)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fast, reference, rtol=tol, atol=tol)


@pytest.mark.parametrize("stride", [(1, 2), (2, 3), (3, 1)])
def test_im2col_and_col2im_with_unequal_strides_are_equal_in_both_implementations(stride):
    x = rng(0).standard_normal((2, 9, 8, 3))
    pads = (1, 0, 2, 1)
    reference = conv_kernels.im2col_reference(x, 3, 2, stride, pads)
    np.testing.assert_array_equal(conv_kernels.im2col_numba(x, 3, 2, stride, pads), reference)
    d = rng(1).standard_normal(reference.shape)
    dx = conv_kernels.col2im_reference(d, x.shape, stride, pads)
    fast = conv_kernels.col2im_numba(d, x.shape, stride, pads)
    np.testing.assert_allclose(fast, dx, rtol=1e-12, atol=1e-12)
    assert np.isclose(np.sum(reference * d), np.sum(x * dx))  # col2im is the adjoint of im2col
