"""The hot loops of convolution and max-pooling, each written twice.

Every kernel exists as a plain NumPy *reference* (``*_reference``), written to be
read next to ``docs/backprop.md``, and as a Numba-compiled *fast path*
(``*_numba``) that computes the same numbers. ``tests/test_kernels.py`` proves
that each pair agrees on random shapes. The layers call the dispatching
functions (``im2col``, ``col2im``, ``maxpool_forward``, ``maxpool_backward``),
which use the backend chosen with :func:`set_backend` (or the environment
variable ``MINICNN_KERNELS=numpy|numba``; Numba by default).

Layout is NHWC throughout: images are arrays of shape ``(N, H, W, C)``.
Padding is given as ``pads = (top, bottom, left, right)``.

The Numba kernels are compiled on first use and cached on disk
(``cache=True``), so only the first run on a machine pays for compilation.
Each kernel loops over the batch with ``prange``; every sample writes only its
own slice of the output, so the parallel loops never race.
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit, prange

BACKENDS = ("numba", "numpy")
_backend = os.environ.get("MINICNN_KERNELS", "numba")
if _backend not in BACKENDS:
    raise ValueError(f"MINICNN_KERNELS must be one of {BACKENDS}; got {_backend!r}")


def set_backend(name: str) -> None:
    """Choose the kernels the layers use: ``"numba"`` (fast) or ``"numpy"`` (reference)."""
    global _backend
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {name!r}")
    _backend = name


def get_backend() -> str:
    """Return the name of the kernels the layers use now."""
    return _backend


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int) -> int:
    """Length of one spatial axis after a convolution or pooling window slides over it."""
    return (size + pad_before + pad_after - kernel) // stride + 1


def _window_slice(start: int, count: int, stride: int) -> slice:
    """The positions ``start, start + stride, ...`` (``count`` of them) as a slice."""
    return slice(start, start + stride * (count - 1) + 1, stride)


# --------------------------------------------------------------------------- im2col


def im2col_reference(x: np.ndarray, kh: int, kw: int, stride: int, pads: tuple) -> np.ndarray:
    """Unfold every receptive field of ``x`` into a row.

    x: array of shape (N, H, W, C).
    Returns ``cols`` of shape (N, OH, OW, KH, KW, C): ``cols[n, i, j]`` is the
    (zero-padded) window under output pixel ``(i, j)``. Reshaped to
    ``(N*OH*OW, KH*KW*C)`` it multiplies a Keras kernel reshaped to
    ``(KH*KW*C, F)``.
    """
    top, bottom, left, right = pads
    n, h, w, c = x.shape
    oh = conv_output_size(h, kh, stride, top, bottom)
    ow = conv_output_size(w, kw, stride, left, right)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for di in range(kh):
        for dj in range(kw):
            cols[:, :, :, di, dj, :] = xp[:, _window_slice(di, oh, stride), _window_slice(dj, ow, stride), :]
    return cols


@njit(parallel=True, cache=True)
def _im2col_kernel(x, kh, kw, stride, top, left, cols):  # pragma: no cover - compiled
    n, h, w, c = x.shape
    oh, ow = cols.shape[1], cols.shape[2]
    for b in prange(n):
        for i in range(oh):
            for j in range(ow):
                for di in range(kh):
                    r = i * stride + di - top
                    for dj in range(kw):
                        s = j * stride + dj - left
                        inside = 0 <= r < h and 0 <= s < w
                        for ch in range(c):
                            cols[b, i, j, di, dj, ch] = x[b, r, s, ch] if inside else 0.0


def im2col_numba(x: np.ndarray, kh: int, kw: int, stride: int, pads: tuple) -> np.ndarray:
    """Numba version of :func:`im2col_reference` (padding done inside the loop, no padded copy)."""
    top, bottom, left, right = pads
    n, h, w, c = x.shape
    oh = conv_output_size(h, kh, stride, top, bottom)
    ow = conv_output_size(w, kw, stride, left, right)
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    _im2col_kernel(np.ascontiguousarray(x), kh, kw, stride, top, left, cols)
    return cols


# --------------------------------------------------------------------------- col2im


def col2im_reference(dcols: np.ndarray, x_shape: tuple, stride: int, pads: tuple) -> np.ndarray:
    """Fold row gradients back onto the image: the adjoint of :func:`im2col_reference`.

    dcols: array of shape (N, OH, OW, KH, KW, C), the gradient of the loss with
    respect to ``cols``. Returns ``dx`` of shape ``x_shape`` = (N, H, W, C):
    every input pixel receives the sum of the gradients of all the windows it
    appeared in; gradients that fall on the padding are dropped.
    """
    top, bottom, left, right = pads
    n, h, w, c = x_shape
    _, oh, ow, kh, kw, _ = dcols.shape
    dxp = np.zeros((n, h + top + bottom, w + left + right, c), dtype=dcols.dtype)
    for di in range(kh):
        for dj in range(kw):
            dxp[:, _window_slice(di, oh, stride), _window_slice(dj, ow, stride), :] += (
                dcols[:, :, :, di, dj, :]
            )
    return dxp[:, top : top + h, left : left + w, :]


@njit(parallel=True, cache=True)
def _col2im_kernel(dcols, stride, top, left, dx):  # pragma: no cover - compiled
    n, h, w, c = dx.shape
    oh, ow, kh, kw = dcols.shape[1], dcols.shape[2], dcols.shape[3], dcols.shape[4]
    for b in prange(n):
        dx[b] = 0.0
        for i in range(oh):
            for j in range(ow):
                for di in range(kh):
                    r = i * stride + di - top
                    if r < 0 or r >= h:
                        continue
                    for dj in range(kw):
                        s = j * stride + dj - left
                        if s < 0 or s >= w:
                            continue
                        for ch in range(c):
                            dx[b, r, s, ch] += dcols[b, i, j, di, dj, ch]


def col2im_numba(dcols: np.ndarray, x_shape: tuple, stride: int, pads: tuple) -> np.ndarray:
    """Numba version of :func:`col2im_reference`: a per-sample scatter-add, never ``np.add.at``."""
    dx = np.empty(x_shape, dtype=dcols.dtype)
    _col2im_kernel(np.ascontiguousarray(dcols), stride, pads[0], pads[2], dx)
    return dx


# --------------------------------------------------------------------------- max-pooling


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
            window = x[:, _window_slice(di, oh, stride), _window_slice(dj, ow, stride), :]
            better = window > out
            out[better] = window[better]
            argmax[better] = di * pool + dj
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
            dx[:, _window_slice(di, oh, stride), _window_slice(dj, ow, stride), :] += routed
    return dx


@njit(parallel=True, cache=True)
def _maxpool_forward_kernel(x, pool, stride, out, argmax):  # pragma: no cover - compiled
    n, oh, ow, c = out.shape
    for b in prange(n):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    best = x[b, i * stride, j * stride, ch]
                    best_k = 0
                    for di in range(pool):
                        for dj in range(pool):
                            v = x[b, i * stride + di, j * stride + dj, ch]
                            if v > best:
                                best = v
                                best_k = di * pool + dj
                    out[b, i, j, ch] = best
                    argmax[b, i, j, ch] = best_k


def maxpool_forward_numba(x: np.ndarray, pool: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Numba version of :func:`maxpool_forward_reference`."""
    n, h, w, c = x.shape
    oh = conv_output_size(h, pool, stride, 0, 0)
    ow = conv_output_size(w, pool, stride, 0, 0)
    out = np.empty((n, oh, ow, c), dtype=x.dtype)
    argmax = np.empty((n, oh, ow, c), dtype=np.uint8)
    _maxpool_forward_kernel(np.ascontiguousarray(x), pool, stride, out, argmax)
    return out, argmax


