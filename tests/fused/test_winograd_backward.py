"""The backward through Winograd F(2x2, 3x3) computes what MaxPooling2D's then Conv2D's backward compute."""

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicnn.fused import conv_pool_kernels as fast
from minicnn.fused import winograd

from .definitions import (
    conv_pool_backward_by_definition,
    conv_pool_forward_by_definition,
    integer_valued,
    make_case,
)
from .test_winograd import geometry_3x3


def made_3x3(case):
    """A case of ``geometry_3x3``, or None when a valid 3x3 convolution has no 2x2 window to pool."""
    _, h, w, *_, same, _, _ = case
    return make_case(case) if same or min(h, w) >= 3 else None


def output_gradient(argmax, seed, integers=False):
    """dL/dpooled with zeros where ReLU or dropout would have cut it: (N, PH, PW, F)."""
    rng = np.random.default_rng(seed)
    d = rng.integers(-3, 4, argmax.shape) * 1.0 if integers else rng.standard_normal(argmax.shape)
    return d * (rng.random(argmax.shape) > 0.3)


@given(geometry_3x3, st.booleans(), st.booleans())
def test_winograd_backward_matches_the_layers_backward(case, input_gradient, ties):
    made = made_3x3(case)
    if made is None:
        return
    made = integer_valued(made) if ties else made
    x, W, _, pads, pool, pool_stride = made
    _, argmax = conv_pool_forward_by_definition(*made)
    d = output_gradient(argmax, sum(case[:5]), integers=ties)
    dW_ref, dx_ref = conv_pool_backward_by_definition(d, argmax, *made, input_gradient)
    dW, dx = winograd.conv_pool_backward_winograd(d, argmax, x, W, pads, pool, pool_stride, input_gradient)
    assert dW.shape == W.shape and dW.dtype == W.dtype
    np.testing.assert_allclose(dW, dW_ref, rtol=1e-10, atol=1e-10)
    if input_gradient:
        assert dx.shape == x.shape and dx.dtype == x.dtype
        np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)
    else:
        assert dx is None


def test_integer_valued_ties_give_exactly_the_layers_gradients():
    """Every step is exact on integers (transform entries 0, +-1, +-1/2): the gradients are equal."""
    made = integer_valued(make_case((3, 9, 7, 5, 6, 3, 1, True, 2, 2)))
    x, W, _, pads, pool, pool_stride = made
    pooled, argmax = winograd.conv_pool_forward_winograd(x, W, pads, pool, pool_stride)
    _, argmax_ref = conv_pool_forward_by_definition(*made)
    np.testing.assert_array_equal(argmax, argmax_ref)  # the first maximum wins, as in the layers
    d = output_gradient(argmax, 5, integers=True)
    dW_ref, dx_ref = conv_pool_backward_by_definition(d, argmax, *made)
    dW, dx = fast.conv_pool_backward_numba(d, argmax, *made)
    np.testing.assert_array_equal(dW, dW_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    for k in (1, 2, 3):  # the gradient goes to the chosen entry of a tied window and nowhere else
        moved = np.where(argmax == 0, np.uint8(k), argmax)
        assert not np.array_equal(fast.conv_pool_backward_numba(d, moved, *made)[0], dW)


def winograd_backward_error_bounds(d, x, W):
    """Bounds on the float32 rounding errors of dW and dx, from the transforms' entries.

    dW: each entry is ``sum_xi G[i,k] G[j,l] sum_{n,t} V[xi,n,t,c] dM[xi,n,t,f]``; the
    columns of G sum to at most 2 in absolute value, ``|V| <= 4 max|x|`` and
    ``|dM| <= max|d|`` (A's entries are 0 and +-1, exactly), so the sum of the absolute
    values of its terms is at most ``16 N T max|x| max|d|`` (T tiles per image). Each
    term goes through at most N + T + 17 roundings (2 in V, the product, T - 1 sums over
    tiles, N sums over images and chunks, 15 in ``G^T dU G``).
    dx: each value is a sum over at most 4 overlapping tiles of at most 9 ``+-dV``
    (B's rows hold at most three +-1), and ``dV = sum_f dM U`` with ``|U| <= 2.25 max|W|``:
    at most ``81 F max|W| max|d|``, through at most F + 17 roundings (8 in U, the product,
    F - 1 sums over filters, 4 in ``B dV B^T``, 3 overlap adds).
    """
    n, ph, pw, f = d.shape
    eps = np.finfo(np.float32).eps
    t = ph * pw
    scale = np.abs(d).max()
    return ((n + t + 17) * eps * 16 * n * t * np.abs(x).max() * scale,
            (f + 17) * eps * 81 * f * np.abs(W).max() * scale)


def test_float32_is_within_the_rounding_bounds_of_float64():
    x, W, _, pads, pool, pool_stride = make_case((4, 14, 14, 32, 64, 3, 1, True, 2, 2))
    x32, W32 = x.astype(np.float32), W.astype(np.float32)
    _, argmax = conv_pool_forward_by_definition(x, W, 1, pads, pool, pool_stride)
    d32 = output_gradient(argmax, 11).astype(np.float32)
    dW_ref, dx_ref = conv_pool_backward_by_definition(d32.astype(np.float64), argmax, x32.astype(np.float64),
                                                      W32.astype(np.float64), 1, pads, pool, pool_stride)
    dW, dx = winograd.conv_pool_backward_winograd(d32, argmax, x32, W32, pads, pool, pool_stride)
    assert dW.dtype == np.float32 and dx.dtype == np.float32
    bound_dW, bound_dx = winograd_backward_error_bounds(d32, x32, W32)
    # the bounds are small enough to catch a wrong term: a fraction of a typical gradient
    assert bound_dW < 0.2 * np.median(np.abs(dW_ref)) and bound_dx < 0.2 * np.median(np.abs(dx_ref))
    np.testing.assert_allclose(dW, dW_ref, rtol=0, atol=bound_dW)
    np.testing.assert_allclose(dx, dx_ref, rtol=0, atol=bound_dx)


def test_chunks_of_several_images_sum_all_their_images():
    made = make_case((37, 6, 5, 5, 3, 3, 1, True, 2, 2))  # 16 chunks of up to 3 images
    _, argmax = conv_pool_forward_by_definition(*made)
    d = output_gradient(argmax, 4)
    dW_ref, dx_ref = conv_pool_backward_by_definition(d, argmax, *made)
    dW, dx = fast.conv_pool_backward_numba(d, argmax, *made)
    np.testing.assert_allclose(dW, dW_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)


def test_result_does_not_depend_on_the_number_of_threads():
    made = make_case((37, 14, 14, 32, 64, 3, 1, True, 2, 2), dtype=np.float32)
    x, W, _, pads, pool, pool_stride = made
    _, argmax = conv_pool_forward_by_definition(*made)
    d = output_gradient(argmax, 2).astype(np.float32)
    previous = numba.get_num_threads()
    try:
        results = []
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            results.append(winograd.conv_pool_backward_winograd(d, argmax, x, W, pads, pool, pool_stride))
    finally:
        numba.set_num_threads(previous)
    for dW, dx in results[1:]:
        np.testing.assert_array_equal(dW, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])


