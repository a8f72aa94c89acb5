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
own slice of the output, so the parallel loops never race. They compile with
``error_model="numpy"``: no Python-style zero-division checks, which would
stop loops from vectorizing (no kernel here divides by anything that can be 0).
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


@njit(parallel=True, cache=True, error_model="numpy")
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


@njit(parallel=True, cache=True, error_model="numpy")
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
            dx[:, _window_slice(di, oh, stride), _window_slice(dj, ow, stride), :] += routed
    return dx


@njit(parallel=True, cache=True, error_model="numpy")
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


@njit(parallel=True, cache=True, error_model="numpy")
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


# --------------------------------------------------------------------------- fused bias, ReLU and dropout
# Used by minicnn.fused after max-pooling the raw convolution output: one pass instead of three.


def bias_relu_dropout_reference(pooled: np.ndarray, b: np.ndarray,
                                mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a = relu(pooled + b)`` and ``out = a * mask``, both of the shape of ``pooled`` (..., F)."""
    a = np.maximum(pooled + b, 0)
    return a * mask, a


@njit(parallel=True, cache=True, error_model="numpy")
def _bias_relu_dropout_kernel(pooled, b, mask, out, a):  # pragma: no cover - compiled
    rows, f = pooled.shape
    for r in prange(rows):
        for c in range(f):
            v = pooled[r, c] + b[c]
            v = v if v > 0 else 0.0
            a[r, c] = v
            out[r, c] = v * mask[r, c]


def bias_relu_dropout_numba(pooled: np.ndarray, b: np.ndarray,
                            mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numba version of :func:`bias_relu_dropout_reference`."""
    f = pooled.shape[-1]
    out, a = np.empty_like(pooled), np.empty_like(pooled)
    _bias_relu_dropout_kernel(pooled.reshape(-1, f), b, mask.reshape(-1, f),
                              out.reshape(-1, f), a.reshape(-1, f))
    return out, a


def relu_dropout_backward_reference(dout: np.ndarray, a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``d = dout * mask`` where ``a > 0``, else 0: dropout's then ReLU's backward, any shape."""
    return dout * mask * (a > 0)


@njit(parallel=True, cache=True, error_model="numpy")
def _relu_dropout_backward_kernel(dout, a, mask, d):  # pragma: no cover - compiled
    for i in prange(dout.shape[0]):
        d[i] = dout[i] * mask[i] if a[i] > 0 else 0.0


def relu_dropout_backward_numba(dout: np.ndarray, a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Numba version of :func:`relu_dropout_backward_reference`."""
    d = np.empty_like(dout)
    _relu_dropout_backward_kernel(dout.reshape(-1), a.reshape(-1), mask.reshape(-1), d.reshape(-1))
    return d


# --------------------------------------------------------------------------- convolution + max-pooling

DIRECT_MAX_WINDOW = 32
"""Windows of at most this many values (KH*KW*C) take the kernels specialised for small windows."""
# The fused Conv2D -> MaxPooling2D step (minicnn.fused) works on the convolution *without* its
# bias, ``xw``, pooled: ``pooled, argmax = maxpool(xw)``. ``W`` is the Keras kernel (KH, KW, C, F).


def _conv_geometry(x_shape: tuple, W_shape: tuple, stride: int, pads: tuple) -> tuple[int, int]:
    top, bottom, left, right = pads
    return (conv_output_size(x_shape[1], W_shape[0], stride, top, bottom),
            conv_output_size(x_shape[2], W_shape[1], stride, left, right))


def conv_pool_forward_reference(x: np.ndarray, W: np.ndarray, stride: int, pads: tuple,
                                pool: int, pool_stride: int) -> tuple[np.ndarray, np.ndarray]:
    """``maxpool(im2col(x) @ W)``: the pooled convolution without bias, and the pool's argmax.

    x: (N, H, W, C). Returns ``(pooled, argmax)`` of shape (N, PH, PW, F).
    """
    kh, kw, c, f = W.shape
    oh, ow = _conv_geometry(x.shape, W.shape, stride, pads)
    cols = im2col_reference(x, kh, kw, stride, pads)
    xw = (cols.reshape(-1, kh * kw * c) @ W.reshape(-1, f)).reshape(x.shape[0], oh, ow, f)
    return maxpool_forward_reference(xw, pool, pool_stride)


@njit(parallel=True, cache=True, error_model="numpy")
def _conv_pool_direct_kernel(x, W, stride, top, left, pool, pool_stride,
                             out, argmax):  # pragma: no cover - compiled
    n_total, ph, pw, f_total = out.shape
    _, h, w, c = x.shape
    kh, kw = W.shape[0], W.shape[1]
    for n in prange(n_total):
        acc = np.empty(f_total, dtype=out.dtype)
        for pi in range(ph):
            for pj in range(pw):
                for ai in range(pool):
                    for aj in range(pool):
                        i, j = pi * pool_stride + ai, pj * pool_stride + aj
                        acc[:] = 0.0
                        for di in range(kh):
                            r = i * stride + di - top
                            if r < 0 or r >= h:
                                continue
                            for dj in range(kw):
                                s = j * stride + dj - left
                                if s < 0 or s >= w:
                                    continue
                                for ch in range(c):
                                    v = x[n, r, s, ch]
                                    for f in range(f_total):
                                        acc[f] += v * W[di, dj, ch, f]
                        k = ai * pool + aj
                        for f in range(f_total):
                            if k == 0 or acc[f] > out[n, pi, pj, f]:
                                out[n, pi, pj, f] = acc[f]
                                argmax[n, pi, pj, f] = k


def conv_pool_forward_numba(x: np.ndarray, W: np.ndarray, stride: int, pads: tuple,
                            pool: int, pool_stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Numba version of :func:`conv_pool_forward_reference` as a direct convolution.

    No im2col matrix and no unpooled output are ever stored; this pays off when a
    window holds few values (``KH*KW*C`` small, as in a first layer on grey images).
    """
    oh, ow = _conv_geometry(x.shape, W.shape, stride, pads)
    ph = conv_output_size(oh, pool, pool_stride, 0, 0)
    pw = conv_output_size(ow, pool, pool_stride, 0, 0)
    out = np.empty((x.shape[0], ph, pw, W.shape[3]), dtype=x.dtype)
    argmax = np.empty(out.shape, dtype=np.uint8)
    _conv_pool_direct_kernel(np.ascontiguousarray(x), np.ascontiguousarray(W), stride, pads[0], pads[2],
                             pool, pool_stride, out, argmax)
    return out, argmax


def pooled_conv_backward_reference(d: np.ndarray, argmax: np.ndarray, x: np.ndarray, W: np.ndarray,
                                   stride: int, pads: tuple, pool: int, pool_stride: int,
                                   input_gradient: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Gradients of the pooled convolution: ``(dW, dx)`` from ``d`` = dL/dpooled.

    d, argmax: (N, PH, PW, F); x: (N, H, W, C). ``dz = maxpool_backward(d)``,
    then ``dW = cols.T @ dz`` and ``dx = col2im(dz @ W.T)`` (None unless ``input_gradient``).
    """
    kh, kw, c, f = W.shape
    oh, ow = _conv_geometry(x.shape, W.shape, stride, pads)
    dz = maxpool_backward_reference(d, argmax, (x.shape[0], oh, ow, f), pool, pool_stride).reshape(-1, f)
    cols = im2col_reference(x, kh, kw, stride, pads)
    dW = (cols.reshape(dz.shape[0], -1).T @ dz).reshape(W.shape)
    if not input_gradient:
        return dW, None
    dx = col2im_reference((dz @ W.reshape(-1, f).T).reshape(cols.shape), x.shape, stride, pads)
    return dW, dx


@njit(parallel=True, cache=True, error_model="numpy")
def _pooled_conv_backward_kernel(d, argmax, xp_rows, Wt_rows, c, stride, pool, pool_stride,
                                 dWt_parts, dxp_rows, input_gradient):  # pragma: no cover - compiled
    # Rows are flattened over (column, channel), so one kernel row of a window is one
    # contiguous run of KW*C values: xp_rows (N, HP, WP*C), Wt_rows (F, KH, KW*C).
    n_total, ph, pw, f_total = d.shape
    kh, run = Wt_rows.shape[1], Wt_rows.shape[2]
    chunks = dWt_parts.shape[0]
    per_chunk = (n_total + chunks - 1) // chunks
    for t in prange(chunks):
        dWt = dWt_parts[t]
        dWt[:] = 0.0
        for n in range(t * per_chunk, min(n_total, (t + 1) * per_chunk)):
            if input_gradient:
                dxp_rows[n] = 0.0
            for pi in range(ph):
                for pj in range(pw):
                    for f in range(f_total):
                        g = d[n, pi, pj, f]
                        if g == 0:  # dropped or inactive: worth a branch with KW*C values per row
                            continue
                        k = argmax[n, pi, pj, f]
                        r0 = (pi * pool_stride + k // pool) * stride
                        q0 = (pj * pool_stride + k % pool) * stride * c
                        for di in range(kh):
                            x_run = xp_rows[n, r0 + di, q0:q0 + run]
                            dW_run = dWt[f, di]
                            for q in range(run):
                                dW_run[q] += g * x_run[q]
                        if input_gradient:
                            for di in range(kh):
                                dx_run = dxp_rows[n, r0 + di, q0:q0 + run]
                                W_run = Wt_rows[f, di]
                                for q in range(run):
                                    dx_run[q] += g * W_run[q]


@njit(parallel=True, cache=True, error_model="numpy")
def _pooled_conv_backward_small_kernel(d, argmax, xp, W, stride, pool, pool_stride,
                                       dW_parts, dxp, input_gradient):  # pragma: no cover - compiled
    # For small windows: per pooled position, the gradients are sorted by window offset into
    # g_by_offset (POOL*POOL, F), and every update runs over the F filters, contiguous in W.
    n_total, ph, pw, f_total = d.shape
    kh, kw, c = W.shape[0], W.shape[1], W.shape[2]
    chunks = dW_parts.shape[0]
    per_chunk = (n_total + chunks - 1) // chunks
    for t in prange(chunks):
        dW = dW_parts[t]
        dW[:] = 0.0
        g_by_offset = np.empty((pool * pool, f_total), dtype=d.dtype)
        for n in range(t * per_chunk, min(n_total, (t + 1) * per_chunk)):
            if input_gradient:
                dxp[n] = 0.0
            for pi in range(ph):
                for pj in range(pw):
                    g_by_offset[:] = 0.0
                    for f in range(f_total):
                        g_by_offset[argmax[n, pi, pj, f], f] = d[n, pi, pj, f]
                    for k in range(pool * pool):
                        g = g_by_offset[k]
                        r0 = (pi * pool_stride + k // pool) * stride
                        s0 = (pj * pool_stride + k % pool) * stride
                        for di in range(kh):
                            for dj in range(kw):
                                for ch in range(c):
                                    xv = xp[n, r0 + di, s0 + dj, ch]
                                    dW_row = dW[di, dj, ch]
                                    for f in range(f_total):
                                        dW_row[f] += g[f] * xv
                                    if input_gradient:
                                        W_row = W[di, dj, ch]
                                        total = 0.0
                                        for f in range(f_total):
                                            total += g[f] * W_row[f]
                                        dxp[n, r0 + di, s0 + dj, ch] += total


def pooled_conv_backward_numba(d: np.ndarray, argmax: np.ndarray, x: np.ndarray, W: np.ndarray,
                               stride: int, pads: tuple, pool: int, pool_stride: int,
                               input_gradient: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Numba version of :func:`pooled_conv_backward_reference`.

    Only the window maxima carry gradient, so it loops over the pooled
    entries (a quarter of the convolution's outputs for 2x2 pools) instead of
    multiplying mostly-zero matrices, and skips the entries that dropout or
    ReLU zeroed. The batch is split into a fixed number
    of chunks, each with its own partial ``dW`` (summed at the end), so the
    result does not depend on how many threads run. Small windows
    (``KH*KW*C <= DIRECT_MAX_WINDOW``) loop over the filters innermost instead.
    """
    top, bottom, left, right = pads
    n, _, _, c = x.shape
    kh, kw, _, f = W.shape
    chunks = min(n, 16)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    if kh * kw * c <= DIRECT_MAX_WINDOW:
        dW_parts = np.empty((chunks, *W.shape), dtype=W.dtype)
        dxp = np.empty(xp.shape if input_gradient else (1, 1, 1, 1), dtype=x.dtype)
        _pooled_conv_backward_small_kernel(np.ascontiguousarray(d), argmax, xp, np.ascontiguousarray(W),
                                           stride, pool, pool_stride, dW_parts, dxp, input_gradient)
        dW = dW_parts.sum(axis=0)
        if not input_gradient:
            return dW, None
        return dW, dxp[:, top:top + x.shape[1], left:left + x.shape[2], :].copy()
    Wt = np.ascontiguousarray(W.transpose(3, 0, 1, 2))  # (F, KH, KW, C): one filter contiguous
    dWt_parts = np.empty((chunks, f, kh, kw * c), dtype=W.dtype)
    dxp = np.empty(xp.shape if input_gradient else (1, 1, 1, 1), dtype=x.dtype)
    _pooled_conv_backward_kernel(np.ascontiguousarray(d), argmax, xp.reshape(n, xp.shape[1], -1),
                                 Wt.reshape(f, kh, -1), c, stride, pool, pool_stride, dWt_parts,
                                 dxp.reshape(dxp.shape[0], dxp.shape[1], -1), input_gradient)
    dW = dWt_parts.sum(axis=0).reshape(f, kh, kw, c).transpose(1, 2, 3, 0).copy()
    if not input_gradient:
        return dW, None
    return dW, dxp[:, top:top + x.shape[1], left:left + x.shape[2], :].copy()


# --------------------------------------------------------------------------- Adam


def adam_update_reference(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
                          alpha: float, beta_1: float, beta_2: float, epsilon: float) -> None:
    """One Keras Adam step, in place on ``param``, ``m`` and ``v`` (all of one shape).

    ``alpha`` already holds the bias correction: ``lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)``.
    """
    f = param.dtype.type
    m += (grad - m) * f(1 - beta_1)
    v += (grad * grad - v) * f(1 - beta_2)
    param -= f(alpha) * m / (np.sqrt(v) + f(epsilon))


@njit(cache=True, error_model="numpy")  # no zero-division checks, so the loop vectorizes
def _adam_kernel(param, grad, m, v, alpha, one_minus_beta_1, one_minus_beta_2,
                 epsilon):  # pragma: no cover - compiled
    # Serial on purpose: waking the thread pool costs more than the update of one tensor.
    for i in range(param.shape[0]):
        g = grad[i]
        m[i] += (g - m[i]) * one_minus_beta_1
        v[i] += (g * g - v[i]) * one_minus_beta_2
        param[i] -= alpha * m[i] / (np.sqrt(v[i]) + epsilon)


def adam_update_numba(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
                      alpha: float, beta_1: float, beta_2: float, epsilon: float) -> None:
    """Numba version of :func:`adam_update_reference`: one pass instead of a dozen array temporaries."""
    f = param.dtype.type
    _adam_kernel(param.reshape(-1), np.ascontiguousarray(grad).reshape(-1), m.reshape(-1), v.reshape(-1),
                 f(alpha), f(1 - beta_1), f(1 - beta_2), f(epsilon))


def adam_update(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray,
                alpha: float, beta_1: float, beta_2: float, epsilon: float) -> None:
    """:func:`adam_update_reference` or :func:`adam_update_numba`, by the chosen backend."""
    impl = adam_update_numba if _backend == "numba" else adam_update_reference
    impl(param, grad, m, v, alpha, beta_1, beta_2, epsilon)
