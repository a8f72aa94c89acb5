"""The Numba kernels agree with the NumPy references, and the references with the maths."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minicnn.kernels import im2col as conv_kernels
from minicnn.kernels import maxpool as pool_kernels


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


def naive_maxpool(x, pool, stride):
    n, h, w, c = x.shape
    oh, ow = (h - pool) // stride + 1, (w - pool) // stride + 1
    out = np.zeros((n, oh, ow, c), x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, i, j] = x[:, i * stride:i * stride + pool, j * stride:j * stride + pool].max(axis=(1, 2))
    return out


pool_cases = st.tuples(st.integers(1, 3), st.integers(2, 9), st.integers(2, 9), st.integers(1, 4),
                       st.integers(1, 3), st.integers(1, 3))


@given(pool_cases, st.booleans())
def test_maxpool_fast_and_reference_agree_even_with_ties(case, with_ties):
    n, h, w, c, pool, stride = case
    if pool > min(h, w):
        return
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    if with_ties:
        x = np.round(x)  # many equal values in each window
    out_ref, arg_ref = pool_kernels.maxpool_forward_reference(x, pool, stride)
    out_fast, arg_fast = pool_kernels.maxpool_forward_numba(x, pool, stride)
    np.testing.assert_array_equal(out_ref, naive_maxpool(x, pool, stride))
    np.testing.assert_array_equal(out_fast, out_ref)
    np.testing.assert_array_equal(arg_fast, arg_ref)
    dout = rng.standard_normal(out_ref.shape).astype(np.float32)
    dx_ref = pool_kernels.maxpool_backward_reference(dout, arg_ref, x.shape, pool, stride)
    dx_fast = pool_kernels.maxpool_backward_numba(dout, arg_fast, x.shape, pool, stride)
    np.testing.assert_allclose(dx_fast, dx_ref, rtol=1e-6, atol=1e-6)
    # Each output gradient lands exactly once, so nothing is lost or doubled.
    np.testing.assert_allclose(dx_ref.sum(), dout.sum(), rtol=1e-4, atol=1e-4)


def test_maxpool_tie_goes_to_the_first_maximum_only():
    x = np.ones((1, 2, 2, 1), np.float32)
    pairs = ((pool_kernels.maxpool_forward_reference, pool_kernels.maxpool_backward_reference),
             (pool_kernels.maxpool_forward_numba, pool_kernels.maxpool_backward_numba))
    for forward, backward in pairs:
        _, argmax = forward(x, 2, 2)
        dx = backward(np.full((1, 1, 1, 1), 3.0, np.float32), argmax, x.shape, 2, 2)
        np.testing.assert_array_equal(dx[0, :, :, 0], [[3.0, 0.0], [0.0, 0.0]])