def test_other_pools_and_kernels_are_refused():
    d, argmax = np.zeros((1, 3, 3, 4)), np.zeros((1, 3, 3, 4), dtype=np.uint8)
    x, W = np.zeros((1, 6, 6, 2)), np.zeros((3, 3, 2, 4))
    with pytest.raises(ValueError, match="pool and pool_stride must be 2"):
        winograd.conv_pool_backward_winograd(d, argmax, x, W, (1, 1, 1, 1), 2, 1)
    with pytest.raises(ValueError, match=r"W must be \(3, 3, C, F\)"):
        winograd.conv_pool_backward_winograd(d, argmax, x, np.zeros((5, 5, 2, 4)), (2, 2, 2, 2), 2, 2)


@pytest.mark.parametrize("kernel,stride,channels,pool,pool_stride,routed", [
    (3, 1, 8, 2, 2, True),  # 72-value windows, 3x3 stride 1: the MNIST model's second layer
    (3, 1, 3, 2, 2, False),  # 27 values: the small-window kernel
    (3, 2, 8, 2, 2, False),  # stride 2
    (5, 1, 8, 2, 2, False),  # 5x5
    (3, 1, 8, 3, 3, False),  # 3x3 pools
    (3, 1, 8, 2, 1, False),  # overlapping pools
])
def test_backward_routes_where_the_forward_routes_to_winograd(
        monkeypatch, kernel, stride, channels, pool, pool_stride, routed):
    made = make_case((2, 9, 9, channels, 4, kernel, stride, True, pool, pool_stride))
    _, argmax = conv_pool_forward_by_definition(*made)
    d = output_gradient(argmax, 3)
    calls = []
    monkeypatch.setattr(fast, "conv_pool_backward_winograd",
                        lambda *a: calls.append(a) or winograd.conv_pool_backward_winograd(*a))
    for input_gradient in (True, False):
        dW_ref, dx_ref = conv_pool_backward_by_definition(d, argmax, *made, input_gradient)
        dW, dx = fast.conv_pool_backward_numba(d, argmax, *made, input_gradient)
        np.testing.assert_allclose(dW, dW_ref, rtol=1e-10, atol=1e-10)
        assert (dx is None) == (not input_gradient)
        if input_gradient:
            np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)
    assert len(calls) == (2 if routed else 0)
    if routed:
        assert [a[-1] for a in calls] == [True, False]  # input_gradient is passed on
