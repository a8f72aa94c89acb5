"""Thread settings that keep Numba's and OpenBLAS's worker threads off each other's cores.

By default both libraries keep idle worker threads spinning for a while after
each parallel region. On a small machine a Numba kernel that runs right after
a BLAS product then competes with OpenBLAS's still-spinning threads (and the
other way round), and training can run twice as slowly as it should. So
``import minicnn`` asks for

- ``OPENBLAS_THREAD_TIMEOUT=1``: OpenBLAS threads go to sleep almost at once.
  OpenBLAS reads it only when it loads, with NumPy: if NumPy was imported before
  minicnn, it is too late, and minicnn warns once and says how to fix it;
- ``OMP_WAIT_POLICY=PASSIVE``: Numba's OpenMP threads sleep instead of spinning
  (read when Numba starts its threads, at the first parallel kernel).

Each is a default only: a value already in the environment wins. What can be set
at run time is set with :func:`set_num_threads` (Numba's and BLAS's thread counts).

Independent pieces of work (inference batches) go to :func:`map_on_threads`: one
piece per thread, each thread alone in its kernels. Large matrix products are split by
minicnn itself into blocks fixed by their shapes (:func:`minicnn.kernels.matmul.matmul`), which
:func:`for_each_block` runs side by side while :func:`one_blas_thread` holds BLAS to one
thread: a product's sums then run in one order whatever the number of threads, so training
gives the same numbers on one core as on many.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

DEFAULTS = {"OPENBLAS_THREAD_TIMEOUT": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def apply_defaults() -> None:
    """Set :data:`DEFAULTS` where the environment has no value; warn if NumPy loaded OpenBLAS already."""
    late = "numpy" in sys.modules and "OPENBLAS_THREAD_TIMEOUT" not in os.environ
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    if late:
        warnings.warn(
            "minicnn was imported after NumPy, so OpenBLAS started without OPENBLAS_THREAD_TIMEOUT=1 and its "
            "idle threads may spin against Numba's: training can run up to twice as slowly. Import minicnn "
            "before numpy, or set OPENBLAS_THREAD_TIMEOUT=1 in the environment.",
            RuntimeWarning, stacklevel=3)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in Numba's kernels and in the BLAS behind NumPy, from now on in this process."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int; got {n!r}")
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
    item. The caller's context (the kernel path of :func:`minicnn.kernels.use`) goes with
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
    so a thread that another process holds up delays only the block it is on.
    """
    import numba

    workers = min(numba.get_num_threads(), blocks)
    if workers <= 1:
        for block in range(blocks):
            fn(block)
        return
    queue = itertools.count()  # next() on it is atomic under the GIL

    def work() -> None:
        while (block := next(queue)) < blocks:
            fn(block)

    helpers = [_block_pool().submit(work) for _ in range(workers - 1)]
    try:
        work()
    finally:
        for helper in helpers:
            helper.result()


def _block_pool() -> ThreadPoolExecutor:
    """The threads that :func:`for_each_block` shares out blocks to, made once per process."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():  # a forked child has none of its parent's threads
        _POOL = (os.getpid(), ThreadPoolExecutor(max(1, (os.cpu_count() or 2) - 1),
                                                 thread_name_prefix="minicnn-blocks"))
    return _POOL[1]


_POOL: tuple[int, ThreadPoolExecutor] | None = None
