"""The definitions the fused kernels are proved equal to: ``maxpool(im2col(x) @ W)`` forward, and
MaxPooling2D's then Conv2D's backward, with the reference kernels; and the random cases they run on."""

import numpy as np
from hypothesis import strategies as st

from minicnn import Conv2D
from minicnn.kernels.im2col import col2im_reference, im2col_reference
from minicnn.kernels.maxpool import maxpool_backward_reference, maxpool_forward_reference

geometry = st.tuples(
    st.integers(1, 3),  # N
    st.integers(4, 10),  # H
    st.integers(4, 10),  # W
    st.integers(1, 5),  # C
    st.integers(1, 6),  # F
    st.integers(1, 3),  # kernel size
    st.integers(1, 2),  # conv stride
    st.booleans(),  # same padding
    st.integers(1, 3),  # pool size
    st.integers(1, 3),  # pool stride
)


def make_case(case, dtype=np.float64):
    n, h, w, c, f, k, stride, same, pool, pool_stride = case
    conv = Conv2D(f, k, strides=stride, padding="same" if same else "valid")
    conv.build((h, w, c))
    oh, ow, _ = conv.output_shape
    if pool > min(oh, ow):
        return None
    rng = np.random.default_rng(sum(case[:6]))
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    W = rng.standard_normal((k, k, c, f)).astype(dtype)
    return x, W, stride, conv.compute_pads(h, w), pool, pool_stride


def conv_pool_forward_by_definition(x, W, stride, pads, pool, pool_stride):
    """``maxpool(im2col(x) @ W)`` with the reference kernels: what the fused forward must compute."""
    kh, kw, c, f = W.shape
    cols = im2col_reference(x, kh, kw, stride, pads)
    xw = cols.reshape(-1, kh * kw * c) @ W.reshape(-1, f)
    return maxpool_forward_reference(xw.reshape(*cols.shape[:3], f), pool, pool_stride)


def conv_pool_backward_by_definition(d, argmax, x, W, stride, pads, pool, pool_stride, input_gradient=True):
    """MaxPooling2D's then Conv2D's backward with the reference kernels: ``(dW, dx)``."""
    kh, kw, c, f = W.shape
    cols = im2col_reference(x, kh, kw, stride, pads)
    dz = maxpool_backward_reference(d, argmax, (*cols.shape[:3], f), pool, pool_stride).reshape(-1, f)
    dW = (cols.reshape(dz.shape[0], -1).T @ dz).reshape(W.shape)
    if not input_gradient:
        return dW, None
    return dW, col2im_reference((dz @ W.reshape(-1, f).T).reshape(cols.shape), x.shape, stride, pads)


def assert_forward_matches_definition(result, made):
    """``result = (pooled, argmax)`` for the case ``made``: maxima to 1e-10 (float64), winners exactly."""
    pooled_ref, argmax_ref = conv_pool_forward_by_definition(*made)
    pooled, argmax = result
    np.testing.assert_allclose(pooled, pooled_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(argmax, argmax_ref)


def integer_valued(made):
    """The case with small integers as inputs and weights: sums are exact in float64, so maxima tie."""
    x, W, *rest = made
    return (np.round(x * 1.5), np.round(W), *rest)