@njit(parallel=True, cache=True)
def _maxpool_backward_kernel(dout, argmax, pool, stride, dx):  # pragma: no cover - compiled
    n, oh, ow, c = dout.shape
    for b in prange(n):
        dx[b] = 0.0
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    k = argmax[b, i, j, ch]
                    dx[b, i * stride + k // pool, j * stride + k % pool, ch] += dout[b, i, j, ch]


def maxpool_backward_numba(
    dout: np.ndarray, argmax: np.ndarray, x_shape: tuple, pool: int, stride: int
) -> np.ndarray:
    """Numba version of :func:`maxpool_backward_reference`."""
    dx = np.empty(x_shape, dtype=dout.dtype)
    _maxpool_backward_kernel(np.ascontiguousarray(dout), argmax, pool, stride, dx)
    return dx


# --------------------------------------------------------------------------- dispatch


def im2col(x: np.ndarray, kh: int, kw: int, stride: int, pads: tuple) -> np.ndarray:
    """:func:`im2col_reference` or :func:`im2col_numba`, by the chosen backend."""
    impl = im2col_numba if _backend == "numba" else im2col_reference
    return impl(x, kh, kw, stride, pads)


def col2im(dcols: np.ndarray, x_shape: tuple, stride: int, pads: tuple) -> np.ndarray:
    """:func:`col2im_reference` or :func:`col2im_numba`, by the chosen backend."""
    impl = col2im_numba if _backend == "numba" else col2im_reference
    return impl(dcols, x_shape, stride, pads)


def maxpool_forward(x: np.ndarray, pool: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`maxpool_forward_reference` or :func:`maxpool_forward_numba`, by the chosen backend."""
    impl = maxpool_forward_numba if _backend == "numba" else maxpool_forward_reference
    return impl(x, pool, stride)


def maxpool_backward(
    dout: np.ndarray, argmax: np.ndarray, x_shape: tuple, pool: int, stride: int
) -> np.ndarray:
    """:func:`maxpool_backward_reference` or :func:`maxpool_backward_numba`, by the chosen backend."""
    impl = maxpool_backward_numba if _backend == "numba" else maxpool_backward_reference
    return impl(dout, argmax, x_shape, pool, stride)
