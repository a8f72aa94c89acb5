"""The block-by-block pooled convolution computes what im2col @ W followed by max-pooling computes."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from test_fused import geometry, make_case

from minicnn import conv_pool_blocked, kernels


def integer_valued(made):
    """The case with small integers as inputs and weights: sums are exact in float64, so maxima tie."""
    x, W, *rest = made
    return (np.round(x * 1.5), np.round(W), *rest)


@given(geometry, st.booleans())
def test_blocked_forward_matches_reference_ties_included(case, ties):
    made = make_case(case)
    if made is None:
        return
    if ties:
        made = integer_valued(made)
    pooled_ref, argmax_ref = kernels.conv_pool_forward_reference(*made)
    pooled, argmax = conv_pool_blocked.conv_pool_forward_blocked(*made)
    np.testing.assert_allclose(pooled, pooled_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(argmax, argmax_ref)


@given(geometry)
def test_blocked_forward_with_several_blocks_matches_reference(case):
    made = make_case(case)
    if made is None:
        return
    made = integer_valued(made)
    old = conv_pool_blocked.BLOCK_BYTES
    conv_pool_blocked.BLOCK_BYTES = 1  # one image per block (hypothesis forbids function fixtures)
    try:
        pooled, argmax = conv_pool_blocked.conv_pool_forward_blocked(*made)
    finally:
        conv_pool_blocked.BLOCK_BYTES = old
    pooled_ref, argmax_ref = kernels.conv_pool_forward_reference(*made)
    np.testing.assert_allclose(pooled, pooled_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(argmax, argmax_ref)


def test_short_last_block(monkeypatch):
    monkeypatch.setattr(conv_pool_blocked, "images_per_block", lambda *args: 2)
    x, W, *geometry_args = make_case((5, 8, 8, 3, 4, 3, 1, True, 2, 2))
    pooled_ref, argmax_ref = kernels.conv_pool_forward_reference(x, W, *geometry_args)
    pooled, argmax = conv_pool_blocked.conv_pool_forward_blocked(x, W, *geometry_args)
    np.testing.assert_allclose(pooled, pooled_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(argmax, argmax_ref)


def test_images_per_block_fills_the_block_and_is_at_least_one():
    per_image = 14 * 14 * 288 * 4
    assert conv_pool_blocked.images_per_block(14, 14, 288, 4) == conv_pool_blocked.BLOCK_BYTES // per_image
    assert conv_pool_blocked.images_per_block(1000, 1000, 288, 8) == 1
