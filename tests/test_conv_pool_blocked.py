"""The block-by-block pooled convolution computes what im2col @ W followed by max-pooling computes."""

from hypothesis import given
from hypothesis import strategies as st
from test_fused import assert_forward_matches_definition, geometry, integer_valued, make_case

from minicnn.fused import conv_pool_kernels as fast


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
