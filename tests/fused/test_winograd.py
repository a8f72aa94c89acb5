"""Winograd F(2x2, 3x3) computes what im2col @ W followed by 2x2 max-pooling computes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minicnn.fused import conv_pool_kernels as fast
from minicnn.fused import winograd
from minicnn.kernels.im2col import im2col_reference

from .definitions import (
    assert_forward_matches_definition,
    conv_pool_forward_by_definition,
    integer_valued,
    make_case,
)

geometry_3x3 = st.tuples(
    st.integers(1, 3),  # N
    st.integers(2, 11),  # H: odd sizes leave an output row no pool window reads
    st.integers(2, 11),  # W
    st.integers(1, 9),  # C: not always a multiple of 4
    st.integers(1, 20),  # F
    st.just(3), st.just(1),  # 3x3 kernel, stride 1
    st.booleans(),  # same padding (tiles read zeros past the image) or valid
    st.just(2), st.just(2),  # 2x2 pools of stride 2: a Winograd output tile is a pool window
)


@given(geometry_3x3, st.booleans())
def test_winograd_forward_matches_the_definition_ties_included(case, ties):
    _, h, w, *_, same, _, _ = case
    made = make_case(case) if same or min(h, w) >= 3 else None  # a valid 3x3 needs 3 rows and columns
    if made is None:
        return
    made = integer_valued(made) if ties else made
    x, W, _, pads, pool, pool_stride = made
    pooled, argmax = winograd.conv_pool_forward_winograd(x, W, pads, pool, pool_stride)
    assert pooled.dtype == x.dtype and argmax.dtype == np.uint8
    assert_forward_matches_definition((pooled, argmax), made)


def test_integer_valued_case_has_ties_and_matches_them():
    made = integer_valued(make_case((2, 9, 7, 5, 6, 3, 1, True, 2, 2)))
    pooled_ref, argmax_ref = conv_pool_forward_by_definition(*made)
    x, W, _, pads, pool, pool_stride = made
    cols = im2col_reference(x, 3, 3, 1, pads)
    xw = (cols.reshape(-1, 9 * x.shape[3]) @ W.reshape(-1, W.shape[3])).reshape(*cols.shape[:3], -1)
    windows = xw[:, :8, :6].reshape(2, 4, 2, 3, 2, 6)
    assert (windows == windows.max(axis=(2, 4), keepdims=True)).sum(axis=(2, 4)).max() > 1  # a tie exists
    pooled, argmax = winograd.conv_pool_forward_winograd(x, W, pads, pool, pool_stride)
    np.testing.assert_array_equal(pooled, pooled_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)


def winograd_error_bound(x, W):
    """A bound on the float32 rounding error of any output of F(2x2, 3x3), from the transforms' entries.

    Every output is ``sum_xi a_xi sum_c U[xi, c] V[xi, c]`` with 9 nonzero ``a_xi = +-1``
    (A^T's rows hold three ones), ``|U| <= 2.25 max|W|`` (G's rows sum to at most 1.5 in
    absolute value) and ``|V| <= 4 max|x|`` (B^T's rows hold two ones): the sum of the
    absolute values of its terms is at most ``81 C max|x| max|W|``. Each term goes
    through at most C + 13 roundings (2 + 2 in V, 2 + 2 in U, the product, C - 1 sums
    over channels, 2 + 2 in the output transform), each of relative size ``eps``.
    """
    c = x.shape[3]
    eps = np.finfo(np.float32).eps
    return (c + 13) * eps * 81 * c * np.abs(x).max() * np.abs(W).max()


def test_float32_is_within_the_rounding_bound_of_float64():
    x, W, _, pads, pool, pool_stride = make_case((4, 14, 14, 32, 64, 3, 1, True, 2, 2))
    x32, W32 = x.astype(np.float32), W.astype(np.float32)
    pooled_ref, _ = conv_pool_forward_by_definition(x32.astype(np.float64), W32.astype(np.float64),
                                                    1, pads, pool, pool_stride)
    pooled, argmax = winograd.conv_pool_forward_winograd(x32, W32, pads, pool, pool_stride)
    assert pooled.dtype == np.float32
    bound = winograd_error_bound(x32, W32)
    assert bound < 1e-2 * np.abs(pooled_ref).max()  # the bound is small enough to catch a wrong term
    np.testing.assert_allclose(pooled, pooled_ref, rtol=0, atol=bound)
    # the chosen winner's exact value is within the error of both maxima of the exact window maximum
    cols = im2col_reference(x32.astype(np.float64), 3, 3, 1, pads)
    xw = (cols.reshape(-1, 9 * 32) @ W32.astype(np.float64).reshape(-1, 64)).reshape(4, 14, 14, 64)
    windows = xw.reshape(4, 7, 2, 7, 2, 64).transpose(0, 1, 3, 5, 2, 4).reshape(4, 7, 7, 64, 4)
    chosen = np.take_along_axis(windows, argmax[..., None].astype(np.intp), axis=-1)[..., 0]
    assert np.all(chosen >= pooled_ref - 2 * bound)


def test_other_pools_and_kernels_are_refused():
    x, W = np.zeros((1, 6, 6, 2)), np.zeros((3, 3, 2, 4))
    with pytest.raises(ValueError, match="pool and pool_stride must be 2"):
        winograd.conv_pool_forward_winograd(x, W, (1, 1, 1, 1), 3, 2)
    with pytest.raises(ValueError, match=r"W must be \(3, 3, C, F\)"):
        winograd.conv_pool_forward_winograd(x, np.zeros((5, 5, 2, 4)), (2, 2, 2, 2), 2, 2)


@pytest.mark.parametrize("kernel,stride,channels,pool,pool_stride,expected", [
    (3, 1, 8, 2, 2, "winograd"),  # 72-value windows, 3x3 stride 1: the MNIST model's second layer
    (3, 1, 3, 2, 2, "small"),  # 27 values: the direct small-window kernel
    (3, 2, 8, 2, 2, "blocked"),  # stride 2
    (5, 1, 8, 2, 2, "blocked"),  # 5x5
    (3, 1, 8, 3, 3, "blocked"),  # 3x3 pools
    (3, 1, 8, 2, 1, "blocked"),  # overlapping pools
])
def test_forward_routes_3x3_stride_1_large_windows_with_2x2_pools_to_winograd(
        monkeypatch, kernel, stride, channels, pool, pool_stride, expected):
    calls = []
    monkeypatch.setattr(fast, "conv_pool_forward_winograd", lambda *a: calls.append("winograd") or (0, 0))
    monkeypatch.setattr(fast, "conv_pool_forward_blocked", lambda *a: calls.append("blocked") or (0, 0))
    made = make_case((1, 9, 9, channels, 4, kernel, stride, True, pool, pool_stride))
    fast.conv_pool_forward_numba(*made)
    assert calls == ([] if expected == "small" else [expected])


def test_transform_filters_is_G_g_Gt():
    g = np.arange(9.0).reshape(3, 3, 1, 1)
    U = winograd.transform_filters(g)
    np.testing.assert_array_equal(U[:, 0, 0].reshape(4, 4), winograd.G @ g[:, :, 0, 0] @ winograd.G.T)
    u = U[:, 0, 0].reshape(4, 4)
    assert [u[0, 0], u[0, 3], u[3, 0], u[3, 3]] == [0, 2, 6, 8]  # the filter's corners
    assert u[1, 1] == 36 / 4 and u[2, 2] == (0 - 1 + 2 - 3 + 4 - 5 + 6 - 7 + 8) / 4
