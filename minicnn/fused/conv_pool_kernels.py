"""Numba kernels of the fused Conv2D(relu) -> MaxPooling2D -> Dropout step (:mod:`minicnn.fused.conv_pool`).

They have no NumPy twins of their own: the step's reference is the three layers'
forward and backward passes, and ``tests/test_fused.py`` proves these kernels equal to them.
``W`` is the Keras kernel (KH, KW, C, F); images are (N, H, W, C); ``pads = (top, bottom,
left, right)``. The step pools the convolution *without* its bias, ``xw = im2col(x) @ W``:
``pooled, argmax = maxpool(xw)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import prange

from minicnn.fused.scheduling import one_image_at_a_time
from minicnn.fused.winograd import conv_pool_backward_winograd, conv_pool_forward_winograd
from minicnn.kernels import compiled, conv_output_size
from minicnn.kernels.im2col import _im2col_kernel
from minicnn.kernels.maxpool import _maxpool_forward_kernel

# --------------------------------------------------------------------------- bias, ReLU and dropout
# One thread on purpose: these passes move a few MB and one core already reaches the memory
# bandwidth, while a parallel loop ends at a barrier that waits for a thread another process
# may be holding up. (They also compile in a fraction of a parallel kernel's time.)


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
    """Numba version of ``relu(pooled + b) * mask``."""
    f = pooled.shape[-1]
    out, a = np.empty_like(pooled), np.empty_like(pooled)
    _bias_relu_dropout_kernel(pooled.reshape(-1, f), b, mask.reshape(-1, f),
                              out.reshape(-1, f), a.reshape(-1, f))
    return out, a


@compiled()
def _relu_dropout_backward_kernel(dout, a, mask, d):  # pragma: no cover - compiled
    for i in range(dout.shape[0]):
        d[i] = dout[i] * mask[i] if a[i] > 0 else 0.0


def relu_dropout_backward_numba(dout: np.ndarray, a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Numba version of ``dout * mask * (a > 0)``."""
    d = np.empty_like(dout)
    _relu_dropout_backward_kernel(dout.reshape(-1), a.reshape(-1), mask.reshape(-1), d.reshape(-1))
    return d


# --------------------------------------------------------------------------- convolution + max-pooling


SMALL_WINDOW = 32
"""Windows of at most this many values (KH*KW*C) take the kernels written for small windows."""


def _conv_geometry(x_shape: tuple, W_shape: tuple, stride: int, pads: tuple) -> tuple[int, int]:
    top, bottom, left, right = pads
    return (conv_output_size(x_shape[1], W_shape[0], stride, top, bottom),
            conv_output_size(x_shape[2], W_shape[1], stride, left, right))


TAPS_PER_PASS, FILTERS_PER_PASS = 3, 4
"""The small-window kernels go over a plane once per 3 taps and 4 filters (their loops are
written for these two numbers): each loaded input value serves 4 filters, each accumulator
is loaded and stored once per 3 taps."""


class SmallWindowPlan(NamedTuple):
    """How the small-window kernels read one image: phase planes, taps and padded weights.

    With ``STEP = stride * pool_stride``, phase plane ``(ch, a, b)`` holds the zero-padded
    image's rows ``a, a + STEP, ...`` and columns ``b, b + STEP, ...`` of channel ``ch``,
    row-major with row length WQ; one more plane is all zeros. Then the convolution at
    window offset ``k = (ai, aj)`` of every pooled position ``(pi, pj)``, flattened to
    ``p = pi * WQ + pj``, is for each tap ``t = (di, dj, ch)``
    ``W[t] * planes[plane[k, t], shift[k, t] + p]``: a constant shift of one plane, so
    each tap is one contiguous SIMD loop over ``PH * WQ`` positions (columns ``pj >= PW``
    are padding, computed and never read).
    """

    hq: int  # rows of a phase plane
    wq: int  # columns of a phase plane
    plane: np.ndarray  # (POOL*POOL, T): phase plane of window offset k and tap t
    shift: np.ndarray  # (POOL*POOL, T): its flat shift
    weights: np.ndarray  # (T, F'): W as (KH*KW*C, F), zero rows and columns up to T, F'


