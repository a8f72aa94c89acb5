"""Numba kernels of the general fused convolution step (:mod:`minicnn.fused.conv_block`).

The step's reference is its layers' own passes (Conv2D, BatchNormalization, an activation,
a pooling layer, Dropout); ``tests/fused/test_conv_block_kernels.py`` proves each kernel here
equal to the layer pass it replaces. Images are (N, H, W, C); a convolution's output is
handled as rows, (N*OH*OW, F), one row per output pixel, one column per filter.

- :func:`conv_forward` / :func:`conv_backward`: the convolution, by Winograd F(2x2, 3x3) for a 3x3
  stride-1 kernel on 4 channels or more (:mod:`minicnn.fused.winograd`), directly over phase planes
  for a window of at most 32 values (:mod:`minicnn.fused.small_window`), else by the next two.
- :func:`conv_forward_blocked` / :func:`conv_backward_blocked`: the convolution as im2col and
  a BLAS product, a block of images at a time, each thread on a block of its own, so the im2col
  matrix never leaves the caches of the core that made it and the threads meet only at the end
  (the backward makes each block's matrix again instead of keeping the whole batch's).
- :func:`channel_moments`: a channel's mean and (biased) variance, two passes, float64 sums.
- :func:`affine_activate`: ``a = act((z - center) * scale + shift)`` in one pass: a bias and an
  activation (``center = -b``, ``scale = 1``, ``shift = 0``), or BatchNormalization and an
  activation (``center = mean - b``, ``scale = gamma / sqrt(var + eps)``, ``shift = beta``).
- :func:`activation_norm_backward`: the activation's backward, then BatchNormalization's,
  in two passes (the channel sums, then ``dz``) instead of the layers' five.
- :func:`max_pool_norm_backward`: the same behind a max-pool of stride = size, from the pooled
  gradient: the sums over the windows' winners, then one pass over the inputs.
- :func:`avgpool_forward_numba` / :func:`avgpool_backward_numba`: AveragePooling2D in one pass.

The passes over the rows cut them into a fixed number of runs (:func:`minicnn.threads.for_each_run`)
that minicnn's threads take one after another, each run a compiled kernel without the GIL. Sums
over the rows are float64, row after row within a run, and the runs' sums are added in run order:
the runs depend on the shapes alone, so the bits do not depend on the number of threads. (Serial
kernels on threads rather than ``prange``: a thread another process holds up delays only its own
run, and a serial kernel compiles in about half a parallel one's time.) The pooling kernels run
over fixed runs of images the same way.
"""

from __future__ import annotations

import contextlib

import numpy as np

from minicnn.activations import ACTIVATIONS
from minicnn.fused.conv_pool_kernels import SMALL_WINDOW, images_per_block
from minicnn.fused.small_window import conv_forward_small, conv_pool_backward_small
from minicnn.fused.winograd import conv_backward_winograd, conv_forward_winograd
from minicnn.kernels import NO_WINNERS, compiled, conv_output_size
from minicnn.kernels.im2col import col2im_into, im2col_into
from minicnn.threads import for_each_block, for_each_run, one_blas_thread, partials_of_runs, run_length

ACTIVATION_CODES = {None: 0, "linear": 0, "relu": 1, "tanh": 2, "sigmoid": 3}
"""The activations the kernels compute, by the code they take: what a fused step can hold."""


# --------------------------------------------------------------------------- the convolution, in blocks


def _is_pointwise(kh: int, kw: int, strides: tuple, pads: tuple) -> bool:
    """A 1x1 stride-1 unpadded convolution: its im2col matrix is the input itself."""
    return (kh, kw) == (1, 1) and tuple(strides) == (1, 1) and not any(pads)


def _columns(x: np.ndarray, kh: int, kw: int, strides: tuple, pads: tuple, oh: int, ow: int,
             buffer: np.ndarray) -> np.ndarray:
    """im2col of the images ``x`` as rows (images*OH*OW, KH*KW*C), in ``buffer`` unless pointwise."""
    n, c = x.shape[0], x.shape[3]
    if _is_pointwise(kh, kw, strides, pads):
        return x.reshape(n * oh * ow, c)
    cols = buffer[:n]
    im2col_into(x, kh, kw, strides[0], strides[1], pads[0], pads[2], cols)
    return cols.reshape(n * oh * ow, kh * kw * c)


