"""How the fused kernels hand out their parallel loops' iterations to threads."""

from __future__ import annotations

import functools

from numba import set_parallel_chunksize

from minicnn.kernels import compiled
from minicnn.threads import RUNS

FIXED_CHUNKS = RUNS
"""The backward kernels split a batch into at most this many chunks of images, each with
its own partial weight gradient, summed in chunk order at the end: a fixed split, so the
sums, and so the results, do not depend on how many threads run them. The same number as
the runs that minicnn's threads share out (:data:`minicnn.threads.RUNS`)."""


def fixed_chunks(n: int) -> int:
    """How many chunks a batch of ``n`` images is split into: ``min(n, FIXED_CHUNKS)``."""
    return min(n, FIXED_CHUNKS)


@compiled()
def chunk_images(part, chunks, n):  # pragma: no cover - compiled
    """``(start, stop)``: the images of chunk ``part`` when ``n`` images are cut into ``chunks``
    runs of equal length (the last ones may be shorter or empty). Callers pass ``np.int64(part)``:
    Numba types a ``prange`` index uint64, and each integer type would compile a version."""
    per_chunk = (n + chunks - 1) // chunks
    return part * per_chunk, min(n, (part + 1) * per_chunk)


def one_image_at_a_time(fn):
    """Run ``fn``'s parallel loops over images (or chunks of them) with dynamic scheduling.

    By default Numba splits a ``prange`` evenly between the threads up front, so on a
    shared machine the step waits for whichever thread another process slows down.
    With a chunk size of 1 each thread takes the next image when it is done with one.
    (Set and restored by hand: ``numba.parallel_chunksize`` is one shared object that
    does not restore the outer value when nested.)
    """

    @functools.wraps(fn)
    def dynamic(*args, **kwargs):
        previous = set_parallel_chunksize(1)
        try:
            return fn(*args, **kwargs)
        finally:
            set_parallel_chunksize(previous)

    return dynamic
