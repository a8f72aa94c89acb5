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
"""

from __future__ import annotations

import os
import sys
import warnings

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