def conv_output_shape(x_shape: tuple, W_shape: tuple, strides: tuple, pads: tuple) -> tuple[int, int]:
    """``(OH, OW)`` of the convolution of images ``x_shape`` by a kernel ``W_shape``."""
    top, bottom, left, right = pads
    return (conv_output_size(x_shape[1], W_shape[0], strides[0], top, bottom),
            conv_output_size(x_shape[2], W_shape[1], strides[1], left, right))


def _added_in_order(partial: np.ndarray) -> np.ndarray:
    """The partial results of fixed runs or blocks, (parts, ...), added in order: the same bits on
    any number of threads."""
    total = partial[0].copy()
    for part in partial[1:]:
        total += part
    return total


class _Buffers:
    """Scratch arrays of one shape, one for each thread using one at the same time, reused."""

    def __init__(self, shape: tuple, dtype: np.dtype):
        self.shape, self.dtype, self.free = shape, dtype, []

    @contextlib.contextmanager
    def take(self):
        # list.pop and list.append are atomic under the GIL
        buffer = self.free.pop() if self.free else np.empty(self.shape, dtype=self.dtype)
        try:
            yield buffer
        finally:
            self.free.append(buffer)


def _block_plan(x: np.ndarray, W: np.ndarray, strides: tuple, pads: tuple):
    kh, kw, c, f = W.shape
    oh, ow = conv_output_shape(x.shape, W.shape, strides, pads)
    # at most BLOCK_BYTES of im2col rows, and enough blocks for the threads to share
    block = min(images_per_block(oh, ow, kh * kw * c, x.itemsize), run_length(x.shape[0]))
    pointwise = _is_pointwise(kh, kw, strides, pads)
    buffers = _Buffers((1,) if pointwise else (block, oh, ow, kh, kw, c), x.dtype)
    return kh, kw, c, f, oh, ow, block, buffers


