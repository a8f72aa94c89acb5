"""Max-pooling's kernels (:mod:`minicnn.kernels.maxpool`): the Numba kernels agree with the NumPy
references, and the references with the definition, ties included."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minicnn.kernels import maxpool as pool_kernels


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