def small_window_plan(W: np.ndarray, stride: int, pool: int, pool_stride: int,
                      ph: int, pw: int) -> SmallWindowPlan:
    """The plan for kernel W (KH, KW, C, F) on pooled outputs (PH, PW).

    Taps are padded with zero-weight taps on the zero plane up to T, a multiple of
    ``TAPS_PER_PASS``, filters with zero filters up to F', a multiple of ``FILTERS_PER_PASS``.
    A window offset and tap reach at most ``(pool - 1) * stride + K - 1`` padded rows
    (columns) past a pooled position's first; WQ leaves that many // STEP columns after the
    PW used ones and HQ one more row, so the flat loops stay inside the planes.
    """
    kh, kw, c, f = W.shape
    step = stride * pool_stride
    hq = ph + ((pool - 1) * stride + kh - 1) // step + 1
    wq = pw + ((pool - 1) * stride + kw - 1) // step
    taps = -(-kh * kw * c // TAPS_PER_PASS) * TAPS_PER_PASS
    plane = np.full((pool * pool, taps), c * step * step, dtype=np.int64)
    shift = np.zeros((pool * pool, taps), dtype=np.int64)
    for k in range(pool * pool):
        for t, (di, dj, ch) in enumerate(np.ndindex(kh, kw, c)):
            r, s = (k // pool) * stride + di, (k % pool) * stride + dj
            plane[k, t] = (ch * step + r % step) * step + s % step
            shift[k, t] = (r // step) * wq + s // step
    weights = np.zeros((taps, -(-f // FILTERS_PER_PASS) * FILTERS_PER_PASS), dtype=W.dtype)
    weights[:kh * kw * c, :f] = W.reshape(-1, f)
    return SmallWindowPlan(hq, wq, plane, shift, weights)


@compiled()
def _phase_planes(x, step, top, left, hq, wq):  # pragma: no cover - compiled
    # One image x (H, W, C) -> planes (C*STEP*STEP + 1, HQ*WQ), see SmallWindowPlan.
    h, w, c = x.shape
    planes = np.zeros((c * step * step + 1, hq * wq), dtype=x.dtype)
    for a in range(step):
        for b in range(step):
            for u in range(hq):
                r = u * step + a - top
                if r < 0 or r >= h:
                    continue
                for v in range(wq):
                    s = v * step + b - left
                    if 0 <= s < w:
                        for ch in range(c):
                            planes[(ch * step + a) * step + b, u * wq + v] = x[r, s, ch]
    return planes


@compiled()
def _correlate(planes, plane, shift, weights, f0, y):  # pragma: no cover - compiled
    # y (4, size) = the convolution of filters f0..f0+3 at one window offset, its (T,) taps
    # `plane` and `shift` summed in order (as a plain loop over taps would), 3 taps per pass.
    size = y.shape[1]
    y0, y1, y2, y3 = y[0], y[1], y[2], y[3]
    for t in range(0, plane.shape[0], 3):
        u = planes[plane[t], shift[t]:shift[t] + size]
        v = planes[plane[t + 1], shift[t + 1]:shift[t + 1] + size]
        w = planes[plane[t + 2], shift[t + 2]:shift[t + 2] + size]
        wu, wv, ww = weights[t, f0:f0 + 4], weights[t + 1, f0:f0 + 4], weights[t + 2, f0:f0 + 4]
        a0, a1, a2, a3 = wu[0], wu[1], wu[2], wu[3]
        b0, b1, b2, b3 = wv[0], wv[1], wv[2], wv[3]
        c0, c1, c2, c3 = ww[0], ww[1], ww[2], ww[3]
        if t == 0:
            for p in range(size):
                y0[p] = (a0 * u[p] + b0 * v[p]) + c0 * w[p]
                y1[p] = (a1 * u[p] + b1 * v[p]) + c1 * w[p]
                y2[p] = (a2 * u[p] + b2 * v[p]) + c2 * w[p]
                y3[p] = (a3 * u[p] + b3 * v[p]) + c3 * w[p]
        else:
            for p in range(size):
                y0[p] = ((y0[p] + a0 * u[p]) + b0 * v[p]) + c0 * w[p]
                y1[p] = ((y1[p] + a1 * u[p]) + b1 * v[p]) + c1 * w[p]
                y2[p] = ((y2[p] + a2 * u[p]) + b2 * v[p]) + c2 * w[p]
                y3[p] = ((y3[p] + a3 * u[p]) + b3 * v[p]) + c3 * w[p]


@compiled(parallel=True)
def _conv_pool_forward_small_kernel(x, plane, shift, weights, step, top, left, hq, wq,
                                    out, argmax):  # pragma: no cover - compiled
    # Per image: the phase planes; per 4 filters and window offset k, the convolution planes
    # y (4, PH*WQ) (_correlate), folded into the running maxima (first maximum wins), which
    # are then written out (F', PH*WQ) -> (PH, PW, F).
    n_total, ph, pw, f_total = out.shape
    offsets, filters = plane.shape[0], weights.shape[1]
    size = ph * wq
    for n in prange(n_total):
        planes = _phase_planes(x[n], step, top, left, hq, wq)
        y = np.empty((4, size), dtype=out.dtype)
        best = np.empty((filters, size), dtype=out.dtype)
        arg = np.empty((filters, size), dtype=np.uint8)
        for f0 in range(0, filters, 4):
            _correlate(planes, plane[0], shift[0], weights, f0, best[f0:f0 + 4])
            arg[f0:f0 + 4] = 0
            for k in range(1, offsets):
                _correlate(planes, plane[k], shift[k], weights, f0, y)
                for g in range(4):
                    for p in range(size):
                        if y[g, p] > best[f0 + g, p]:
                            best[f0 + g, p] = y[g, p]
                            arg[f0 + g, p] = k
        for pi in range(ph):
            for pj in range(pw):
                for f in range(f_total):
                    out[n, pi, pj, f] = best[f, pi * wq + pj]
                    argmax[n, pi, pj, f] = arg[f, pi * wq + pj]


@one_image_at_a_time
def conv_pool_forward_numba(x: np.ndarray, W: np.ndarray, stride: int, pads: tuple,
                            pool: int, pool_stride: int) -> tuple[np.ndarray, np.ndarray]:
    """``pooled, argmax = maxpool(xw)`` for the bias-free convolution ``xw = im2col(x) @ W``.

    x: (N, H, W, C), W: (KH, KW, C, F). Returns ``pooled`` of shape (N, PH, PW, F) and
    the pool's ``argmax`` (uint8, the winner's offset ``di * pool + dj`` in its window).
    Small windows (``KH*KW*C <= SMALL_WINDOW``, a first layer on grey images) run as a
    direct convolution that never stores the im2col matrix or the unpooled output:
    per image, the input is split into phase planes (:class:`SmallWindowPlan`) so that
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
    ph = conv_output_size(oh, pool, pool_stride)
    pw = conv_output_size(ow, pool, pool_stride)
    out = np.empty((x.shape[0], ph, pw, f), dtype=x.dtype)
    argmax = np.empty(out.shape, dtype=np.uint8)
    plan = small_window_plan(W, stride, pool, pool_stride, ph, pw)
    _conv_pool_forward_small_kernel(np.ascontiguousarray(x), plan.plane, plan.shift, plan.weights,
                                    stride * pool_stride, pads[0], pads[2], plan.hq, plan.wq, out, argmax)
    return out, argmax


BLOCK_BYTES = 4 * 2**20
"""Size of one block's im2col matrix in :func:`conv_pool_forward_blocked`: within a core's L2
plus its share of L3 on current x86 CPUs, and large enough for BLAS to run at full speed."""


def images_per_block(oh: int, ow: int, window: int, itemsize: int) -> int:
    """Images whose im2col rows (OH*OW rows of ``window`` values) fit in ``BLOCK_BYTES``; at least 1."""
    return max(1, BLOCK_BYTES // (oh * ow * window * itemsize))


@one_image_at_a_time
def conv_pool_forward_blocked(x: np.ndarray, W: np.ndarray, stride: int, pads: tuple,
                              pool: int, pool_stride: int) -> tuple[np.ndarray, np.ndarray]:
    """``maxpool(im2col(x) @ W)`` a block of images at a time, so the im2col matrix stays in cache.

    At batch 128 the second convolution of the MNIST model has a (25088, 288) im2col
    matrix: 29 MB, larger than any per-core cache, written to memory and read back by
    the product, whose (25088, 64) result goes through memory once more on its way to
    the pooling. Block by block (``BLOCK_BYTES`` of im2col rows, 16 images here), in
    buffers reused from block to block, all of it stays in the caches::

        for each block of images:
            cols = im2col(x[block]);  xw = cols @ W   # BLAS
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
        _im2col_kernel(x[start:stop], kh, kw, stride, stride, top, left, cols[:b])
        np.matmul(cols[:b].reshape(b * oh * ow, -1), Wm, out=xw[:b].reshape(b * oh * ow, f))
        _maxpool_forward_kernel(xw[:b], pool, pool_stride, pooled[start:stop], argmax[start:stop])
    return pooled, argmax


@compiled(parallel=True)
def _conv_pool_backward_kernel(d, argmax, xp_rows, Wt_rows, c, stride, pool, pool_stride,
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


@compiled()
def _gradient_planes(d, argmax, wq, g):  # pragma: no cover - compiled
    # One image's d, argmax (PH, PW, F) -> g (POOL*POOL, F', PH*WQ): d at its winner's window
    # offset k and position p = pi * WQ + pj, 0 elsewhere (as the forward's planes y).
    ph, pw, f_total = d.shape
    g[:] = 0.0
    for pi in range(ph):
        for pj in range(pw):
            for f in range(f_total):
                g[argmax[pi, pj, f], f, pi * wq + pj] = d[pi, pj, f]


@compiled(reassociate=True)
def _correlate_gradient(planes, plane, shift, g, f0, dW):  # pragma: no cover - compiled
    # dW (T, F') += for filters f0..f0+3 and each of one window offset's (T,) taps: the sum over
    # positions p of g[f, p] * planes[plane[t], shift[t] + p], 3 taps per pass.
    size = g.shape[1]
    g0, g1, g2, g3 = g[f0], g[f0 + 1], g[f0 + 2], g[f0 + 3]
    for t in range(0, plane.shape[0], 3):
        u = planes[plane[t], shift[t]:shift[t] + size]
        v = planes[plane[t + 1], shift[t + 1]:shift[t + 1] + size]
        w = planes[plane[t + 2], shift[t + 2]:shift[t + 2] + size]
        a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = c0 = c1 = c2 = c3 = g.dtype.type(0)
        for p in range(size):
            a0 += g0[p] * u[p]
            a1 += g1[p] * u[p]
            a2 += g2[p] * u[p]
            a3 += g3[p] * u[p]
            b0 += g0[p] * v[p]
            b1 += g1[p] * v[p]
            b2 += g2[p] * v[p]
            b3 += g3[p] * v[p]
            c0 += g0[p] * w[p]
            c1 += g1[p] * w[p]
            c2 += g2[p] * w[p]
            c3 += g3[p] * w[p]
        dW[t, f0] += a0
        dW[t, f0 + 1] += a1
        dW[t, f0 + 2] += a2
        dW[t, f0 + 3] += a3
        dW[t + 1, f0] += b0
        dW[t + 1, f0 + 1] += b1
        dW[t + 1, f0 + 2] += b2
        dW[t + 1, f0 + 3] += b3
        dW[t + 2, f0] += c0
        dW[t + 2, f0 + 1] += c1
        dW[t + 2, f0 + 2] += c2
        dW[t + 2, f0 + 3] += c3


@compiled()
def _spread_gradient(g, plane, shift, weights, dplanes):  # pragma: no cover - compiled
    # The input gradient in phase planes: for each of one window offset's taps t,
    # dplanes[plane[t], shift[t] + p] += sum over filters f of weights[t, f] * g[f, p].
    size = g.shape[1]
    for t in range(plane.shape[0]):
        dst = dplanes[plane[t], shift[t]:shift[t] + size]
        for f in range(weights.shape[1]):
            wv = weights[t, f]
            gf = g[f]
            for p in range(size):
                dst[p] += wv * gf[p]


@compiled()
def _from_phase_planes(dplanes, step, top, left, hq, wq, dx):  # pragma: no cover - compiled
    # The inverse of _phase_planes for one image: dx (H, W, C) from planes (C*STEP*STEP + 1, HQ*WQ);
    # pixels no plane holds (past the last window any position reads) get 0.
    h, w, c = dx.shape
    for r in range(h):
        u, a = divmod(r + top, step)
        for s in range(w):
            v, b = divmod(s + left, step)
            for ch in range(c):
                inside = u < hq and v < wq
                dx[r, s, ch] = dplanes[(ch * step + a) * step + b, u * wq + v] if inside else 0.0


@compiled(parallel=True)
def _conv_pool_backward_small_kernel(d, argmax, x, plane, shift, weights, step, top, left, hq, wq,
                                     dW_parts, dx, input_gradient):  # pragma: no cover - compiled
    # Per image: the phase planes of x and the gradient planes g (POOL*POOL, F', PH*WQ);
    # dW (T, F') is then, per window offset k, sums of g times shifted phase planes
    # (_correlate_gradient), the transpose of the forward's _correlate; dx spreads g back
    # along the same shifts. Chunks of images have their own partial dW (summed by the caller).
    n_total, ph, pw, f_total = d.shape
    offsets, filters = plane.shape[0], weights.shape[1]
    chunks = dW_parts.shape[0]
    per_chunk = (n_total + chunks - 1) // chunks
    for t in prange(chunks):
        dW = dW_parts[t]
        dW[:] = 0.0
        g = np.empty((offsets, filters, ph * wq), dtype=d.dtype)
        for n in range(t * per_chunk, min(n_total, (t + 1) * per_chunk)):
            planes = _phase_planes(x[n], step, top, left, hq, wq)
            _gradient_planes(d[n], argmax[n], wq, g)
            for k in range(offsets):
                for f0 in range(0, filters, 4):
                    _correlate_gradient(planes, plane[k], shift[k], g[k], f0, dW)
            if input_gradient:
                planes[:] = 0.0  # reused for the input gradient's planes
                for k in range(offsets):
                    _spread_gradient(g[k], plane[k], shift[k], weights, planes)
                _from_phase_planes(planes, step, top, left, hq, wq, dx[n])


@one_image_at_a_time
def conv_pool_backward_numba(d: np.ndarray, argmax: np.ndarray, x: np.ndarray, W: np.ndarray,
                             stride: int, pads: tuple, pool: int, pool_stride: int,
                             input_gradient: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """``(dW, dx)`` of the pooled convolution from ``d`` = dL/dpooled, (N, PH, PW, F).

    The same numbers as ``MaxPooling2D.backward`` then ``Conv2D.backward_linear``
    (``dz = maxpool_backward(d)``, ``dW = cols.T @ dz``, ``dx = col2im(dz @ W.T)``);
    ``dx`` is None unless ``input_gradient``.

    Only the window maxima carry gradient, so it loops over the pooled
    entries (a quarter of the convolution's outputs for 2x2 pools) instead of
    multiplying mostly-zero matrices, and skips the entries that dropout or
    ReLU zeroed. The batch is split into a fixed number
    of chunks, each with its own partial ``dW`` (summed at the end), so the
    result does not depend on how many threads run. Small windows
    (``KH*KW*C <= SMALL_WINDOW``) work on the forward's phase planes instead
    (:class:`SmallWindowPlan`): per image, the gradients at each window offset
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
    chunks = min(n, 16)
    if kh * kw * c <= SMALL_WINDOW:
        _, ph, pw, _ = d.shape
        plan = small_window_plan(W, stride, pool, pool_stride, ph, pw)
        dW_parts = np.empty((chunks, *plan.weights.shape), dtype=W.dtype)
        dx = np.empty(x.shape if input_gradient else (1, 1, 1, 1), dtype=x.dtype)
        _conv_pool_backward_small_kernel(np.ascontiguousarray(d), argmax, np.ascontiguousarray(x),
                                         plan.plane, plan.shift, plan.weights, stride * pool_stride,
                                         top, left, plan.hq, plan.wq, dW_parts, dx, input_gradient)
        dW = dW_parts.sum(axis=0)[:kh * kw * c, :f].reshape(W.shape)
        return dW, dx if input_gradient else None
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    Wt = np.ascontiguousarray(W.transpose(3, 0, 1, 2))  # (F, KH, KW, C): one filter contiguous
    dWt_parts = np.empty((chunks, f, kh, kw * c), dtype=W.dtype)
    dxp = np.empty(xp.shape if input_gradient else (1, 1, 1, 1), dtype=x.dtype)
    _conv_pool_backward_kernel(np.ascontiguousarray(d), argmax, xp.reshape(n, xp.shape[1], -1),
                                 Wt.reshape(f, kh, -1), c, stride, pool, pool_stride, dWt_parts,
                                 dxp.reshape(dxp.shape[0], dxp.shape[1], -1), input_gradient)
    dW = dWt_parts.sum(axis=0).reshape(f, kh, kw, c).transpose(1, 2, 3, 0).copy()
    if not input_gradient:
        return dW, None
    return dW, dxp[:, top:top + x.shape[1], left:left + x.shape[2], :].copy()
