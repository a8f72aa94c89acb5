"""Thread settings that keep Numba's and OpenBLAS's worker threads off each other's cores.

By default both libraries keep idle worker threads spinning for a while after
each parallel region (OpenBLAS's for 2**28 processor cycles, about a tenth of a
second). On a small machine a Numba kernel that runs right after a BLAS product
then competes with OpenBLAS's still-spinning threads (and the other way round),
and training can run twice as slowly as it should. So ``import minicnn`` asks for

- ``OPENBLAS_THREAD_TIMEOUT=1``: OpenBLAS threads go to sleep almost at once (after
  2**4 cycles, the least OpenBLAS allows). An OpenBLAS reads it as it loads: NumPy's
  when NumPy is imported, SciPy's (whose BLAS Numba's ``np.dot`` calls) when it is.
  One that loaded before minicnn is told at import, through its own exported
  functions (:func:`apply_to_loaded_openblas`), so the order of the imports does not matter;
- ``OMP_WAIT_POLICY=PASSIVE``: OpenMP threads (Numba's, any other library's) sleep instead of
  spinning (read when a runtime starts its threads).

Each is a default only: a value already in the environment wins. What can be set
at run time is set with :func:`set_num_threads` (Numba's and BLAS's thread counts).

Independent pieces of work (inference batches) go to :func:`map_on_threads`: one
piece per thread, each thread alone in its kernels. Large matrix products are split by
minicnn itself into blocks fixed by their shapes (:func:`minicnn.kernels.matmul.matmul`), which
:func:`for_each_block` runs side by side while :func:`one_blas_thread` holds BLAS to one
thread: a product's sums then run in one order whatever the number of threads, so training
gives the same numbers on one core as on many. The compiled kernels, all serial, take fixed
runs of images or rows (:func:`for_each_run`); a sum over a batch keeps one partial per run
(:func:`partials_of_runs`), added in run order, for the same reason.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import itertools
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from minicnn.validation import check_int

T = TypeVar("T")
R = TypeVar("R")

DEFAULTS = {"OPENBLAS_THREAD_TIMEOUT": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def apply_defaults() -> None:
    """Set :data:`DEFAULTS` where the environment has no value, and have a loaded OpenBLAS follow them."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    apply_to_loaded_openblas()


def apply_to_loaded_openblas() -> None:
    """Have every OpenBLAS loaded in this process take ``OPENBLAS_THREAD_TIMEOUT`` from the environment now.

    OpenBLAS reads the variable when it loads, and its worker threads take the timeout when
    they start. For each OpenBLAS with its own threads (not OpenMP's) that threadpoolctl finds,
    ``openblas_read_env()`` reads the environment again; if the timeout changed,
    ``blas_thread_shutdown_()`` stops the threads, as OpenBLAS itself does before every
    ``fork()``, and its next parallel call starts them again with the new timeout and the same
    thread count. Call it while no other thread is inside BLAS (``import minicnn`` does, once).
    An OpenBLAS that exports neither function (none known) is left as it is.
    """
    if not hasattr(os, "RTLD_NOLOAD"):  # Windows: OpenBLAS's threads there block on events, with no timeout
        return
    from threadpoolctl import threadpool_info

    for info in threadpool_info():
        if info["internal_api"] != "openblas" or info.get("threading_layer") != "pthreads":
            continue
        library = ctypes.CDLL(info["filepath"], mode=os.RTLD_NOLOAD)  # the copy already loaded
        if not all(hasattr(library, name) for name in
                   ("openblas_thread_timeout", "openblas_read_env", "blas_thread_shutdown_")):
            continue
        library.openblas_thread_timeout.restype = ctypes.c_uint
        before = library.openblas_thread_timeout()
        library.openblas_read_env()
        if library.openblas_thread_timeout() != before:
            library.blas_thread_shutdown_()


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in Numba's kernels and in the BLAS behind NumPy, from now on in this process."""
    n = check_int(n, "set_num_threads: n", minimum=1)
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(limits=n, user_api="blas")


