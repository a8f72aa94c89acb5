"""im2col and col2im: unfold image windows into rows, and fold row gradients back.

``im2col_reference`` / ``col2im_reference`` are the readable NumPy versions
(``docs/backprop.md#im2col-and-col2im``); ``*_numba`` compute the same numbers in
compiled loops; ``im2col`` / ``col2im`` call one or the other by the active implementation
(:mod:`minicnn.implementation`). Images are (N, H, W, C); ``pads = (top, bottom, left, right)``;
``stride`` is one int for both axes or a ``(rows, columns)`` pair.

The Numba kernels (``@compiled``: cached on disk, no zero-division checks, without the GIL)
loop over the images they are given on the calling thread; ``*_numba`` share a batch's images
out to minicnn's threads in fixed runs (:func:`minicnn.threads.for_each_run`). Every image
writes only its own slice of the output, so the threads never race.
"""

from __future__ import annotations

import numpy as np

from minicnn.kernels import compiled, conv_output_size, pair, window_slice
from minicnn.threads import for_each_run


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


@compiled()
def _im2col_kernel(x, kh, kw, sh, sw, top, left, cols):  # pragma: no cover - compiled
    n, h, w, c = x.shape
    oh, ow = cols.shape[1], cols.shape[2]
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                s0 = j * sw - left  # the window's first column
                for di in range(kh):
                    r = i * sh + di - top
                    if r < 0 or r >= h:  # a window row in the padding
                        for dj in range(kw):
                            for ch in range(c):
                                cols[b, i, j, di, dj, ch] = 0.0
                    elif 0 <= s0 and s0 + kw <= w:  # a window row inside the image: no test per pixel
                        for dj in range(kw):
                            for ch in range(c):
                                cols[b, i, j, di, dj, ch] = x[b, r, s0 + dj, ch]
                    else:
                        for dj in range(kw):
                            s = s0 + dj
                            if 0 <= s < w:
                                for ch in range(c):
                                    cols[b, i, j, di, dj, ch] = x[b, r, s, ch]
                            else:
                                for ch in range(c):
                                    cols[b, i, j, di, dj, ch] = 0.0


def im2col_into(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, top: int, left: int,
                cols: np.ndarray) -> None:
    """Write im2col of the images ``x`` (N, H, W, C) into ``cols`` (N, OH, OW, KH, KW, C), for strides
    ``(sh, sw)`` and ``top`` / ``left`` padding, on the calling thread (compiled, without the GIL:
    callers run it on blocks of images side by side)."""
    _im2col_kernel(x, kh, kw, sh, sw, top, left, cols)


def im2col_on_threads(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, top: int, left: int,
                      cols: np.ndarray) -> None:
    """:func:`im2col_into`, the images shared out to minicnn's threads in fixed runs
    (:func:`minicnn.threads.for_each_run`)."""
    for_each_run(lambda start, stop: im2col_into(x[start:stop], kh, kw, sh, sw, top, left,
                                                   cols[start:stop]), x.shape[0])


def im2col_numba(x: np.ndarray, kh: int, kw: int, stride: int | tuple[int, int], pads: tuple) -> np.ndarray:
    """Numba version of :func:`im2col_reference` (padding done inside the loop, no padded copy),
    images shared out to minicnn's threads (:func:`minicnn.threads.for_each_run`)."""
    top, bottom, left, right = pads
    sh, sw = strides_pair(stride)
    n, h, w, c = x.shape
    oh = conv_output_size(h, kh, sh, top, bottom)
    ow = conv_output_size(w, kw, sw, left, right)
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    im2col_on_threads(np.ascontiguousarray(x), kh, kw, sh, sw, top, left, cols)
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


@compiled()
def _col2im_kernel(dcols, sh, sw, top, left, dx):  # pragma: no cover - compiled
    n, h, w, c = dx.shape
    oh, ow, kh, kw = dcols.shape[1], dcols.shape[2], dcols.shape[3], dcols.shape[4]
    for b in range(n):
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


def col2im_into(dcols: np.ndarray, sh: int, sw: int, top: int, left: int, dx: np.ndarray) -> None:
    """Write col2im of ``dcols`` (N, OH, OW, KH, KW, C) into ``dx`` (N, H, W, C), both C-contiguous,
    on the calling thread (compiled, without the GIL), each image's sums in the order of the loops."""
    _col2im_kernel(dcols, sh, sw, top, left, dx)


def col2im_numba(dcols: np.ndarray, x_shape: tuple, stride: int | tuple[int, int], pads: tuple) -> np.ndarray:
    """Numba version of :func:`col2im_reference`: a per-sample scatter-add, never ``np.add.at``,
    images shared out to minicnn's threads (:func:`minicnn.threads.for_each_run`)."""
    sh, sw = strides_pair(stride)
    dcols = np.ascontiguousarray(dcols)
    dx = np.empty(x_shape, dtype=dcols.dtype)
    for_each_run(lambda start, stop: col2im_into(dcols[start:stop], sh, sw, pads[0], pads[2],
                                                   dx[start:stop]), x_shape[0])
    return dx


im2col = pair(im2col_reference, im2col_numba)
col2im = pair(col2im_reference, col2im_numba)
