"""``a @ b`` in row blocks fixed by the shapes, so that its sums never depend on the thread count.

OpenBLAS shares a product's work out to its threads differently for each thread count,
and on some of its kernels (Haswell's, which it also runs on Zen CPUs) that changes how
each output's sum is split and so its last bits. A fold trained on one core would then
end a few ulps away from the same fold trained on two, and the difference grows over
the epochs. :func:`matmul` instead splits ``a``'s rows into blocks that depend only on
the shapes and computes each block with one BLAS thread
(:func:`minicnn.threads.one_blas_thread`), the blocks side by side on minicnn's threads
(:func:`minicnn.threads.for_each_block`): the same numbers on one thread as on many.
Both paths use it for every product of the layers (Dense, Conv2D) and fused steps.
"""

from __future__ import annotations

import numpy as np

from minicnn.threads import for_each_block, one_blas_thread

MIN_BLOCK_WORK = 2**21
"""Products with fewer multiply-adds (M*K*N) than this run as one BLAS call: threads would not pay."""

BLOCK_ROWS = 64
"""The fewest rows of ``a`` a block has; fewer would repack ``b`` for too little work."""

MAX_BLOCKS = 8
"""The most blocks a product is split into: enough for 8 threads, few enough to pack ``b`` rarely."""


def row_blocks(m: int, k: int, n: int) -> int:
    """The rows of ``a`` per block for an (m, k) @ (k, n) product: a function of the shapes alone."""
    if m * k * n < MIN_BLOCK_WORK:
        return max(m, 1)
    blocks = min(MAX_BLOCKS, -(-m // BLOCK_ROWS))
    return -(-m // blocks)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` for 2-D arrays, (M, K) @ (K, N) -> (M, N), the same to the bit on any number of threads.

    ``out``, if given, is a C-contiguous (M, N) array of the result's dtype that receives it.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: expected (M, K) @ (K, N) arrays; got {a.shape} @ {b.shape}")
    m, k = a.shape
    n = b.shape[1]
    if out is None:
        out = np.empty((m, n), dtype=np.result_type(a, b))
    rows = row_blocks(m, k, n)

    def block(i: int) -> None:
        np.matmul(a[i * rows:(i + 1) * rows], b, out=out[i * rows:(i + 1) * rows])

    with one_blas_thread():
        for_each_block(block, -(-m // rows))
    return out
