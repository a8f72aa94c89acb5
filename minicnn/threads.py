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
piece per thread, each thread alone in its kernels.
"""

from __future__ import annotations

import contextvars
import os
import sys
import warnings
from collections.abc import Callable, Sequence
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
    item. The caller's context (the implementation of :func:`minicnn.implementation.use`) goes with
    every item. With one thread or one item this is a plain loop.
    """
    import numba

    workers = min(numba.get_num_threads(), len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    from threadpoolctl import threadpool_limits

    context = contextvars.copy_context()

    def alone(item: T) -> R:
        numba.set_num_threads(1)
        return context.copy().run(fn, item)

    pool = ThreadPoolExecutor(workers, thread_name_prefix="minicnn")
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            return list(pool.map(alone, items))
    finally:
        pool.shutdown(cancel_futures=True)  # after an error or an interrupt, start no further item
