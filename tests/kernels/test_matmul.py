"""``matmul``: ``a @ b`` whose every bit is the same on one thread or many, and training that follows."""

import numba
import numpy as np
import pytest
import threadpoolctl

import minicnn
from minicnn import threads
from minicnn.experiments.data import load_data
from minicnn.kernels.matmul import BLOCK_ROWS, MAX_BLOCKS, MIN_BLOCK_WORK, matmul, row_blocks

needs_two = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")

SHAPES = [(128, 3136, 128), (3136, 128, 128), (128, 128, 3136), (128, 128, 10), (1000, 288, 64),
          (7, 5, 3), (0, 4, 2), (130, 2000, 20)]


def _operands(m, k, n, dtype, seed=0, transposed=False):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if transposed else (m, k)).astype(dtype)
    return (a.T if transposed else a), rng.standard_normal((k, n)).astype(dtype)


def _with_threads(numba_threads, blas_threads, fn):
    previous = numba.get_num_threads()
    numba.set_num_threads(numba_threads)
    try:
        with threadpoolctl.threadpool_limits(limits=blas_threads, user_api="blas"):
            return fn()
    finally:
        numba.set_num_threads(previous)


@needs_two
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("transposed", [False, True])  # a.T as the layers pass it (dW = x.T @ dz)
def test_every_bit_is_the_same_on_one_thread_and_on_two(shape, transposed):
    a, b = _operands(*shape, np.float32, transposed=transposed)
    one = _with_threads(1, 1, lambda: matmul(a, b))
    two = _with_threads(2, 2, lambda: matmul(a, b))  # BLAS allowed 2: matmul must still use 1
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_the_product_to_round_off(shape, dtype):
    a, b = _operands(*shape, dtype, seed=1)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    # Any order of K float sums errs by at most K * eps * sum |a_ik b_kj| (Higham, eq. 3.5).
    bound = shape[1] * np.finfo(dtype).eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    got = matmul(a, b)
    assert got.dtype == dtype and got.shape == exact.shape
    assert np.all(np.abs(got - exact) <= bound)


def test_writes_into_out_and_refuses_mismatched_shapes():
    a, b = _operands(200, 300, 40, np.float32)
    out = np.full((200, 40), np.nan, dtype=np.float32)
    assert matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match=r"matmul: expected \(M, K\) @ \(K, N\) arrays; got \(200, 300\) @ "
                                         r"\(40, 300\)"):
        matmul(a, b.T)


def test_blocks_depend_on_the_shapes_alone():
    assert row_blocks(128, 128, 10) == 128  # too little work to split: one BLAS call
    assert row_blocks(128, 3136, 128) == BLOCK_ROWS  # two blocks of 64 rows
    m = 25088
    rows = row_blocks(m, 288, 64)
    assert -(-m // rows) == MAX_BLOCKS and rows * MAX_BLOCKS >= m
    assert 128 * 128 * 10 < MIN_BLOCK_WORK <= 128 * 3136 * 128


def test_one_blas_thread_holds_blas_at_one_and_restores_it():
    def blas():
        return {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        with threads.one_blas_thread():
            assert blas() == {1}
            with threads.one_blas_thread():  # nested: leaves the outer limit alone
                assert blas() == {1}
            assert blas() == {1}
        assert blas() == {2}


@needs_two
@pytest.mark.parametrize("implementation", ["fast", "reference"])
def test_a_fit_gives_the_same_numbers_on_one_thread_as_on_two(implementation):
    """The fault behind folds that differed between --jobs 1 and --jobs 2 (Haswell kernels)."""
    data = load_data("digits").limited(256)
    x, y = data.x_cv, minicnn.to_categorical(data.y_cv, data.num_classes)

    def fit():
        model = minicnn.experiments.published_model.mnist_cnn(x.shape[1:], data.num_classes, seed=3)
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"],
                      implementation=implementation)
        history = model.fit(x, y, batch_size=64, epochs=2, verbose=0, seed=4).history
        return history, model.get_weights(), model.predict(x[:40])

    one, two = _with_threads(1, 1, fit), _with_threads(2, 2, fit)
    assert one[0] == two[0]
    for w1, w2 in zip(one[1], two[1], strict=True):
        np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(one[2], two[2])
