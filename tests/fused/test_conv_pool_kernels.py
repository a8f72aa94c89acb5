"""The pooled-convolution kernels of :mod:`minicnn.fused.conv_pool_kernels` (whole batch, block by block,
and the element-wise bias + ReLU + dropout ones) compute what ``im2col @ W`` followed by max-pooling,
and the layers' backward, compute."""

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicnn.fused import conv_pool_kernels as fast

from .definitions import (
    assert_forward_matches_definition,
    conv_pool_backward_by_definition,
    conv_pool_forward_by_definition,
    geometry,
    integer_valued,
    make_case,
)


@given(geometry)
def test_conv_pool_forward_matches_the_definition(case):
    made = make_case(case)
    if made is None:
        return
    assert_forward_matches_definition(fast.conv_pool_forward_numba(*made), made)


@given(geometry, st.booleans())
def test_conv_pool_backward_matches_the_layers_backward(case, input_gradient):
    made = make_case(case)
    if made is None:
        return
    x, W, stride, pads, pool, pool_stride = made
    _, argmax = conv_pool_forward_by_definition(*made)
    d = np.random.default_rng(7).standard_normal(argmax.shape)
    dW_ref, dx_ref = conv_pool_backward_by_definition(d, argmax, *made, input_gradient)
    dW, dx = fast.conv_pool_backward_numba(d, argmax, *made, input_gradient)
    np.testing.assert_allclose(dW, dW_ref, rtol=1e-10, atol=1e-10)
    if input_gradient:
        np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)
    else:
        assert dx is None and dx_ref is None


@pytest.mark.parametrize("channels", [1, 3, 8])  # windows of 9 and 27 (small-window kernel), 72 values
def test_small_and_large_window_kernels_match_the_definition(channels):
    assert (9 * channels <= fast.SMALL_WINDOW) == (channels < 8)
    made = make_case((3, 9, 8, channels, 5, 3, 1, True, 2, 2))
    _, argmax = conv_pool_forward_by_definition(*made)
    d = np.random.default_rng(3).standard_normal(argmax.shape)
    dW_ref, dx_ref = conv_pool_backward_by_definition(d, argmax, *made)
    dW, dx = fast.conv_pool_backward_numba(d, argmax, *made)
    np.testing.assert_allclose(dW, dW_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_kernels_match_relu_and_dropout(dtype):
    rng = np.random.default_rng(0)
    pooled = rng.standard_normal((4, 5, 5, 6)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    mask = ((rng.random(pooled.shape) > 0.3) / 0.7).astype(dtype)
    expected_a = np.maximum(pooled + b, 0)
    out, a = fast.bias_relu_dropout_numba(pooled, b, mask)
    np.testing.assert_array_equal(a, expected_a)
    np.testing.assert_array_equal(out, expected_a * mask)
    assert a is pooled  # written over its input, which the step no longer needs
    dout = rng.standard_normal(pooled.shape).astype(dtype)
    d, db = fast.relu_dropout_backward_numba(dout, a, mask)
    np.testing.assert_array_equal(d, dout * mask * (a > 0))
    assert db.dtype == dtype
    np.testing.assert_allclose(db, (dout * mask * (a > 0)).astype(np.float64).sum(axis=(0, 1, 2)),
                               rtol=1e-6 if dtype == np.float32 else 1e-14)


# --------------------------------------------------------------------------- block by block


def assert_blocked_matches_definition(made):
    assert_forward_matches_definition(fast.conv_pool_forward_blocked(*made), made)


@given(geometry, st.booleans())
def test_blocked_forward_matches_the_definition_ties_included(case, ties):
    made = make_case(case)
    if made is None:
        return
    assert_blocked_matches_definition(integer_valued(made) if ties else made)


@given(geometry)
def test_blocked_forward_one_image_per_block_matches_the_definition(case):
    made = make_case(case)
    if made is None:
        return
    old = fast.BLOCK_BYTES
    fast.BLOCK_BYTES = 1  # one image per block (hypothesis forbids function-scoped fixtures)
    try:
        assert_blocked_matches_definition(integer_valued(made))
    finally:
        fast.BLOCK_BYTES = old


def test_short_last_block(monkeypatch):
    monkeypatch.setattr(fast, "images_per_block", lambda *args: 2)
    assert_blocked_matches_definition(integer_valued(make_case((5, 8, 8, 3, 4, 3, 1, True, 2, 2))))


def test_images_per_block_fills_the_block_and_is_at_least_one():
    per_image = 14 * 14 * 288 * 4
    assert fast.images_per_block(14, 14, 288, 4) == fast.BLOCK_BYTES // per_image
    assert fast.images_per_block(1000, 1000, 288, 8) == 1


@pytest.mark.parametrize(("channels", "stride"), [(1, 1), (4, 1), (8, 2)])  # small window, Winograd, by rows
def test_pooled_conv_is_the_same_with_one_or_two_threads(channels, stride):
    # Each run of images adds its own partial dW; the runs depend on the batch alone, so do the sums.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((21, 9, 9, channels)).astype(np.float32)
    W = rng.standard_normal((3, 3, channels, 5)).astype(np.float32)
    results = []
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(n)
            pooled, argmax = fast.conv_pool_forward_numba(x, W, stride, (1, 1, 1, 1), 2, 2)
            d = np.random.default_rng(6).standard_normal(argmax.shape).astype(np.float32)
            results.append((pooled, argmax, *fast.conv_pool_backward_numba(d, argmax, x, W, stride,
                                                                           (1, 1, 1, 1), 2, 2)))
    finally:
        numba.set_num_threads(threads)
    for result in results[1:]:
        for got, first in zip(result, results[0], strict=True):
            np.testing.assert_array_equal(got, first)
