"""The fused conv+pool kernels for small windows (KH*KW*C of a few dozen: a first layer on grey images).

A window of 9 values (3x3, one channel) is too short a loop for SIMD, and looping over
the filters innermost keeps their accumulators in memory. So each image is split into
*phase planes* (:class:`SmallWindowPlan`), in which every tap of every pool-window
offset is a constant shift: the convolution becomes long contiguous loops over all
pooled positions, 4 filters and 3 taps per pass, each multiply-add one FMA instruction
(``compiled(contract=True)``). The backward pass reuses the planes.
Called by the dispatchers in :mod:`minicnn.fused.conv_pool_kernels`, whose contract
they share; ``tests/fused/test_small_window.py`` proves them equal to the definition.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minicnn.kernels import NO_WINNERS, compiled
from minicnn.threads import for_each_run, partials_of_runs

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


@compiled(contract=True)
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


@compiled()
def _conv_pool_forward_small_kernel(x, plane, shift, weights, step, top, left, hq, wq,
                                    out, argmax):  # pragma: no cover - compiled
    # Per image of a run: the phase planes; per 4 filters and window offset k, the convolution
    # planes y (4, PH*WQ) (_correlate), folded into the running maxima (first maximum wins),
    # which are then written out (F', PH*WQ) -> (PH, PW, F). A 1x1 pool (a ConvBlock's plain
    # convolution) has one offset: its planes are the output, and argmax is not touched (every
    # winner is offset 0; the caller may pass NO_WINNERS).
    n_total, ph, pw, f_total = out.shape
    offsets, filters = plane.shape[0], weights.shape[1]
    size = ph * wq
    y = np.empty((4, size), dtype=out.dtype)
    best = np.empty((filters, size), dtype=out.dtype)
    arg = np.empty((filters, size), dtype=np.uint8)
    for n in range(n_total):
        planes = _phase_planes(x[n], step, top, left, hq, wq)
        for f0 in range(0, filters, 4):
            _correlate(planes, plane[0], shift[0], weights, f0, best[f0:f0 + 4])
            if offsets > 1:
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
                if offsets > 1:
                    for f in range(f_total):
                        argmax[n, pi, pj, f] = arg[f, pi * wq + pj]


@compiled()
def _gradient_planes(d, argmax, wq, g):  # pragma: no cover - compiled
    # One image's d, argmax (PH, PW, F) -> g (POOL*POOL, F', PH*WQ): d at its winner's window
    # offset k and position p = pi * WQ + pj, 0 elsewhere (as the forward's planes y).
    # A 1x1 pool's one offset (g has 1 plane) wins everywhere: argmax is not read (may be NO_WINNERS).
    ph, pw, f_total = d.shape
    g[:] = 0.0
    one_offset = g.shape[0] == 1
    for pi in range(ph):
        for pj in range(pw):
            for f in range(f_total):
                g[0 if one_offset else argmax[pi, pj, f], f, pi * wq + pj] = d[pi, pj, f]


@compiled(reassociate=True, contract=True)
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


@compiled(contract=True)
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


@compiled()
def _conv_pool_backward_small_kernel(d, argmax, x, plane, shift, weights, step, top, left, hq, wq,
                                     dW, dx, input_gradient):  # pragma: no cover - compiled
    # Per image of a run: the phase planes of x and the gradient planes g (POOL*POOL, F', PH*WQ);
    # the run's share of dW (T, F') is then, per window offset k, sums of g times shifted phase
    # planes (_correlate_gradient), the transpose of the forward's _correlate; dx spreads g back
    # along the same shifts.
    n_total, ph, pw, f_total = d.shape
    offsets, filters = plane.shape[0], weights.shape[1]
    g = np.empty((offsets, filters, ph * wq), dtype=d.dtype)
    for n in range(n_total):
        planes = _phase_planes(x[n], step, top, left, hq, wq)
        _gradient_planes(d[n], argmax[n if offsets > 1 else 0], wq, g)
        for k in range(offsets):
            for f0 in range(0, filters, 4):
                _correlate_gradient(planes, plane[k], shift[k], g[k], f0, dW)
        if input_gradient:
            planes[:] = 0.0  # reused for the input gradient's planes
            for k in range(offsets):
                _spread_gradient(g[k], plane[k], shift[k], weights, planes)
            _from_phase_planes(planes, step, top, left, hq, wq, dx[n])


def _forward(x: np.ndarray, W: np.ndarray, stride: int, pads: tuple, pool: int, pool_stride: int,
             out: np.ndarray, argmax: np.ndarray) -> None:
    """:func:`_conv_pool_forward_small_kernel` over fixed runs of images on minicnn's threads, into
    ``out`` and ``argmax`` (N, PH, PW, F); ``argmax`` is not touched for a 1x1 pool."""
    plan = small_window_plan(W, stride, pool, pool_stride, out.shape[1], out.shape[2])
    x = np.ascontiguousarray(x)
    one_pool = pool == 1
    for_each_run(lambda start, stop: _conv_pool_forward_small_kernel(
        x[start:stop], plan.plane, plan.shift, plan.weights, stride * pool_stride, pads[0], pads[2],
        plan.hq, plan.wq, out[start:stop], argmax if one_pool else argmax[start:stop]), x.shape[0])


def conv_pool_forward_small(x: np.ndarray, W: np.ndarray, stride: int, pads: tuple, pool: int,
                            pool_stride: int, ph: int, pw: int) -> tuple[np.ndarray, np.ndarray]:
    """``maxpool(im2col(x) @ W)`` over phase planes: x (N, H, W, C), W (KH, KW, C, F) ->
    ``pooled`` (N, PH, PW, F) and ``argmax`` (uint8), as ``conv_pool_forward_numba``."""
    out = np.empty((x.shape[0], ph, pw, W.shape[3]), dtype=x.dtype)
    argmax = np.zeros(out.shape, dtype=np.uint8) if pool == 1 else np.empty(out.shape, dtype=np.uint8)
    _forward(x, W, stride, pads, pool, pool_stride, out, argmax)
    return out, argmax


def conv_forward_small(x: np.ndarray, W: np.ndarray, stride: int, pads: tuple, oh: int,
                       ow: int) -> np.ndarray:
    """``im2col(x) @ W`` over phase planes, unpooled: x (N, H, W, C), W (KH, KW, C, F) -> (N, OH, OW, F).

    The 1x1-pool case of :func:`conv_pool_forward_small`, without its argmax (every winner is offset 0).
    """
    out = np.empty((x.shape[0], oh, ow, W.shape[3]), dtype=x.dtype)
    _forward(x, W, stride, pads, 1, 1, out, NO_WINNERS)
    return out


def conv_pool_backward_small(d: np.ndarray, argmax: np.ndarray, x: np.ndarray, W: np.ndarray,
                             stride: int, pads: tuple, pool: int, pool_stride: int,
                             input_gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """``(dW, dx)`` over phase planes, as ``conv_pool_backward_numba``: per image, the gradients at
    each window offset form planes (zero where another offset won), and each ``dW`` entry is a
    sum of such a plane times a shifted phase plane of x; partial sums of ``dW`` per fixed run of images
    (:func:`minicnn.threads.partials_of_runs`). A 1x1 pool's ``argmax`` is not read: it may be
    :data:`~minicnn.kernels.NO_WINNERS`."""
    kh, kw, c, f = W.shape
    _, ph, pw, _ = d.shape
    plan = small_window_plan(W, stride, pool, pool_stride, ph, pw)
    dx = np.empty(x.shape if input_gradient else (1, 1, 1, 1), dtype=x.dtype)
    d, x = np.ascontiguousarray(d), np.ascontiguousarray(x)
    dW_parts = partials_of_runs(lambda start, stop, dW: _conv_pool_backward_small_kernel(
        d[start:stop], argmax if pool == 1 else argmax[start:stop], x[start:stop], plan.plane, plan.shift,
        plan.weights,
        stride * pool_stride, pads[0], pads[2], plan.hq, plan.wq, dW,
        dx[start:stop] if input_gradient else dx, input_gradient), x.shape[0], plan.weights.shape, W.dtype)
    dW = dW_parts.sum(axis=0)[:kh * kw * c, :f].reshape(W.shape)
    return dW, dx if input_gradient else None
