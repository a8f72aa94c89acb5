"""Numba kernels of the fused Conv2D(relu) -> MaxPooling2D -> Dropout step (:mod:`minicnn.fused.conv_pool`).

They have no NumPy twins of their own: the step's reference is the three layers'
forward and backward passes, and ``tests/fused/test_conv_pool_kernels.py`` proves these kernels
equal to them.
``W`` is the Keras kernel (KH, KW, C, F); images are (N, H, W, C); ``pads = (top, bottom,
left, right)``. The step pools the convolution *without* its bias, ``xw = im2col(x) @ W``:
``pooled, argmax = maxpool(xw)``.
"""

from __future__ import annotations

import numpy as np

from minicnn.fused.small_window import conv_pool_backward_small, conv_pool_forward_small
from minicnn.fused.winograd import conv_pool_backward_winograd, conv_pool_forward_winograd
from minicnn.kernels import compiled, conv_output_size
from minicnn.kernels.im2col import im2col_on_threads
from minicnn.kernels.matmul import matmul
from minicnn.kernels.maxpool import maxpool_forward_into
from minicnn.threads import partials_of_runs

# --------------------------------------------------------------------------- bias, ReLU and dropout
# One thread on purpose: these passes move a few MB and one core already reaches the memory
# bandwidth, while a loop shared between threads ends at a barrier that waits for a thread another
# process may be holding up.


@compiled()
def _bias_relu_dropout_kernel(pooled, b, mask, out, a):  # pragma: no cover - compiled
    rows, f = pooled.shape
    for r in range(rows):
        for c in range(f):
            v = pooled[r, c] + b[c]
            v = v if v > 0 else 0.0
            a[r, c] = v
            out[r, c] = v * mask[r, c]


