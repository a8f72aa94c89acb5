"""How the fused kernels hand out their parallel loops' iterations to threads."""

from __future__ import annotations

import functools

from numba import set_parallel_chunksize


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
