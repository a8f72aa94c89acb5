"""Pooled convolution for large windows, a block of images at a time so the im2col matrix stays in cache.

For the second convolution of the MNIST model at batch 128, im2col builds a
(25088, 288) float32 matrix: 29 MB, larger than any per-core cache, so the
product reads it back from memory, and the (25088, 64) product is written out
and read again by the pooling. Done for ``BLOCK_BYTES`` worth of im2col
rows at a time (16 images here), every intermediate stays in the caches::

    for each block of images:
        cols   = im2col(x[block])              # reused buffer, (B*OH*OW, KH*KW*C)
        xw     = cols @ W                       # BLAS, into a reused buffer
        pooled[block], argmax[block] = maxpool(xw)

The products and the pooling are exactly those of
:func:`minicnn.kernels.conv_pool_forward_reference`, so the results are equal
up to BLAS' order of summation (``tests/test_conv_pool_blocked.py``).
"""

from __future__ import annotations

import numpy as np

from minicnn.kernels import _im2col_kernel, _maxpool_forward_kernel, conv_output_size

BLOCK_BYTES = 4 * 2**20
"""Size of one block's im2col matrix: within a core's L2 plus its share of L3 on current x86 CPUs."""


def images_per_block(oh: int, ow: int, window: int, itemsize: int) -> int:
    """Images whose im2col rows (OH*OW rows of ``window`` values) fit in ``BLOCK_BYTES``; at least 1."""
    return max(1, BLOCK_BYTES // (oh * ow * window * itemsize))


def conv_pool_forward_blocked(x: np.ndarray, W: np.ndarray, stride: int, pads: tuple,
                              pool: int, pool_stride: int) -> tuple[np.ndarray, np.ndarray]:
    """``maxpool(im2col(x) @ W)`` block by block: the pooled convolution without bias, and the argmax.

    x: (N, H, W, C), W: (KH, KW, C, F). Returns ``(pooled, argmax)`` of shape (N, PH, PW, F),
    as :func:`minicnn.kernels.conv_pool_forward_reference` does.
    """
    top, bottom, left, right = pads
    n, h, w, c = x.shape
    kh, kw, _, f = W.shape
    oh, ow = conv_output_size(h, kh, stride, top, bottom), conv_output_size(w, kw, stride, left, right)
    ph, pw = conv_output_size(oh, pool, pool_stride, 0, 0), conv_output_size(ow, pool, pool_stride, 0, 0)
    pooled = np.empty((n, ph, pw, f), dtype=x.dtype)
    argmax = np.empty((n, ph, pw, f), dtype=np.uint8)
    block = min(n, images_per_block(oh, ow, kh * kw * c, x.itemsize))
    cols = np.empty((block, oh, ow, kh, kw, c), dtype=x.dtype)
    xw = np.empty((block, oh, ow, f), dtype=x.dtype)
    Wm = np.ascontiguousarray(W).reshape(-1, f)
    x = np.ascontiguousarray(x)
    for start in range(0, n, block):
        stop = min(n, start + block)
        b = stop - start  # the last block may be shorter
        _im2col_kernel(x[start:stop], kh, kw, stride, top, left, cols[:b])
        np.matmul(cols[:b].reshape(b * oh * ow, -1), Wm, out=xw[:b].reshape(b * oh * ow, f))
        _maxpool_forward_kernel(xw[:b], pool, pool_stride, pooled[start:stop], argmax[start:stop])
    return pooled, argmax