def bias_relu_dropout_numba(pooled: np.ndarray, b: np.ndarray,
                            mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numba version of ``a = relu(pooled + b)``, ``out = a * mask``: returns ``(out, a)``.

    ``a`` is written over ``pooled`` (C-contiguous, (N, PH, PW, F)), which the step no longer needs:
    one fresh array a step instead of two.
    """
    f = pooled.shape[-1]
    out = np.empty_like(pooled)
    rows = pooled.reshape(-1, f)
    _bias_relu_dropout_kernel(rows, b, mask.reshape(-1, f), out.reshape(-1, f), rows)
    return out, pooled


@compiled()
def _relu_dropout_backward_kernel(dout, a, mask, d, sums):  # pragma: no cover - compiled
    rows, f = dout.shape
    for r in range(rows):
        for c in range(f):
            d[r, c] = dout[r, c] * mask[r, c] if a[r, c] > 0 else 0.0
        for c in range(f):
            sums[c] += d[r, c]


def relu_dropout_backward_numba(dout: np.ndarray, a: np.ndarray,
                                mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numba version of ``d = dout * mask * (a > 0)`` and the bias's gradient ``d.sum(axis=(0, 1, 2))``,
    in one pass: returns ``(d, db)``, ``db`` summed in float64 row by row, in ``d``'s dtype."""
    f = dout.shape[-1]
    d = np.empty_like(dout)
    sums = np.zeros(f)
    _relu_dropout_backward_kernel(np.ascontiguousarray(dout).reshape(-1, f), a.reshape(-1, f),
                                  mask.reshape(-1, f), d.reshape(-1, f), sums)
    return d, sums.astype(d.dtype)


# --------------------------------------------------------------------------- convolution + max-pooling


SMALL_WINDOW = 32
"""Windows of at most this many values (KH*KW*C) take the kernels written for small windows."""


def _conv_geometry(x_shape: tuple, W_shape: tuple, stride: int, pads: tuple) -> tuple[int, int]:
    top, bottom, left, right = pads
    return (conv_output_size(x_shape[1], W_shape[0], stride, top, bottom),
            conv_output_size(x_shape[2], W_shape[1], stride, left, right))


def conv_pool_forward_numba(x: np.ndarray, W: np.ndarray, stride: int, pads: tuple,
                            pool: int, pool_stride: int) -> tuple[np.ndarray, np.ndarray]:
    """``pooled, argmax = maxpool(xw)`` for the bias-free convolution ``xw = im2col(x) @ W``.

    x: (N, H, W, C), W: (KH, KW, C, F). Returns ``pooled`` of shape (N, PH, PW, F) and
    the pool's ``argmax`` (uint8, the winner's offset ``di * pool + dj`` in its window).
    Small windows (``KH*KW*C <= SMALL_WINDOW``, a first layer on grey images) run as a
    direct convolution that never stores the im2col matrix or the unpooled output:
    per image, the input is split into phase planes (:mod:`minicnn.fused.small_window`) so that
    each tap of each window offset is one long contiguous SIMD loop, 4 filters and 3
    taps at a time (a 9-value window is too short a loop; filters innermost kept 32
    accumulators in memory). Its sums run over the taps in order, as a plain loop does.
    Larger 3x3 stride-1 windows with 2x2 pools of stride 2 (the second layer) run as
    Winograd F(2x2, 3x3) (:mod:`minicnn.fused.winograd`), 2.25x fewer multiplications;
    other large ones as im2col, a BLAS product and max-pooling, a block of images at a
    time (:func:`conv_pool_forward_blocked`).
    """
    kh, kw, c, f = W.shape
    if kh * kw * c > SMALL_WINDOW:
        if (kh, kw, stride, pool, pool_stride) == (3, 3, 1, 2, 2):
            return conv_pool_forward_winograd(x, W, pads, pool, pool_stride)
        return conv_pool_forward_blocked(x, W, stride, pads, pool, pool_stride)
    oh, ow = _conv_geometry(x.shape, W.shape, stride, pads)
    ph, pw = conv_output_size(oh, pool, pool_stride), conv_output_size(ow, pool, pool_stride)
    return conv_pool_forward_small(x, W, stride, pads, pool, pool_stride, ph, pw)


BLOCK_BYTES = 4 * 2**20
"""Size of one block's im2col matrix in :func:`conv_pool_forward_blocked`: within a core's L2
plus its share of L3 on current x86 CPUs, and large enough for BLAS to run at full speed."""


def images_per_block(oh: int, ow: int, window: int, itemsize: int) -> int:
    """Images whose im2col rows (OH*OW rows of ``window`` values) fit in ``BLOCK_BYTES``; at least 1."""
    return max(1, BLOCK_BYTES // (oh * ow * window * itemsize))


def conv_pool_forward_blocked(x: np.ndarray, W: np.ndarray, stride: int, pads: tuple,
                              pool: int, pool_stride: int) -> tuple[np.ndarray, np.ndarray]:
    """``maxpool(im2col(x) @ W)`` a block of images at a time, so the im2col matrix stays in cache.

    At batch 128 the second convolution of the MNIST model has a (25088, 288) im2col
    matrix: 29 MB, larger than any per-core cache, written to memory and read back by
    the product, whose (25088, 64) result goes through memory once more on its way to
    the pooling. Block by block (``BLOCK_BYTES`` of im2col rows, 16 images here), in
    buffers reused from block to block, all of it stays in the caches::

        for each block of images:
            cols = im2col(x[block]);  xw = cols @ W   # BLAS, in fixed row blocks (matmul)
            pooled[block], argmax[block] = maxpool(xw)

    The products and maxima are those of the whole batch at once. x: (N, H, W, C),
    W: (KH, KW, C, F); returns ``(pooled, argmax)`` of shape (N, PH, PW, F).
    """
    top, _, left, _ = pads
    n = x.shape[0]
    kh, kw, c, f = W.shape
    oh, ow = _conv_geometry(x.shape, W.shape, stride, pads)
    ph, pw = conv_output_size(oh, pool, pool_stride), conv_output_size(ow, pool, pool_stride)
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
        im2col_on_threads(x[start:stop], kh, kw, stride, stride, top, left, cols[:b])
        matmul(cols[:b].reshape(b * oh * ow, -1), Wm, out=xw[:b].reshape(b * oh * ow, f))
        maxpool_forward_into(xw[:b], pool, pool_stride, pooled[start:stop], argmax[start:stop])
    return pooled, argmax


@compiled()
def _conv_pool_backward_kernel(d, argmax, xp_rows, Wt_rows, c, stride, pool, pool_stride,
                               dWt, dxp_rows, input_gradient):  # pragma: no cover - compiled
    # Rows are flattened over (column, channel), so one kernel row of a window is one
    # contiguous run of KW*C values: xp_rows (N, HP, WP*C), Wt_rows (F, KH, KW*C). dWt is the
    # run's share of the gradient (F, KH, KW*C).
    n_total, ph, pw, f_total = d.shape
    kh, run = Wt_rows.shape[1], Wt_rows.shape[2]
    for n in range(n_total):
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


def conv_pool_backward_numba(d: np.ndarray, argmax: np.ndarray, x: np.ndarray, W: np.ndarray,
                             stride: int, pads: tuple, pool: int, pool_stride: int,
                             input_gradient: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """``(dW, dx)`` of the pooled convolution from ``d`` = dL/dpooled, (N, PH, PW, F).

    The same numbers as ``MaxPooling2D.backward`` then ``Conv2D.backward_affine_pass``
    (``dz = maxpool_backward(d)``, ``dW = cols.T @ dz``, ``dx = col2im(dz @ W.T)``);
    ``dx`` is None unless ``input_gradient``.

    Only the window maxima carry gradient, so it loops over the pooled
    entries (a quarter of the convolution's outputs for 2x2 pools) instead of
    multiplying mostly-zero matrices, and skips the entries that dropout or
    ReLU zeroed. The batch is split into fixed runs of images, each with
    its own partial ``dW`` (:func:`minicnn.threads.partials_of_runs`, summed at the
    end), so the result does not depend on how many threads run. Small windows
    (``KH*KW*C <= SMALL_WINDOW``) work on the forward's phase planes instead
    (:mod:`minicnn.fused.small_window`): per image, the gradients at each window offset
    form planes (zero where another offset won), and each ``dW`` entry is a sum of
    such a plane times a shifted phase plane of x, contiguous SIMD loops over all
    positions where a loop per winner would run over 9 values.
    Where the forward runs Winograd (larger 3x3 stride-1 windows, 2x2 pools of
    stride 2), the backward runs through Winograd's transforms
    (:func:`minicnn.fused.winograd.conv_pool_backward_winograd`), its products as BLAS calls.
    """
    top, bottom, left, right = pads
    n, _, _, c = x.shape
    kh, kw, _, f = W.shape
    if kh * kw * c > SMALL_WINDOW and (kh, kw, stride, pool, pool_stride) == (3, 3, 1, 2, 2):
        return conv_pool_backward_winograd(d, argmax, x, W, pads, pool, pool_stride, input_gradient)
    if kh * kw * c <= SMALL_WINDOW:
        return conv_pool_backward_small(d, argmax, x, W, stride, pads, pool, pool_stride, input_gradient)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    xp_rows = xp.reshape(n, xp.shape[1], -1)
    Wt_rows = np.ascontiguousarray(W.transpose(3, 0, 1, 2)).reshape(f, kh, -1)  # one filter contiguous
    dxp = np.empty(xp.shape if input_gradient else (1, 1, 1, 1), dtype=x.dtype)
    dxp_rows = dxp.reshape(dxp.shape[0], dxp.shape[1], -1)
    d = np.ascontiguousarray(d)
    dWt_parts = partials_of_runs(lambda start, stop, dWt: _conv_pool_backward_kernel(
        d[start:stop], argmax[start:stop], xp_rows[start:stop], Wt_rows, c, stride, pool, pool_stride, dWt,
        dxp_rows[start:stop] if input_gradient else dxp_rows, input_gradient), n, (f, kh, kw * c), W.dtype)
    dW = dWt_parts.sum(axis=0).reshape(f, kh, kw, c).transpose(1, 2, 3, 0).copy()
    if not input_gradient:
        return dW, None
    return dW, dxp[:, top:top + x.shape[1], left:left + x.shape[2], :].copy()
