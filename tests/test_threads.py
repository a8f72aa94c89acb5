"""Independent batches run side by side, each thread alone in its kernels, in the caller's implementation."""

import threading
import time

import numba
import numpy as np
import pytest
import threadpoolctl

from minicnn import implementation, threads
from minicnn.experiments.published_model import mnist_cnn

needs_two = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")


def blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}


@needs_two
def test_items_run_on_several_threads_each_with_one_thread_kernels_and_the_callers_path():
    seen = []

    def record(item):
        time.sleep(0.01)  # long enough that one thread cannot take every item
        seen.append((threading.get_ident(), numba.get_num_threads(), blas_threads(),
                     implementation.current()))
        return item * 10

    before = (numba.get_num_threads(), blas_threads())
    with implementation.use("reference"):
        assert threads.map_on_threads(record, range(8)) == [0, 10, 20, 30, 40, 50, 60, 70]
    assert len({ident for ident, *_ in seen}) == 2
    assert {(n, frozenset(b), name) for _, n, b, name in seen} == {(1, frozenset({1}), "reference")}
    assert (numba.get_num_threads(), blas_threads()) == before  # the caller's counts are untouched


@needs_two
def test_an_error_in_one_item_reaches_the_caller_and_no_further_item_starts():
    started = []

    def fail_on_two(item):
        started.append(item)
        if item == 2:
            raise ValueError("item 2 is bad")
        time.sleep(0.05)
        return item

    with pytest.raises(ValueError, match="item 2 is bad"):
        threads.map_on_threads(fail_on_two, range(100))
    time.sleep(0.2)
    assert len(started) < 10


@pytest.mark.parametrize("n", [1, 5, 16, 17, 128])
def test_for_each_run_covers_every_item_once_in_runs_that_depend_on_the_count_alone(n):
    runs_by_threads = []
    numba_threads = numba.get_num_threads()
    try:
        for count in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(count)
            runs: list[tuple[int, int]] = []
            threads.for_each_run(lambda start, stop, runs=runs: runs.append((start, stop)), n)
            runs_by_threads.append(sorted(runs))
    finally:
        numba.set_num_threads(numba_threads)
    for runs in runs_by_threads:
        assert runs == runs_by_threads[0]
        covered = [i for start, stop in runs for i in range(start, stop)]
        assert covered == list(range(n))
        assert len(runs) == threads.runs(n) <= threads.RUNS


@needs_two
def test_compiled_kernels_release_the_gil_so_other_threads_run_meanwhile():
    """for_each_block's threads run kernels side by side only if a kernel lets go of the GIL: while
    one runs in this thread, a Python loop in another thread must keep counting at its usual pace.
    (Holding the GIL, the kernel would let the loop run only between calls, in 5 ms slices.)"""
    from minicnn.kernels.im2col import im2col_into

    x = np.random.default_rng(0).random((24, 64, 64, 32), dtype=np.float32)
    cols = np.empty((24, 64, 64, 3, 3, 32), dtype=np.float32)
    im2col_into(x[:1], 3, 3, 1, 1, 1, 1, cols[:1])  # compiled before the count
    count, stop = [0], threading.Event()

    def counter():
        while not stop.is_set():
            count[0] += 1

    def pace(work) -> float:
        before, start = count[0], time.perf_counter()
        work()
        return (count[0] - before) / (time.perf_counter() - start)

    thread = threading.Thread(target=counter)
    thread.start()
    try:
        free = pace(lambda: time.sleep(0.1))
        during_kernels = pace(lambda: [im2col_into(x, 3, 3, 1, 1, 1, 1, cols) for _ in range(3)])
    finally:
        stop.set()
        thread.join()
    assert during_kernels > 0.4 * free  # about 0.8 here without the GIL, 0.1 holding it


def test_one_thread_is_a_plain_loop_in_the_callers_thread():
    caller = threading.get_ident()
    numba_threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        done = threads.map_on_threads(lambda i: (i, threading.get_ident()), [3, 1])
        assert done == [(3, caller), (1, caller)]
    finally:
        numba.set_num_threads(numba_threads)


@needs_two
@pytest.mark.parametrize("batch_size", [7, 128])
def test_predict_side_by_side_equals_predict_batch_by_batch_on_one_thread(implementation, batch_size):
    x = np.random.default_rng(0).random((300, 28, 28, 1), dtype=np.float32)
    model = mnist_cnn(seed=3)
    together = model.predict(x, batch_size=batch_size)
    expected = np.concatenate([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    np.testing.assert_allclose(together, expected, rtol=1e-5, atol=1e-7)
    assert together.shape == (300, 10) and together.dtype == np.float32


@pytest.mark.parametrize("n", [1, 5, 17, 128])
def test_partials_of_runs_gives_each_run_its_own_row_starting_at_zero(n):
    def count(start: int, stop: int, part: np.ndarray) -> None:
        part[0] += stop - start
        part[1] += sum(range(start, stop))

    partial = threads.partials_of_runs(count, n, (2,), np.int64)
    per_run = threads.run_length(n)
    bounds = [(r * per_run, min(n, (r + 1) * per_run)) for r in range(threads.runs(n))]
    assert partial.tolist() == [[stop - start, sum(range(start, stop))] for start, stop in bounds]


@pytest.mark.parametrize(("shape", "dtype"),
                         [((2, 32), np.float64), ((3,), np.float32), ((27, 32), np.float32)])
def test_partials_of_runs_keeps_the_rows_apart(shape, dtype):
    # each row C-contiguous (a kernel writes it as one array), and ROW_GAP bytes or more from the next
    rows = []
    partial = threads.partials_of_runs(lambda start, stop, part: rows.append(part), 40, shape, dtype)
    assert partial.shape == (threads.runs(40), *shape) and partial.dtype == dtype
    assert all(row.flags.c_contiguous and np.shares_memory(row, partial) for row in rows)
    row_bytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    assert partial.strides[0] >= row_bytes + threads.ROW_GAP


@needs_two
def test_a_block_that_shares_out_blocks_of_its_own_runs_them_on_its_own_thread():
    # Waiting for the pool from one of its own threads could wait forever: the nested blocks run serially.
    seen = []

    def outer(i: int) -> None:
        here = threading.get_ident()
        threads.for_each_block(lambda j: seen.append((i, j, here == threading.get_ident())), 3)

    caller = threading.Thread(target=threads.for_each_block, args=(outer, 4), daemon=True)
    caller.start()
    caller.join(timeout=60)
    assert not caller.is_alive(), "nested for_each_block did not finish"
    assert sorted(seen) == [(i, j, True) for i in range(4) for j in range(3)]