def _each_block(fn, n: int, block: int) -> None:
    """``fn(i, start, stop)`` for the blocks of ``block`` images, side by side on minicnn's threads,
    each with one BLAS thread: the blocks depend on the shapes alone, so the results do not depend
    on the number of threads."""
    with one_blas_thread():
        for_each_block(lambda i: fn(i, i * block, min(n, (i + 1) * block)), -(-n // block))


def conv_forward_blocked(x: np.ndarray, W: np.ndarray, strides: tuple, pads: tuple) -> np.ndarray:
    """``xw = im2col(x) @ W``, the convolution without bias, a block of images at a time.

    x: (N, H, W, C), W: (KH, KW, C, F), ``strides = (rows, columns)``, ``pads = (top, bottom,
    left, right)``. Returns rows (N*OH*OW, F): the products of
    :meth:`minicnn.layers.conv2d.Conv2D.correlate`, row by row. Each thread takes a block of
    images (``BLOCK_BYTES`` of im2col rows) and makes its im2col matrix, in a buffer it reuses, and
    its product, one BLAS thread each: the matrix stays in that core's caches.
    """
    x = np.ascontiguousarray(x)
    n = x.shape[0]
    kh, kw, c, f, oh, ow, block, buffers = _block_plan(x, W, strides, pads)
    Wm = np.ascontiguousarray(W).reshape(-1, f)
    xw = np.empty((n * oh * ow, f), dtype=x.dtype)
    rows = oh * ow

    def one_block(_: int, start: int, stop: int) -> None:
        with buffers.take() as buffer:
            cols = _columns(x[start:stop], kh, kw, strides, pads, oh, ow, buffer)
            np.matmul(cols, Wm, out=xw[start * rows:stop * rows])

    _each_block(one_block, n, block)
    return xw


def conv_backward_blocked(dz: np.ndarray, x: np.ndarray, W: np.ndarray, strides: tuple, pads: tuple,
                          input_gradient: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """``(dW, dx)`` of the convolution from ``dz`` = dL/dxw as rows (N*OH*OW, F).

    Conv2D's ``dW = cols.T @ dz`` and ``dx = col2im(dz @ W.T)``, a block of images at a
    time, the blocks side by side on minicnn's threads: each block's im2col matrix is made again
    (cheaper than a trip through memory for the whole batch's), its share of ``dW`` kept apart and
    the shares added in block order at the end (blocks fixed by the shapes, so the bits do not
    depend on the thread count). ``dx`` is None unless ``input_gradient``.
    """
    x = np.ascontiguousarray(x)
    dz = np.ascontiguousarray(dz)
    n = x.shape[0]
    kh, kw, c, f, oh, ow, block, buffers = _block_plan(x, W, strides, pads)
    Wt = np.ascontiguousarray(np.ascontiguousarray(W).reshape(-1, f).T)
    rows = oh * ow
    shares = np.empty((-(-n // block), kh * kw * c, f), dtype=W.dtype)
    dx = np.empty(x.shape, dtype=x.dtype) if input_gradient else None
    pointwise = _is_pointwise(kh, kw, strides, pads)
    gradient_buffers = _Buffers(buffers.shape, x.dtype)

    def one_block(i: int, start: int, stop: int) -> None:
        dz_block = dz[start * rows:stop * rows]
        with buffers.take() as buffer:
            cols = _columns(x[start:stop], kh, kw, strides, pads, oh, ow, buffer)
            np.matmul(cols.T, dz_block, out=shares[i])
        if not input_gradient:
            return
        if pointwise:
            np.matmul(dz_block, Wt, out=dx[start:stop].reshape(-1, c))
            return
        with gradient_buffers.take() as buffer:
            d = buffer[:stop - start]
            np.matmul(dz_block, Wt, out=d.reshape(dz_block.shape[0], -1))
            col2im_into(d, strides[0], strides[1], pads[0], pads[2], dx[start:stop])

    _each_block(one_block, n, block)
    return _added_in_order(shares).reshape(W.shape), dx


def uses_winograd(W_shape: tuple, strides: tuple) -> bool:
    """Whether :func:`conv_forward` runs the convolution by Winograd F(2x2, 3x3): a 3x3 kernel of stride 1
    whose window is larger than ``SMALL_WINDOW`` values (4 channels or more)."""
    kh, kw, c, _ = W_shape
    return (kh, kw) == (3, 3) and tuple(strides) == (1, 1) and kh * kw * c > SMALL_WINDOW


def uses_small_window(W_shape: tuple, strides: tuple) -> bool:
    """Whether :func:`conv_forward` runs the convolution directly over phase planes: a window of at most
    ``SMALL_WINDOW`` values (a first layer on grey or RGB images: 3x3 or 5x5 on 1 channel, 3x3 on 3),
    with the same stride down and across. For such thin products (K of 9 to 27) BLAS is far from its
    rate and im2col's copy costs more than the product."""
    kh, kw, c, _ = W_shape
    return kh * kw * c <= SMALL_WINDOW and strides[0] == strides[1]


def _conv_forward_small(x: np.ndarray, W: np.ndarray, stride: int, pads: tuple) -> np.ndarray:
    oh, ow = conv_output_shape(x.shape, W.shape, (stride, stride), pads)
    return conv_forward_small(x, W, stride, pads, oh, ow).reshape(-1, W.shape[3])


def _conv_backward_small(dz: np.ndarray, x: np.ndarray, W: np.ndarray, stride: int, pads: tuple,
                         input_gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
    oh, ow = conv_output_shape(x.shape, W.shape, (stride, stride), pads)
    d = np.ascontiguousarray(dz).reshape(x.shape[0], oh, ow, W.shape[3])
    # the small-window conv+pool backward with 1x1 pools, whose one offset wins everywhere
    return conv_pool_backward_small(d, NO_WINNERS, np.ascontiguousarray(x), W, stride, pads, 1, 1,
                                    input_gradient)


def conv_forward(x: np.ndarray, W: np.ndarray, strides: tuple, pads: tuple) -> np.ndarray:
    """The convolution without bias as rows (N*OH*OW, F), by the fastest of three methods for its shape:
    Winograd where :func:`uses_winograd` (:func:`minicnn.fused.winograd.conv_forward_winograd`, 2.25x
    fewer multiplications); phase planes where :func:`uses_small_window`
    (:mod:`minicnn.fused.small_window`, the seed model's first layer without its pool); else
    :func:`conv_forward_blocked`. Arguments as :func:`conv_forward_blocked`'s."""
    if uses_winograd(W.shape, strides):
        return conv_forward_winograd(x, W, pads)
    if uses_small_window(W.shape, strides):
        return _conv_forward_small(x, W, strides[0], pads)
    return conv_forward_blocked(x, W, strides, pads)


def conv_backward(dz: np.ndarray, x: np.ndarray, W: np.ndarray, strides: tuple, pads: tuple,
                  input_gradient: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """``(dW, dx)`` of :func:`conv_forward`, by the same method. Arguments as
    :func:`conv_backward_blocked`'s."""
    if uses_winograd(W.shape, strides):
        return conv_backward_winograd(dz, x, W, pads, input_gradient)
    if uses_small_window(W.shape, strides):
        return _conv_backward_small(dz, x, W, strides[0], pads, input_gradient)
    return conv_backward_blocked(dz, x, W, strides, pads, input_gradient)


# ------------------------------------------------------------------- activation and BatchNormalization


@compiled()
def _channel_sums_kernel(z, center, squares, sums):  # pragma: no cover - compiled
    m, f = z.shape
    for r in range(m):
        if squares:
            for c in range(f):
                v = z[r, c] - center[c]
                sums[c] += v * v
        else:
            for c in range(f):
                sums[c] += z[r, c]


def _channel_sum(z: np.ndarray, center: np.ndarray, squares: bool) -> np.ndarray:
    # float64 partial sums per run of rows, added in run order
    partial = partials_of_runs(lambda start, stop, sums: _channel_sums_kernel(
        z[start:stop], center, squares, sums), z.shape[0], z.shape[1:], np.float64)
    return _added_in_order(partial)


def channel_moments(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and biased variance, float64: rows (M, F) -> two arrays (F,).

    Two passes (the mean, then the mean squared deviation from it) with float64 sums: the
    one-pass ``E[z²] - E[z]²`` loses every digit when the mean is large beside the spread.
    """
    m = z.shape[0]
    mean = _channel_sum(z, np.zeros(z.shape[1]), False) / m
    return mean, _channel_sum(z, mean, True) / m


@compiled()
def _affine_relu_kernel(z, center, scale, shift, relu, a):  # pragma: no cover - compiled
    m, f = z.shape
    for r in range(m):
        if relu:
            for c in range(f):
                v = (z[r, c] - center[c]) * scale[c] + shift[c]
                a[r, c] = v if v > 0 else 0.0
        else:
            for c in range(f):
                a[r, c] = (z[r, c] - center[c]) * scale[c] + shift[c]


def affine_activate(z: np.ndarray, center: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                    activation: str | None, out: np.ndarray | None = None) -> np.ndarray:
    """``act((z - center) * scale + shift)`` per column: rows (M, F), vectors (F,) -> (M, F).

    ``out`` may be ``z`` itself. ``activation``: one of :data:`ACTIVATION_CODES`. ReLU is in the
    same pass; tanh and sigmoid are NumPy's own functions, in place on the result (their SIMD
    implementations are several times faster than a compiled loop calling ``tanh`` per value).
    """
    t = z.dtype.type
    a = np.empty_like(z) if out is None else out
    center, scale, shift = center.astype(t), scale.astype(t), shift.astype(t)
    sigmoid = ACTIVATIONS["sigmoid"][0]

    def one_run(start: int, stop: int) -> None:
        rows = a[start:stop]
        _affine_relu_kernel(z[start:stop], center, scale, shift, activation == "relu", rows)
        if activation == "tanh":
            np.tanh(rows, out=rows)
        elif activation == "sigmoid":
            rows[...] = sigmoid(rows)

    for_each_run(one_run, z.shape[0])
    return a


@compiled()
def _affine_activate_max_pool_kernel(z, center, scale, shift, relu, pool, out,
                                     argmax):  # pragma: no cover - compiled
    # _affine_relu_kernel's values, pooled as they are made (first maximum wins): z (N, OH, OW, F) ->
    # out, argmax (N, PH, PW, F). Per window offset, one branch-free loop over the channels.
    n, ph, pw, f = out.shape
    zero = z.dtype.type(0)
    for b in range(n):
        for i in range(ph):
            for j in range(pw):
                for k in range(pool * pool):
                    r, s = i * pool + k // pool, j * pool + k % pool
                    for ch in range(f):
                        v = (z[b, r, s, ch] - center[ch]) * scale[ch] + shift[ch]
                        if relu:
                            v = v if v > 0 else zero
                        better = k == 0 or v > out[b, i, j, ch]
                        out[b, i, j, ch] = v if better else out[b, i, j, ch]
                        argmax[b, i, j, ch] = k if better else argmax[b, i, j, ch]


def affine_activate_max_pool(z: np.ndarray, center: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                             activation: str | None, pool: int) -> tuple[np.ndarray, np.ndarray]:
    """``maxpool(act((z - center) * scale + shift), pool, stride=pool)`` without storing the activations:
    z (N, OH, OW, F), vectors (F,) -> ``(out, argmax)`` (N, PH, PW, F), the values and winners of
    :func:`affine_activate` then :func:`minicnn.kernels.maxpool.maxpool_forward_numba`, bit for bit.
    ``activation``: None, ``"linear"`` or ``"relu"``."""
    if activation not in (None, "linear", "relu"):
        raise ValueError("affine_activate_max_pool: activation must be None, 'linear' or 'relu'; "
                         f"got {activation!r}")
    t = z.dtype.type
    n, oh, ow, f = z.shape
    out = np.empty((n, conv_output_size(oh, pool, pool), conv_output_size(ow, pool, pool), f), dtype=z.dtype)
    argmax = np.empty(out.shape, dtype=np.uint8)
    center, scale, shift = center.astype(t), scale.astype(t), shift.astype(t)
    z = np.ascontiguousarray(z)
    relu = activation == "relu"
    for_each_run(lambda start, stop: _affine_activate_max_pool_kernel(
        z[start:stop], center, scale, shift, relu, pool, out[start:stop], argmax[start:stop]), n)
    return out, argmax


@compiled()
def _activation_backward_sums_kernel(da, a, z, center, inv_std, act, normalized, dy,
                                     sums):  # pragma: no cover - compiled
    # One row at a time: the activation's gradient into dy, then the row's share of the sums
    # while it is in L1. Each inner loop has no branch, so it vectorizes.
    m, f = da.shape
    for r in range(m):
        if act == 1:
            for c in range(f):
                dy[r, c] = da[r, c] if a[r, c] > 0 else 0.0
        elif act == 2:
            for c in range(f):
                dy[r, c] = da[r, c] * (1 - a[r, c] * a[r, c])
        elif act == 3:
            for c in range(f):
                dy[r, c] = da[r, c] * a[r, c] * (1 - a[r, c])
        else:
            for c in range(f):
                dy[r, c] = da[r, c]
        if normalized:
            for c in range(f):
                sums[0, c] += dy[r, c]
                sums[1, c] += dy[r, c] * ((z[r, c] - center[c]) * inv_std[c])
        else:
            for c in range(f):
                sums[0, c] += dy[r, c]


@compiled()
def _norm_input_gradient_kernel(dy, z, center, inv_std, k, m, dbeta, dgamma,
                                batch_statistics):  # pragma: no cover - compiled
    rows, f = dy.shape
    for r in range(rows):
        if batch_statistics:
            for c in range(f):
                x_hat = (z[r, c] - center[c]) * inv_std[c]
                dy[r, c] = k[c] * (m * dy[r, c] - dbeta[c] - x_hat * dgamma[c])
        else:
            for c in range(f):
                dy[r, c] = dy[r, c] * k[c]


def activation_norm_backward(da: np.ndarray, a: np.ndarray, activation: str | None,
                             norm: tuple | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """From ``da`` = dL/da to ``dz``: the activation's backward, then BatchNormalization's if ``norm``.

    da, a: rows (M, F) (``a`` the activation's output). ``norm = (z, center, inv_std, gamma,
    batch_statistics)``: BatchNormalization's input is ``z - center + mean`` (the convolution's
    rows ``z``), so ``x_hat = (z - center) * inv_std``, remade here rather than kept.
    Returns ``(dz, dbeta, dgamma)``: ``dbeta`` the column sums of the activation's gradient
    ``dy`` (the bias gradient when there is no ``norm``), ``dgamma = sum(dy * x_hat)`` (None
    without ``norm``), and, as BatchNormalization's backward (``docs/backprop.md#batchnormalization``),
    ``dz = gamma * inv_std / M * (M * dy - dbeta - x_hat * dgamma)`` with batch statistics,
    ``dz = gamma * inv_std * dy`` with the moving ones.
    """
    t = da.dtype.type
    dy = np.empty_like(da)
    code = ACTIVATION_CODES[activation]
    m, f = da.shape
    if norm is None:
        empty = np.zeros(f, dtype=da.dtype)
        partial = partials_of_runs(lambda start, stop, sums: _activation_backward_sums_kernel(
            da[start:stop], a[start:stop], da[start:stop], empty, empty, code, False, dy[start:stop], sums),
            m, (2, f), np.float64)
        return dy, _added_in_order(partial)[0].astype(t), None
    z, center, inv_std, gamma, batch_statistics = norm
    center, inv_std = center.astype(t), inv_std.astype(t)
    partial = partials_of_runs(lambda start, stop, sums: _activation_backward_sums_kernel(
        da[start:stop], a[start:stop], z[start:stop], center, inv_std, code, True, dy[start:stop], sums),
        m, (2, f), np.float64)
    sums = _added_in_order(partial).astype(t)
    dbeta, dgamma = sums[0], sums[1]
    scale = gamma * inv_std
    m = t(da.shape[0])
    k = scale / m if batch_statistics else scale
    for_each_run(lambda start, stop: _norm_input_gradient_kernel(
        dy[start:stop], z[start:stop], center, inv_std, k, m, dbeta, dgamma, batch_statistics), da.shape[0])
    return dy, dbeta, dgamma


@compiled()
def _pooled_norm_sums_kernel(d, argmax, pool, norm_input, center, inv_std, pooled, relu_after,
                             sums):  # pragma: no cover - compiled
    # dbeta, dgamma of BatchNormalization from the gradient d (N, PH, PW, F) of a max-pool behind it:
    # only each window's winner has dy != 0. Per window and offset, one branch-free loop over the
    # channels (it vectorizes; gathering each winner by its argmax would not).
    n, ph, pw, f = d.shape
    zero = d.dtype.type(0)
    for b in range(n):
        for i in range(ph):
            for j in range(pw):
                for k in range(pool * pool):
                    r, s = i * pool + k // pool, j * pool + k % pool
                    for ch in range(f):
                        dy = d[b, i, j, ch] if argmax[b, i, j, ch] == k else zero
                        if relu_after:  # the winner's activation is the pooled value
                            dy = dy if pooled[b, i, j, ch] > 0 else zero
                        sums[0, ch] += dy
                        sums[1, ch] += dy * ((norm_input[b, r, s, ch] - center[ch]) * inv_std[ch])


@compiled()
def _pooled_norm_input_gradient_kernel(d, argmax, pool, norm_input, center, inv_std, pooled, relu_after,
                                       relu_before, k, m, dbeta, dgamma, batch_statistics, dz,
                                       bias_sums):  # pragma: no cover - compiled
    # One pass over the inputs (N, OH, OW, F): dy (the window's gradient where this input won it,
    # else 0), BatchNormalization's dz, then a ReLU's before it; the bias's sums on the way.
    n, oh, ow, f = dz.shape
    _, ph, pw, _ = d.shape
    zero = dz.dtype.type(0)
    for b in range(n):
        for r in range(oh):
            i = r // pool
            for s in range(ow):
                j = s // pool
                inside = i < ph and j < pw  # rows and columns past the last window get no dy
                offset = (r % pool) * pool + s % pool
                for ch in range(f):
                    dy = zero
                    if inside and argmax[b, i, j, ch] == offset:
                        dy = d[b, i, j, ch]
                        if relu_after:
                            dy = dy if pooled[b, i, j, ch] > 0 else zero
                    if batch_statistics:
                        x_hat = (norm_input[b, r, s, ch] - center[ch]) * inv_std[ch]
                        g = k[ch] * (m * dy - dbeta[ch] - x_hat * dgamma[ch])
                    else:
                        g = dy * k[ch]
                    if relu_before:
                        g = g if norm_input[b, r, s, ch] > 0 else zero
                    dz[b, r, s, ch] = g
                    bias_sums[ch] += g


def max_pool_norm_backward(d: np.ndarray, argmax: np.ndarray, pool: int, norm_input: np.ndarray,
                           center: np.ndarray, inv_std: np.ndarray, gamma: np.ndarray, batch_statistics: bool,
                           relu_after: np.ndarray | None, relu_before: bool
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """From ``d`` = dL/d(pooled) to ``dz``: the backward of ``[ReLU ->] BatchNormalization [-> ReLU] ->
    MaxPooling2D(pool)`` (windows ``pool`` x ``pool``, stride ``pool``), with no dense ``dy`` in between.

    d, argmax (N, PH, PW, F): the pool's gradient and winners; norm_input (N, OH, OW, F):
    BatchNormalization's input, remade into ``x_hat = (norm_input - center) * inv_std``;
    ``relu_after``: with a ReLU between BatchNormalization and the pool, the pool's output (N, PH, PW,
    F), each window's winning activation (ReLU's gradient is 0 where it is 0), else None;
    ``relu_before``: BatchNormalization's input is a ReLU's output. ``dbeta`` and ``dgamma`` are sums
    over the winners alone (the only inputs with dy != 0), then one pass over the inputs computes
    ``dz`` as :func:`activation_norm_backward` does. Returns ``(dz, dbeta, dgamma, bias)``: dz rows
    (N*OH*OW, F) and ``bias`` = the column sums of dz.
    """
    t = d.dtype.type
    n, f = d.shape[0], d.shape[3]
    center, inv_std = center.astype(t), inv_std.astype(t)
    pooled = np.zeros((1, 1, 1, 1), dtype=d.dtype) if relu_after is None else np.ascontiguousarray(relu_after)

    def winners(start: int, stop: int) -> np.ndarray:  # pooled values of a run, or the placeholder
        return pooled if relu_after is None else pooled[start:stop]

    d, argmax = np.ascontiguousarray(d), np.ascontiguousarray(argmax)
    partial = partials_of_runs(lambda start, stop, sums: _pooled_norm_sums_kernel(
        d[start:stop], argmax[start:stop], pool, norm_input[start:stop], center, inv_std,
        winners(start, stop), relu_after is not None, sums), n, (2, f), np.float64)
    sums = _added_in_order(partial).astype(t)
    dbeta, dgamma = sums[0], sums[1]
    scale = gamma * inv_std
    m = t(norm_input.size // f)
    k = scale / m if batch_statistics else scale
    dz = np.empty(norm_input.shape, dtype=d.dtype)
    bias = partials_of_runs(lambda start, stop, bias_sums: _pooled_norm_input_gradient_kernel(
        d[start:stop], argmax[start:stop], pool, norm_input[start:stop], center, inv_std,
        winners(start, stop), relu_after is not None, relu_before, k, m, dbeta,
        dgamma, batch_statistics, dz[start:stop], bias_sums), n, (f,), np.float64)
    return dz.reshape(-1, f), dbeta, dgamma, _added_in_order(bias).astype(t)


# --------------------------------------------------------------------------- average pooling


@compiled()
def _average_pool_activation_backward_kernel(d, a, ph, pw, share, act, dz,
                                             sums):  # pragma: no cover - compiled
    # d (N, QH, QW, F), the gradient of windows ph x pw that tile a (N, OH, OW, F) from its corner;
    # a's rows and columns past the last window get none. Per output row, the share of its window's
    # gradient times the activation's derivative (as _activation_backward_sums_kernel), then the
    # row's share of the bias sums while it is in L1.
    n, oh, ow, f = a.shape
    qh, qw = d.shape[1], d.shape[2]
    for b in range(n):
        for r in range(oh):
            i = r // ph
            for s in range(ow):
                j = s // pw
                if i >= qh or j >= qw:
                    for c in range(f):
                        dz[b, r, s, c] = 0.0
                    continue
                if act == 1:
                    for c in range(f):
                        dz[b, r, s, c] = d[b, i, j, c] * share[0] if a[b, r, s, c] > 0 else 0.0
                elif act == 2:
                    for c in range(f):
                        dz[b, r, s, c] = d[b, i, j, c] * share[0] * (1 - a[b, r, s, c] * a[b, r, s, c])
                elif act == 3:
                    for c in range(f):
                        dz[b, r, s, c] = d[b, i, j, c] * share[0] * a[b, r, s, c] * (1 - a[b, r, s, c])
                else:
                    for c in range(f):
                        dz[b, r, s, c] = d[b, i, j, c] * share[0]
                for c in range(f):
                    sums[c] += dz[b, r, s, c]


def average_pool_activation_backward(d: np.ndarray, a: np.ndarray, pool_size: tuple,
                                     activation: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Average pooling's backward and the activation's in one pass, for windows that tile the map.

    d (N, QH, QW, F): the gradient of the pooled output, windows ``pool_size`` (PH, PW) with stride
    ``pool_size`` (GlobalAveragePooling2D: one window of the whole map, d (N, 1, 1, F)); a
    (N, OH, OW, F): the activation's output. Returns ``(dz, db)``: dz (N*OH*OW, F), each input's
    ``1 / (PH * PW)`` share of its window's gradient times the activation's derivative, exactly as
    :func:`avgpool_backward_numba` then :func:`activation_norm_backward` (0 past the last window),
    and db its column sums, float64 per fixed run of images, added in order. The dense gradient
    between the two is never made.
    """
    (ph, pw), (n, f) = pool_size, (a.shape[0], a.shape[3])
    t = a.dtype.type
    share = np.array([1.0 / (ph * pw)], dtype=a.dtype)
    d, a = np.ascontiguousarray(d), np.ascontiguousarray(a)
    dz = np.empty(a.shape, dtype=a.dtype)
    code = ACTIVATION_CODES[activation]
    partial = partials_of_runs(lambda start, stop, sums: _average_pool_activation_backward_kernel(
        d[start:stop], a[start:stop], ph, pw, share, code, dz[start:stop], sums), n, (f,), np.float64)
    return dz.reshape(-1, f), _added_in_order(partial).astype(t)


@compiled()
def _avgpool_forward_kernel(x, ph, pw, sh, sw, share, out):  # pragma: no cover - compiled
    n, oh, ow, c = out.shape
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                row = out[b, i, j]
                row[:] = 0.0
                for di in range(ph):
                    for dj in range(pw):
                        window = x[b, i * sh + di, j * sw + dj]
                        for ch in range(c):
                            row[ch] += window[ch]
                for ch in range(c):
                    row[ch] *= share[0]


def avgpool_forward_numba(x: np.ndarray, pool_size: tuple, strides: tuple) -> np.ndarray:
    """AveragePooling2D's forward in one pass: (N, H, W, C) -> (N, OH, OW, C), each window's values
    summed in the layer's order (row by row) and scaled by ``1 / (PH * PW)``."""
    (ph, pw), (sh, sw) = pool_size, strides
    n, h, w, c = x.shape
    out = np.empty((n, conv_output_size(h, ph, sh), conv_output_size(w, pw, sw), c), dtype=x.dtype)
    share = np.array([1.0 / (ph * pw)], dtype=x.dtype)
    x = np.ascontiguousarray(x)
    for_each_run(lambda start, stop: _avgpool_forward_kernel(
        x[start:stop], ph, pw, sh, sw, share, out[start:stop]), n)
    return out


@compiled()
def _avgpool_backward_kernel(dout, ph, pw, sh, sw, share, dx):  # pragma: no cover - compiled
    n, oh, ow, c = dout.shape
    for b in range(n):
        dx[b] = 0.0
        for i in range(oh):
            for j in range(ow):
                for di in range(ph):
                    for dj in range(pw):
                        target = dx[b, i * sh + di, j * sw + dj]
                        for ch in range(c):
                            target[ch] += dout[b, i, j, ch] * share[0]


def avgpool_backward_numba(dout: np.ndarray, x_shape: tuple, pool_size: tuple, strides: tuple) -> np.ndarray:
    """AveragePooling2D's backward: every input gets ``1 / (PH * PW)`` of each of its windows' gradients."""
    (ph, pw), (sh, sw) = pool_size, strides
    dx = np.empty(x_shape, dtype=dout.dtype)
    share = np.array([1.0 / (ph * pw)], dtype=dout.dtype)
    dout = np.ascontiguousarray(dout)
    for_each_run(lambda start, stop: _avgpool_backward_kernel(
        dout[start:stop], ph, pw, sh, sw, share, dx[start:stop]), dout.shape[0])
    return dx