def map_on_threads(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(item) for item in items]``, computed on as many threads as minicnn's kernels use.

    For independent work, such as the batches of ``predict``: each thread takes the next
    item when it is done with one and computes it alone, with one-thread kernels (Numba's
    count is per thread; BLAS's is limited to 1 meanwhile, for the whole process). The
    threads then never wait for each other inside an item. Parallel kernels instead end
    every loop at a barrier, and on a shared machine each barrier waits for whichever
    thread another process has preempted; here a preempted thread holds up only its own
    item. The caller's context (the implementation of :func:`minicnn.implementation.use`) goes with
    every item. With one thread or one item this is a plain loop.
    """
    import numba

    workers = min(numba.get_num_threads(), len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    context = contextvars.copy_context()

    def alone(item: T) -> R:
        numba.set_num_threads(1)
        return context.copy().run(fn, item)

    pool = ThreadPoolExecutor(workers, thread_name_prefix="minicnn")
    try:
        with one_blas_thread():
            return list(pool.map(alone, items))
    finally:
        pool.shutdown(cancel_futures=True)  # after an error or an interrupt, start no further item


_HOLDING_ONE_BLAS_THREAD: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "minicnn_one_blas_thread", default=False)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Within the ``with`` block, BLAS runs on one thread: NumPy's, and SciPy's that Numba's ``np.dot`` calls.

    OpenBLAS shares a product's work out differently for different thread counts, and on
    some of its kernels (Haswell's, for one) that changes the last bits of the sums.
    minicnn parallelises its products itself instead (:func:`for_each_block`). The limit
    is set once, by the outermost block: blocks nested in it, in the same thread or in
    threads that run in a copy of its context (:func:`map_on_threads`), leave it alone.
    threadpoolctl lets one thread at a time change OpenBLAS' thread count; a block
    entered in another thread while that one holds a limit leaves the limit as it is.
    """
    if _HOLDING_ONE_BLAS_THREAD.get():
        yield
        return
    token = _HOLDING_ONE_BLAS_THREAD.set(True)
    try:
        with _blas_libraries().limit(limits=1):
            yield
    finally:
        _HOLDING_ONE_BLAS_THREAD.reset(token)


@functools.cache
def _blas_libraries():
    """threadpoolctl's handle on every BLAS library loaded, SciPy's included (loaded first if need be)."""
    import scipy.linalg  # noqa: F401  (its OpenBLAS is the one Numba's np.dot calls)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


def for_each_block(fn: Callable[[int], None], blocks: int) -> None:
    """``fn(0)``, ..., ``fn(blocks - 1)`` side by side, on as many threads as minicnn's kernels use.

    For blocks that write disjoint parts of one result: each block is computed the same
    way on whichever thread takes it, so the result does not depend on how many threads
    there are. The caller's thread takes its share; each free thread takes the next block,
    so a thread that another process holds up delays only the block it is on. A block that
    calls this again runs its own blocks one after another, on its thread.
    """
    import numba

    workers = min(numba.get_num_threads(), blocks)
    if workers <= 1 or getattr(_IN_A_BLOCK, "value", False):
        for block in range(blocks):
            fn(block)
        return
    queue = itertools.count()  # next() on it is atomic under the GIL

    def work() -> None:
        _IN_A_BLOCK.value = True
        try:
            while (block := next(queue)) < blocks:
                fn(block)
        finally:
            _IN_A_BLOCK.value = False

    helpers = [_block_pool().submit(work) for _ in range(workers - 1)]
    try:
        work()
    finally:
        for helper in helpers:
            helper.result()


_IN_A_BLOCK = threading.local()
"""``value`` is True on a thread while it works on :func:`for_each_block`'s blocks (a nested call
runs serially there: waiting for the pool's threads from one of them could wait forever)."""


RUNS = 16
"""How many runs :func:`for_each_run` cuts ``n`` items into: enough for 16 threads to share,
few enough that each run is long beside the cost of handing it to a thread."""


def for_each_run(fn: Callable[[int, int], None], n: int) -> None:
    """``fn(start, stop)`` for consecutive runs of ``n`` items (images, rows) that together cover them,
    side by side on minicnn's threads (:func:`for_each_block`). For work that treats each item on its
    own, or keeps a partial result per run (a compiled kernel, which runs without the GIL): the runs
    depend on ``n`` alone (:func:`runs`), so the result does not depend on the number of threads."""
    per_run = run_length(n)
    for_each_block(lambda run: fn(run * per_run, min(n, (run + 1) * per_run)), runs(n))


def run_length(n: int) -> int:
    """Items per run of :func:`for_each_run` for ``n`` items (the last run may be shorter)."""
    return -(-n // min(n, RUNS)) if n > 0 else 1


def runs(n: int) -> int:
    """How many runs :func:`for_each_run` cuts ``n`` items into (at most :data:`RUNS`)."""
    return -(-n // run_length(n)) if n > 0 else 0


ROW_GAP = 256
"""Bytes left free after each row of :func:`partials_of_runs`: rows that touch each other, each
written by its own core, ran BatchNormalization's sums over a 26x26x32 batch 1.8x slower on two threads
than on one (the cores' prefetchers fetch the lines of the neighbouring row, which the other core writes)."""


def partials_of_runs(fn: Callable[[int, int, np.ndarray], None], n: int, shape: tuple,
                     dtype: np.dtype | type) -> np.ndarray:
    """``fn(start, stop, partial[run])`` for each run of :func:`for_each_run` over ``n`` items, side
    by side; returns ``partial`` (``runs(n), *shape``), which starts as zeros: each run adds its
    items' share of a sum (a weight gradient, a channel's statistics) into its own row, and the
    caller adds the rows up in run order, so the sum does not depend on the number of threads.
    Each row is C-contiguous and lies :data:`ROW_GAP` bytes or more from the next."""
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    stride = -(-(size * dtype.itemsize + ROW_GAP) // 64) * 64 // dtype.itemsize  # whole cache lines
    partial = np.zeros((runs(n), stride), dtype=dtype)[:, :size].reshape(runs(n), *shape)
    per_run = run_length(n)
    for_each_run(lambda start, stop: fn(start, stop, partial[start // per_run]), n)
    return partial


def _block_pool() -> ThreadPoolExecutor:
    """The threads that :func:`for_each_block` shares out blocks to, made once per process."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():  # a forked child has none of its parent's threads
        _POOL = (os.getpid(), ThreadPoolExecutor(max(1, (os.cpu_count() or 2) - 1),
                                                 thread_name_prefix="minicnn-blocks"))
    return _POOL[1]


_POOL: tuple[int, ThreadPoolExecutor] | None = None
