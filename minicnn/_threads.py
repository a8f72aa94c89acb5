"""Thread settings that keep Numba's and OpenBLAS's worker threads off each other's cores.

By default both libraries keep idle worker threads spinning for a while after
each parallel region. On a small machine a Numba kernel that runs right after
a BLAS product then competes with OpenBLAS's still-spinning threads (and the
other way round), and training can run twice as slowly as it should. minicnn
therefore asks, before NumPy or Numba start their thread pools, for

- ``OPENBLAS_THREAD_TIMEOUT=1``: OpenBLAS threads go to sleep almost at once
  (read only when OpenBLAS loads, so it only works if ``minicnn`` is imported
  before ``numpy``);
- ``OMP_WAIT_POLICY=PASSIVE``: Numba's OpenMP threads sleep instead of spinning.

Each is a default only: a value already in the environment wins. These
settings belong to minicnn's process; benchmarks run other frameworks in
processes of their own.
"""

import os

for _name, _value in (("OPENBLAS_THREAD_TIMEOUT", "1"), ("OMP_WAIT_POLICY", "PASSIVE")):
    os.environ.setdefault(_name, _value)
