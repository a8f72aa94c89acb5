"""Max-pooling forward and backward over non-padded windows of NHWC images.

``maxpool_*_reference`` are the readable NumPy versions (``docs/backprop.md#maxpooling2d``),
``maxpool_*_numba`` the compiled ones, and ``maxpool_forward`` / ``maxpool_backward``
call one or the other by the active implementation (:mod:`minicnn.implementation`).
"""

from __future__ import annotations

import numpy as np

from minicnn.kernels import compiled, conv_output_size, pair, window_slice
from minicnn.threads import for_each_run


def maxpool_forward_reference(x: np.ndarray, pool: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Max over each ``pool x pool`` window (no padding).

    x: array of shape (N, H, W, C).
    Returns ``(out, argmax)``, both of shape (N, OH, OW, C): the maxima, and
    the position of each maximum inside its window as ``di * pool + dj``
    (uint8). On ties the first maximum in row-major order wins, so the
    backward pass routes the gradient to exactly one input.
    """
    n, h, w, c = x.shape
    oh = conv_output_size(h, pool, stride, 0, 0)
    ow = conv_output_size(w, pool, stride, 0, 0)
    out = np.full((n, oh, ow, c), -np.inf, dtype=x.dtype)
    argmax = np.zeros((n, oh, ow, c), dtype=np.uint8)
    for di in range(pool):
        for dj in range(pool):
            window = x[:, window_slice(di, oh, stride), window_slice(dj, ow, stride), :]
            better = window > out  # strict: on ties the first maximum stays
            out = np.where(better, window, out)  # whole-array selects: boolean indexing is much slower
            argmax = np.where(better, np.uint8(di * pool + dj), argmax)
    return out, argmax


def maxpool_backward_reference(
    dout: np.ndarray, argmax: np.ndarray, x_shape: tuple, pool: int, stride: int
) -> np.ndarray:
    """Send each output gradient to the input that was the window's maximum.

    dout, argmax: arrays of shape (N, OH, OW, C). Returns ``dx`` of shape
    ``x_shape`` = (N, H, W, C); inputs that were no window's maximum get 0.
    """
    _, oh, ow, _ = dout.shape
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for di in range(pool):
        for dj in range(pool):
            routed = np.where(argmax == di * pool + dj, dout, 0)
            dx[:, window_slice(di, oh, stride), window_slice(dj, ow, stride), :] += routed
    return dx


@compiled()
def _maxpool_forward_kernel(x, pool, stride, out, argmax):  # pragma: no cover - compiled
    # Channels innermost: each window offset is one branch-free loop over the channels that
    # compares and selects, which vectorizes (a loop over the window per channel does not).
    n, oh, ow, c = out.shape
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    out[b, i, j, ch] = x[b, i * stride, j * stride, ch]
                    argmax[b, i, j, ch] = 0
                for k in range(1, pool * pool):
                    r, s = i * stride + k // pool, j * stride + k % pool
                    for ch in range(c):
                        v = x[b, r, s, ch]
                        better = v > out[b, i, j, ch]  # strict: on ties the first maximum stays
                        out[b, i, j, ch] = v if better else out[b, i, j, ch]
                        argmax[b, i, j, ch] = k if better else argmax[b, i, j, ch]


def maxpool_forward_numba(x: np.ndarray, pool: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Numba version of :func:`maxpool_forward_reference`."""
    n, h, w, c = x.shape
    oh = conv_output_size(h, pool, stride, 0, 0)
    ow = conv_output_size(w, pool, stride, 0, 0)
    out = np.empty((n, oh, ow, c), dtype=x.dtype)
    argmax = np.empty((n, oh, ow, c), dtype=np.uint8)
    maxpool_forward_into(x, pool, stride, out, argmax)
    return out, argmax


def maxpool_forward_into(x: np.ndarray, pool: int, stride: int, out: np.ndarray, argmax: np.ndarray) -> None:
    """:func:`maxpool_forward_numba` into ``out`` and ``argmax`` (N, OH, OW, C), fixed runs of images
    side by side on minicnn's threads (:func:`minicnn.threads.for_each_run`)."""
    x = np.ascontiguousarray(x)
    for_each_run(lambda start, stop: _maxpool_forward_kernel(
        x[start:stop], pool, stride, out[start:stop], argmax[start:stop]), x.shape[0])


@compiled()
def _maxpool_backward_kernel(dout, argmax, pool, stride, dx):  # pragma: no cover - compiled
    # Per window offset k, one branch-free loop over the channels adds dout where k won, else 0
    # (windows that overlap add up; inputs no window covers stay 0).
    n, oh, ow, c = dout.shape
    _, h, w, _ = dx.shape
    zero = dout.dtype.type(0)
    for b in range(n):
        for r in range(h):
            for s in range(w):
                for ch in range(c):
                    dx[b, r, s, ch] = zero
        for i in range(oh):
            for j in range(ow):
                for k in range(pool * pool):
                    r, s = i * stride + k // pool, j * stride + k % pool
                    for ch in range(c):
                        won = argmax[b, i, j, ch] == k
                        dx[b, r, s, ch] += dout[b, i, j, ch] if won else zero


def maxpool_backward_numba(
    dout: np.ndarray, argmax: np.ndarray, x_shape: tuple, pool: int, stride: int
) -> np.ndarray:
    """Numba version of :func:`maxpool_backward_reference`."""
    dx = np.empty(x_shape, dtype=dout.dtype)
    dout = np.ascontiguousarray(dout)
    for_each_run(lambda start, stop: _maxpool_backward_kernel(
        dout[start:stop], argmax[start:stop], pool, stride, dx[start:stop]), dout.shape[0])
    return dx


maxpool_forward = pair(maxpool_forward_reference, maxpool_forward_numba)
maxpool_backward = pair(maxpool_backward_reference, maxpool_backward_numba)
