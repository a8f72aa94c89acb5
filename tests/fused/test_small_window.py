"""The small-window kernels (:mod:`minicnn.fused.small_window`, for windows of at most
``SMALL_WINDOW`` values) compute exactly what the definition computes, ties included."""

import numpy as np
import pytest

from minicnn.fused import conv_pool_kernels as fast
from minicnn.fused import small_window
from minicnn.kernels import NO_WINNERS
from minicnn.kernels.im2col import im2col_reference

from .definitions import (
    conv_pool_backward_by_definition,
    conv_pool_forward_by_definition,
    integer_valued,
    make_case,
)

SMALL_WINDOW_CASES = [
    (3, 28, 28, 1, 32, 3, 1, True, 2, 2),  # the MNIST model's first convolution
    (2, 9, 7, 3, 5, 3, 1, True, 2, 2),  # 3 channels, odd sizes
    (2, 11, 9, 3, 6, 3, 2, True, 2, 2),  # stride 2
    (2, 10, 9, 1, 7, 2, 2, False, 3, 3),  # 2x2 kernel, STEP 6
    (2, 9, 10, 2, 3, 3, 1, False, 3, 1),  # overlapping pools
    (1, 6, 7, 1, 4, 1, 1, False, 2, 3),  # 1x1 kernel, pools with gaps between them
    (2, 9, 8, 3, 5, 3, 1, True, 1, 1),  # a 1x1 pool: a ConvBlock's plain convolution, every argmax 0
    (2, 12, 11, 1, 6, 5, 1, True, 1, 1),  # LeNet-5's first convolution: 5x5, 6 filters, unpooled
]


def exact_small_window_case(case, dtype):
    """An integer-valued case (exact sums in float32 and float64, so maxima tie) in ``dtype``."""
    x, W, *rest = integer_valued(make_case(case))
    assert W[..., 0].size <= fast.SMALL_WINDOW
    return (x.astype(dtype), W.astype(dtype), *rest)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SMALL_WINDOW_CASES)
def test_small_window_forward_matches_the_definition_ties_included(case, dtype):
    made = exact_small_window_case(case, dtype)
    pooled_ref, argmax_ref = conv_pool_forward_by_definition(*made)
    pooled, argmax = fast.conv_pool_forward_numba(*made)
    assert pooled.dtype == dtype
    np.testing.assert_array_equal(pooled, pooled_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)


def test_small_window_cases_have_ties():
    x, W, stride, pads, pool, pool_stride = exact_small_window_case(SMALL_WINDOW_CASES[0], np.float64)
    cols = im2col_reference(x, 3, 3, stride, pads)
    xw = cols.reshape(-1, 9) @ W.reshape(9, -1)  # (N*28*28, F), rows (n, i, j)
    windows = xw.reshape(3, 14, 2, 14, 2, -1)
    tied = (windows == windows.max(axis=(2, 4), keepdims=True)).sum(axis=(2, 4)) > 1
    assert tied.mean() > 0.05  # so that "first maximum wins" is tested


@pytest.mark.parametrize("input_gradient", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SMALL_WINDOW_CASES)
def test_small_window_backward_matches_the_layers_backward(case, dtype, input_gradient):
    made = exact_small_window_case(case, dtype)
    _, argmax = conv_pool_forward_by_definition(*made)
    rng = np.random.default_rng(5)
    d = (rng.integers(-3, 4, argmax.shape) * (rng.random(argmax.shape) < 0.7)).astype(dtype)
    dW_ref, dx_ref = conv_pool_backward_by_definition(d, argmax, *made, input_gradient)
    dW, dx = fast.conv_pool_backward_numba(d, argmax, *made, input_gradient)
    assert dW.dtype == dtype
    np.testing.assert_array_equal(dW, dW_ref)  # integer sums: exact in any order
    if input_gradient:
        np.testing.assert_array_equal(dx, dx_ref)
    else:
        assert dx is None


UNPOOLED_CASES = [case for case in SMALL_WINDOW_CASES if case[-2:] == (1, 1)]


@pytest.mark.parametrize("input_gradient", [False, True])
@pytest.mark.parametrize("case", UNPOOLED_CASES)
def test_unpooled_small_window_needs_no_winners(case, input_gradient):
    """A ConvBlock's plain convolution runs the kernels without an argmax array (``NO_WINNERS``):
    the same values as the definition's, whose every winner is offset 0."""
    x, W, stride, pads, pool, pool_stride = exact_small_window_case(case, np.float32)
    pooled_ref, argmax_ref = conv_pool_forward_by_definition(x, W, stride, pads, pool, pool_stride)
    out = small_window.conv_forward_small(x, W, stride, pads, *pooled_ref.shape[1:3])
    np.testing.assert_array_equal(out, pooled_ref)
    rng = np.random.default_rng(6)
    d = rng.integers(-3, 4, pooled_ref.shape).astype(np.float32)
    dW_ref, dx_ref = conv_pool_backward_by_definition(d, argmax_ref, x, W, stride, pads, pool, pool_stride,
                                                      input_gradient)
    dW, dx = small_window.conv_pool_backward_small(d, NO_WINNERS, x, W, stride, pads, 1, 1, input_gradient)
    np.testing.assert_array_equal(dW, dW_ref)
    if input_gradient:
        np.testing.assert_array_equal(dx, dx_ref)
