"""im2col and col2im: unfold image windows into rows, and fold row gradients back.

``im2col_reference`` / ``col2im_reference`` are the readable NumPy versions
(``docs/backprop.md#im2col-and-col2im``); ``*_numba`` compute the same numbers in
compiled loops; ``im2col`` / ``col2im`` call one or the other by the active implementation
(:mod:`minicnn.implementation`). Images are (N, H, W, C); ``pads = (top, bottom, left, right)``;
``stride`` is one int for both axes or a ``(rows, columns)`` pair.

The Numba kernels (``@compiled``: cached on disk, no zero-division checks) each loop
over the batch with ``prange``; every sample writes only its own slice of the output,
so the parallel loops never race.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from minicnn.kernels import compiled, conv_output_size, pair, window_slice


def strides_pair(stride: int | tuple[int, int]) -> tuple[int, int]:
    """``stride`` as ``(rows, columns)``: an int stands for both."""
    return (stride, stride) if isinstance(stride, (int, np.integer)) else (int(stride[0]), int(stride[1]))


def im2col_reference(x: np.ndarray, kh: int, kw: int, stride: int | tuple[int, int], pads: tuple
                     ) -> np.ndarray:
    """Unfold every receptive field of ``x`` into a row.

    x: array of shape (N, H, W, C).
    Returns ``cols`` of shape (N, OH, OW, KH, KW, C): ``cols[n, i, j]`` is the
    (zero-padded) window under output pixel ``(i, j)``. Reshaped to
    ``(N*OH*OW, KH*KW*C)`` it multiplies a Keras kernel reshaped to
    ``(KH*KW*C, F)``.
    """
    top, bottom, left, right = pads
    sh, sw = strides_pair(stride)
    n, h, w, c = x.shape
    oh = conv_output_size(h, kh, sh, top, bottom)
    ow = conv_output_size(w, kw, sw, left, right)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for di in range(kh):
        for dj in range(kw):
            cols[:, :, :, di, dj, :] = xp[:, window_slice(di, oh, sh), window_slice(dj, ow, sw), :]
    return cols


@compiled(parallel=True)
def _im2col_kernel(x, kh, kw, sh, sw, top, left, cols):  # pragma: no cover - compiled
    n, h, w, c = x.shape
    oh, ow = cols.shape[1], cols.shape[2]
    for b in prange(n):
        for i in range(oh):
            for j in range(ow):
                for di in range(kh):
                    r = i * sh + di - top
                    for dj in range(kw):
                        s = j * sw + dj - left
                        inside = 0 <= r < h and 0 <= s < w
                        for ch in range(c):
                            cols[b, i, j, di, dj, ch] = x[b, r, s, ch] if inside else 0.0


def im2col_numba(x: np.ndarray, kh: int, kw: int, stride: int | tuple[int, int], pads: tuple) -> np.ndarray:
    """Numba version of :func:`im2col_reference` (padding done inside the loop, no padded copy)."""
    top, bottom, left, right = pads
    sh, sw = strides_pair(stride)
    n, h, w, c = x.shape
    oh = conv_output_size(h, kh, sh, top, bottom)
    ow = conv_output_size(w, kw, sw, left, right)
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    _im2col_kernel(np.ascontiguousarray(x), kh, kw, sh, sw, top, left, cols)
    return cols


def col2im_reference(dcols: np.ndarray, x_shape: tuple, stride: int | tuple[int, int], pads: tuple
                     ) -> np.ndarray:
    """Fold row gradients back onto the image: the adjoint of :func:`im2col_reference`.

    dcols: array of shape (N, OH, OW, KH, KW, C), the gradient of the loss with
    respect to ``cols``. Returns ``dx`` of shape ``x_shape`` = (N, H, W, C):
    every input pixel receives the sum of the gradients of all the windows it
    appeared in; gradients that fall on the padding are dropped.
    """
    top, bottom, left, right = pads
    sh, sw = strides_pair(stride)
    n, h, w, c = x_shape
    _, oh, ow, kh, kw, _ = dcols.shape
    dxp = np.zeros((n, h + top + bottom, w + left + right, c), dtype=dcols.dtype)
    for di in range(kh):
        for dj in range(kw):
            dxp[:, window_slice(di, oh, sh), window_slice(dj, ow, sw), :] += (
                dcols[:, :, :, di, dj, :]
            )
    return dxp[:, top : top + h, left : left + w, :]


@compiled(parallel=True)
def _col2im_kernel(dcols, sh, sw, top, left, dx):  # pragma: no cover - compiled
    n, h, w, c = dx.shape
    oh, ow, kh, kw = dcols.shape[1], dcols.shape[2], dcols.shape[3], dcols.shape[4]
    for b in prange(n):
        dx[b] = 0.0
        for i in range(oh):
            for j in range(ow):
                for di in range(kh):
                    r = i * sh + di - top
                    if r < 0 or r >= h:
                        continue
                    for dj in range(kw):
                        s = j * sw + dj - left
                        if s < 0 or s >= w:
                            continue
                        for ch in range(c):
                            dx[b, r, s, ch] += dcols[b, i, j, di, dj, ch]


def col2im_numba(dcols: np.ndarray, x_shape: tuple, stride: int | tuple[int, int], pads: tuple) -> np.ndarray:
    """Numba version of :func:`col2im_reference`: a per-sample scatter-add, never ``np.add.at``."""
    dx = np.empty(x_shape, dtype=dcols.dtype)
    _col2im_kernel(np.ascontiguousarray(dcols), *strides_pair(stride), pads[0], pads[2], dx)
    return dx


im2col = pair(im2col_reference, im2col_numba)
col2im = pair(col2im_reference, col2im_numba)
