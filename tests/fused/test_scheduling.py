"""The fused kernels hand out images to threads dynamically, and their results do not depend on it."""

import numba
import numpy as np
import pytest

from minicnn.fused import conv_pool_kernels as fast


def test_one_image_at_a_time_sets_chunk_size_1_during_the_call_only():
    before = numba.get_parallel_chunksize()
    inside = fast.one_image_at_a_time(numba.get_parallel_chunksize)()
    assert inside == 1
    assert numba.get_parallel_chunksize() == before


def test_nested_dynamic_calls_restore_the_chunk_size():
    # conv_pool_forward_numba calls conv_pool_forward_blocked, both dynamic: a chunk size of 1
    # left behind would make every later parallel loop (elementwise kernels) hand out one element at a time.
    rng = np.random.default_rng(0)
    before = numba.get_parallel_chunksize()
    fast.conv_pool_forward_numba(rng.random((2, 6, 6, 8)), rng.random((3, 3, 8, 4)), 1, (1, 1, 1, 1), 2, 2)
    assert numba.get_parallel_chunksize() == before


@pytest.mark.parametrize("channels", [1, 4])  # the small-window kernel (9 values) and the other (36)
def test_pooled_conv_backward_is_the_same_with_one_or_two_threads(channels):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 7, 7, channels)).astype(np.float32)
    W = rng.standard_normal((3, 3, channels, 5)).astype(np.float32)
    _, argmax = fast.conv_pool_forward_numba(x, W, 1, (1, 1, 1, 1), 2, 2)
    d = rng.standard_normal(argmax.shape).astype(np.float32)
    results = []
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(n)
            results.append(fast.conv_pool_backward_numba(d, argmax, x, W, 1, (1, 1, 1, 1), 2, 2))
    finally:
        numba.set_num_threads(threads)
    for dW, dx in results[1:]:
        np.testing.assert_array_equal(dW, results[0][0])  # fixed chunks: the same sums in the same order
        np.testing.assert_array_equal(dx, results[0][1])

