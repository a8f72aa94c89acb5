"""Winograd F(2x2, 3x3): the 3x3 stride-1 convolution with 2.25x fewer multiplications, pooled or not.

Lavin & Gray 2015, "Fast Algorithms for Convolutional Neural Networks". A 2x2 block of
outputs of a 3x3 correlation reads a 4x4 tile ``d`` of the (zero-padded) input; for one
channel and one filter ``g`` (3x3) it is::

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise, over the 4x4 positions)

        B^T = [1  0 -1  0]      G = [ 1    0    0 ]      A^T = [1  1  1  0]
              [0  1  1  0]          [1/2  1/2  1/2]            [0  1 -1 -1]
              [0 -1  1  0]          [1/2 -1/2  1/2]
              [0  1  0 -1]          [ 0    0    1 ]

Summed over the C channels, the 16 positions ``xi`` of the 4x4 transforms are 16
independent matrix products, one per position, of the transformed tiles by the
transformed filters: ``M[xi] = V[xi] @ U[xi]`` with ``V[xi]`` (tiles, C) and ``U[xi]``
(C, F). They cost 16 multiplications per 2x2 outputs where the direct correlation
costs 36: 2.25x fewer. ``U = G g G^T`` is computed once per call; ``V = B^T d B`` and the
output transform ``A^T M A`` only add and subtract.

With 2x2 max-pooling of stride 2 (the MNIST model's second block) a 2x2 output tile *is*
a pool window, so the output transform ends in the window's max and argmax and the
unpooled convolution is never stored. Only the PH x PW tiles under pool windows are
computed: an odd last output row or column, which no window reads, is skipped, so no
tile overhangs the output; tiles that overhang the *input* (padding, or the edge of a
"valid" convolution) read zeros. Without pooling (:func:`conv_forward_winograd`, a
``ConvBlock``'s convolution) every tile's 2x2 outputs are written out; tiles cover an odd
output by overhanging it, their extra outputs dropped. The same two kernels serve both.

The backward (:func:`conv_pool_backward_winograd`) runs the same three steps backwards:
only each window's winner carries gradient, so a tile's output gradient ``dY`` (2x2) has
one nonzero entry (without pooling, :func:`conv_backward_winograd`, all four are the output's
gradient, zero past an odd output), and with ``dM = A dY A^T``::

    dU[xi] = sum over images and tiles of V[xi]^T @ dM[xi]      dW = G^T dU G
    dV[xi] = dM[xi] @ U[xi]^T                                  dd = B dV B^T

where ``dd`` is the gradient of a tile's 4x4 input; overlapping tiles (they share 2 rows
or columns) add theirs up.

The entries of the transforms are 0, +-1 and +-1/2, so on integer-valued float64 data
every value is exact and the results, ties included, equal the direct correlation's.
"""

from __future__ import annotations

import numpy as np

from minicnn.kernels import NO_WINNERS, compiled, conv_output_size
from minicnn.threads import for_each_run, one_blas_thread, partials_of_runs

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
"""The filter transform of F(2x2, 3x3): ``U = G g G^T`` is 4x4 for a 3x3 filter ``g``."""


def transform_filters(W: np.ndarray) -> np.ndarray:
    """``U[xi] = (G g G^T)[xi]`` for every channel and filter: (3, 3, C, F) -> (16, C, F), in W's dtype."""
    U = np.einsum("ik,klcf,jl->ijcf", G, W, G)
    return np.ascontiguousarray(U.reshape(16, *W.shape[2:]), dtype=W.dtype)


@compiled()
def _plane_rows(tiles):  # pragma: no cover - compiled
    """Rows of each of the 16 planes of ``V``, ``M`` (and the backward's): ``tiles`` made odd.

    The transforms read and write the 16 planes at the same row at once; with a power-of-two
    number of tiles (8x8, 16x16 pool windows) the planes would lie a power of two of bytes apart,
    on the same few cache sets, and evict each other (2-3x slower). An odd row count spreads them.
    """
    return tiles | 1


@compiled()
def _bt(d0, d1, d2, d3):  # pragma: no cover - compiled
    """``B^T`` applied to four values along one axis of a 4x4 tile."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


@compiled()
def _at(m0, m1, m2, m3):  # pragma: no cover - compiled
    """``A^T`` applied to four values along one axis of a 4x4 transformed tile."""
    return m0 + m1 + m2, m1 - m2 - m3


@compiled()
def _pad_image(x, n, top, left, xp):  # pragma: no cover - compiled
    """Copy image ``n`` into ``xp`` (2*PH + 2, 2*PW + 2, C): what the tiles read, zeros outside x."""
    _, h, w, c = x.shape
    xp[:] = 0.0
    for r in range(max(0, top), min(h + top, xp.shape[0])):
        for s in range(max(0, left), min(w + left, xp.shape[1])):
            for ch in range(c):  # a loop, not a slice copy: Numba compiles slice copies in seconds
                xp[r, s, ch] = x[n, r - top, s - left, ch]


@compiled()
def _input_transform(xp, ph, pw, V, half):  # pragma: no cover - compiled
    """``V[xi, t, c] = (B^T d B)[xi]`` for the 4x4 tile ``d`` of tile ``t = ti * PW + tj``, channel ``c``.

    In two passes through ``half`` (4, 4, C), ``B^T d`` of one tile: each loop over the channels then
    reads 4 and writes 4 arrays at once, which LLVM vectorizes; one pass writing the 16 planes did
    not vectorize and took twice as long.
    """
    # Indexes xp itself rather than a view of the tile: a view made in a loop costs two atomic
    # reference-count updates, which here took as long as the arithmetic.
    for t in range(ph * pw):
        r, s = 2 * (t // pw), 2 * (t % pw)
        for q in range(4):  # B^T along the rows of the tile, for each of its 4 columns q ...
            for c in range(V.shape[2]):
                half[0, q, c], half[1, q, c], half[2, q, c], half[3, q, c] = _bt(
                    xp[r, s + q, c], xp[r + 1, s + q, c], xp[r + 2, s + q, c], xp[r + 3, s + q, c])
        for i in range(4):  # ... then B along the columns: row i of B^T d B is _bt of row i of B^T d
            for c in range(V.shape[2]):
                V[4 * i, t, c], V[4 * i + 1, t, c], V[4 * i + 2, t, c], V[4 * i + 3, t, c] = _bt(
                    half[i, 0, c], half[i, 1, c], half[i, 2, c], half[i, 3, c])


@compiled()
def _tile_outputs(M, t, f):  # pragma: no cover - compiled
    """Tile ``t``'s 2x2 outputs ``A^T M A`` for filter ``f``, M (16, T, F): ``(y00, y01, y10, y11)``."""
    # A^T along the rows of the tile, for each of its 4 columns, then A along the columns
    p0, p1 = _at(M[0, t, f], M[4, t, f], M[8, t, f], M[12, t, f])
    q0, q1 = _at(M[1, t, f], M[5, t, f], M[9, t, f], M[13, t, f])
    r0, r1 = _at(M[2, t, f], M[6, t, f], M[10, t, f], M[14, t, f])
    s0, s1 = _at(M[3, t, f], M[7, t, f], M[11, t, f], M[15, t, f])
    y00, y01 = _at(p0, q0, r0, s0)
    y10, y11 = _at(p1, q1, r1, s1)
    return y00, y01, y10, y11


@compiled()
def _output_transform_pool(M, out, argmax):  # pragma: no cover - compiled
    """Max and argmax of each tile's 2x2 outputs ``A^T M A``: M (16, T, F) -> out, argmax (PH, PW, F)."""
    ph, pw, f_total = out.shape
    for t in range(ph * pw):
        ti, tj = t // pw, t % pw
        for f in range(f_total):
            y00, y01, y10, y11 = _tile_outputs(M, t, f)
            best, k = y00, 0  # strict comparisons: the first maximum wins, as in max-pooling
            if y01 > best:
                best, k = y01, 1
            if y10 > best:
                best, k = y10, 2
            if y11 > best:
                best, k = y11, 3
            out[ti, tj, f] = best
            argmax[ti, tj, f] = k


def tile_grid(oh: int, ow: int) -> tuple[int, int]:
    """Tiles down and across that cover an (OH, OW) output: 2x2 outputs each, the last row or column
    of tiles overhanging an odd output by one (outputs computed and dropped)."""
    return -(-oh // 2), -(-ow // 2)


@compiled()
def _output_transform(M, th, tw, y):  # pragma: no cover - compiled
    """Each tile's 2x2 outputs ``A^T M A``: M (16, T, F) -> y (OH, OW, F) of one image, T = TH*TW;
    the outputs of a tile that overhangs the last row or column are dropped."""
    oh, ow, f_total = y.shape
    for t in range(th * tw):
        r, s = 2 * (t // tw), 2 * (t % tw)
        below, right = r + 1 < oh, s + 1 < ow
        for f in range(f_total):
            y00, y01, y10, y11 = _tile_outputs(M, t, f)
            y[r, s, f] = y00
            if right:
                y[r, s + 1, f] = y01
            if below:
                y[r + 1, s, f] = y10
                if right:
                    y[r + 1, s + 1, f] = y11


@compiled()
def _winograd_kernel(x, U, top, left, th, tw, pooled, out, argmax):  # pragma: no cover - compiled
    # U (16, C, F); TH x TW tiles an image. The 16 products of one image, (TH*TW, C) @ (C, F) each,
    # are BLAS calls (np.dot in Numba calls SciPy's BLAS), on the calling thread: a run of images
    # stays on one thread, in buffers of a few hundred kB that stay in the core's L2. ``pooled``:
    # each tile is a 2x2 pool window, out and argmax (N, TH, TW, F); else every output is written,
    # out (N, OH, OW, F) (argmax unused).
    n_total, f_total = out.shape[0], out.shape[3]
    c = U.shape[1]
    tiles = th * tw
    rows = _plane_rows(tiles)
    xp = np.empty((2 * th + 2, 2 * tw + 2, c), dtype=x.dtype)
    half = np.empty((4, 4, c), dtype=x.dtype)
    V = np.empty((16, rows, c), dtype=x.dtype)
    M = np.empty((16, rows, f_total), dtype=x.dtype)
    for n in range(n_total):
        _pad_image(x, n, top, left, xp)
        _input_transform(xp, th, tw, V, half)
        for xi in range(16):
            np.dot(V[xi, :tiles], U[xi], M[xi, :tiles])
        if pooled:
            _output_transform_pool(M, out[n], argmax[n])
        else:
            _output_transform(M, th, tw, out[n])


def _forward(x: np.ndarray, U: np.ndarray, top: int, left: int, th: int, tw: int, out: np.ndarray,
             argmax: np.ndarray | None) -> None:
    """:func:`_winograd_kernel` over fixed runs of images on minicnn's threads (pooled if ``argmax``)."""
    x = np.ascontiguousarray(x)
    with one_blas_thread():  # each image's products on its own thread, never split further by BLAS
        for_each_run(lambda start, stop: _winograd_kernel(
            x[start:stop], U, top, left, th, tw, argmax is not None, out[start:stop],
            NO_WINNERS if argmax is None else argmax[start:stop]), x.shape[0])


def conv_pool_forward_winograd(x: np.ndarray, W: np.ndarray, pads: tuple, pool: int,
                               pool_stride: int) -> tuple[np.ndarray, np.ndarray]:
    """``maxpool(im2col(x) @ W)`` for a 3x3 stride-1 convolution and 2x2 pools of stride 2, by Winograd.

    The contract of ``conv_pool_forward_blocked(x, W, 1, pads, pool, pool_stride)``:
    x (N, H, W, C), W (3, 3, C, F), ``pads = (top, bottom, left, right)``; returns
    ``pooled`` (N, PH, PW, F) in x's dtype, the max of the bias-free correlation over
    each window, and ``argmax`` (uint8, the winner's ``di * pool + dj``, the first
    maximum on ties). One image at a time per thread: input transform, the 16
    products (BLAS), output transform and pooling, in buffers of a few hundred kB
    that stay in the core's L2.
    """
    if W.shape[:2] != (3, 3):
        raise ValueError(f"conv_pool_forward_winograd: W must be (3, 3, C, F); got {W.shape}")
    if (pool, pool_stride) != (2, 2):
        raise ValueError("conv_pool_forward_winograd: pool and pool_stride must be 2; "
                         f"got {pool} and {pool_stride}")
    top, bottom, left, right = pads
    oh = conv_output_size(x.shape[1], 3, 1, top, bottom)
    ow = conv_output_size(x.shape[2], 3, 1, left, right)
    ph, pw = conv_output_size(oh, 2, 2), conv_output_size(ow, 2, 2)
    pooled = np.empty((x.shape[0], ph, pw, W.shape[3]), dtype=x.dtype)
    argmax = np.empty(pooled.shape, dtype=np.uint8)
    _forward(x, transform_filters(W.astype(x.dtype, copy=False)), top, left, ph, pw, pooled, argmax)
    return pooled, argmax


def _check_3x3(name: str, W: np.ndarray) -> None:
    if W.shape[:2] != (3, 3):
        raise ValueError(f"{name}: W must be (3, 3, C, F); got {W.shape}")


def conv_forward_winograd(x: np.ndarray, W: np.ndarray, pads: tuple) -> np.ndarray:
    """``im2col(x) @ W`` for a 3x3 stride-1 convolution, by Winograd: rows (N*OH*OW, F).

    The contract of :func:`minicnn.fused.conv_block_kernels.conv_forward_blocked` with strides
    ``(1, 1)``: x (N, H, W, C), W (3, 3, C, F), ``pads = (top, bottom, left, right)``. One image at
    a time per thread: input transform, the 16 products (BLAS), output transform, in buffers that
    stay in the core's L2; a tile overhanging an odd output reads zeros and its extra outputs are dropped.
    """
    _check_3x3("conv_forward_winograd", W)
    top, bottom, left, right = pads
    n, h, w, _ = x.shape
    oh, ow = conv_output_size(h, 3, 1, top, bottom), conv_output_size(w, 3, 1, left, right)
    y = np.empty((n, oh, ow, W.shape[3]), dtype=x.dtype)
    _forward(x, transform_filters(W.astype(x.dtype, copy=False)), top, left, *tile_grid(oh, ow), y, None)
    return y.reshape(n * oh * ow, -1)


# --------------------------------------------------------------------------- backward


A = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, -1.0], [0.0, -1.0]])
"""The output transform's ``A`` (4x2): a tile's 2x2 outputs are ``A^T M A``."""

DM_OF_WINNER = np.einsum("ia,jb->ijab", A, A).reshape(16, 4)
"""``(A dY A^T)[xi]`` for ``dY`` = 1 at the winner ``k = a * 2 + b``, 0 elsewhere: (16, 4), entries 0, +-1."""


@compiled()
def _output_gradient_transform(d, argmax, dm_of_winner, dM):  # pragma: no cover - compiled
    """``dM[xi, t, f] = (A dY A^T)[xi]``, ``dY`` the 2x2 gradient of tile ``t``: ``d`` at the argmax, else 0.

    d, argmax (PH, PW, F), dm_of_winner (16, 4) = ``DM_OF_WINNER`` in d's dtype -> dM (16, T, F).
    ``dY`` is ``d`` times the winner's indicator, so ``dM`` is ``d`` times a sign (or 0)
    picked by the winner: chosen by comparisons, not indexing, so the filter loop vectorizes.
    Every array is indexed whole, with no view made in the loops (see :func:`_input_transform`).
    """
    ph, pw, f_total = d.shape
    for t in range(ph * pw):
        i, j = t // pw, t % pw
        for xi in range(16):
            c0, c1 = dm_of_winner[xi, 0], dm_of_winner[xi, 1]
            c2, c3 = dm_of_winner[xi, 2], dm_of_winner[xi, 3]
            for f in range(f_total):
                kf = argmax[i, j, f]
                dM[xi, t, f] = d[i, j, f] * (c0 if kf == 0 else (c1 if kf == 1 else (c2 if kf == 2 else c3)))


@compiled()
def _b(v0, v1, v2, v3):  # pragma: no cover - compiled
    """``B`` applied to four values along one axis of a 4x4 transformed tile (:func:`_bt` transposed)."""
    return v0, v1 - v2 + v3, v1 + v2 - v0, -v3


@compiled()
def _input_gradient_transform(dV, ph, pw, dxp, half):  # pragma: no cover - compiled
    """Add each tile's input gradient ``B dV[:, t] B^T`` (4x4 per channel) into dxp (2*PH + 2, 2*PW + 2, C).

    dV (16, T, C). Tiles start every 2 rows and columns, so neighbours overlap and add. In two passes
    through ``half`` (4, 4, C), as :func:`_input_transform`.
    """
    dxp[:] = 0.0
    for t in range(ph * pw):
        r, s = 2 * (t // pw), 2 * (t % pw)
        for j in range(4):  # B along the rows of dV, for each of its 4 columns j ...
            for c in range(dV.shape[2]):
                half[0, j, c], half[1, j, c], half[2, j, c], half[3, j, c] = _b(
                    dV[j, t, c], dV[4 + j, t, c], dV[8 + j, t, c], dV[12 + j, t, c])
        for i in range(4):  # ... then B^T along the columns, row i added into the image's row r + i
            for c in range(dV.shape[2]):
                u0, u1, u2, u3 = _b(half[i, 0, c], half[i, 1, c], half[i, 2, c], half[i, 3, c])
                dxp[r + i, s, c] += u0
                dxp[r + i, s + 1, c] += u1
                dxp[r + i, s + 2, c] += u2
                dxp[r + i, s + 3, c] += u3


@compiled()
def _crop_image(dxp, top, left, dx, n):  # pragma: no cover - compiled
    """``dx[n]`` = the part of dxp over the image (inverse of :func:`_pad_image`); 0 where no tile reached."""
    _, h, w, c = dx.shape
    dx[n] = 0.0
    for r in range(max(0, top), min(h + top, dxp.shape[0])):
        for s in range(max(0, left), min(w + left, dxp.shape[1])):
            for ch in range(c):  # a loop, not a slice copy (see _pad_image)
                dx[n, r - top, s - left, ch] = dxp[r, s, ch]


@compiled()
def _output_gradient_transform_dense(dy, th, tw, dM, half):  # pragma: no cover - compiled
    """``dM[xi, t, f] = (A dY A^T)[xi]`` for the 2x2 gradient ``dY`` of each tile ``t`` of one image,
    0 past the output where a tile overhangs it: dy (OH, OW, F) -> dM (16, T, F). In two passes through
    ``half`` (4, 2, F), ``A dY`` of one tile, as :func:`_input_transform`."""
    oh, ow, f_total = dy.shape
    for t in range(th * tw):
        r, s = 2 * (t // tw), 2 * (t % tw)
        below, right = r + 1 < oh, s + 1 < ow
        # A along the rows of dY = [[a, b], [c, d]]: (a, b), (a + c, b + d), (a - c, b - d), (-c, -d) ...
        for f in range(f_total):
            a = dy[r, s, f]
            b = dy[r, s + 1, f] if right else 0.0
            c = dy[r + 1, s, f] if below else 0.0
            d = dy[r + 1, s + 1, f] if below and right else 0.0
            half[0, 0, f], half[1, 0, f], half[2, 0, f], half[3, 0, f] = a, a + c, a - c, -c
            half[0, 1, f], half[1, 1, f], half[2, 1, f], half[3, 1, f] = b, b + d, b - d, -d
        # ... then each row (u, v) times A^T along the columns: (u, u + v, u - v, -v)
        for i in range(4):
            for f in range(f_total):
                u, v = half[i, 0, f], half[i, 1, f]
                k = 4 * i
                dM[k, t, f], dM[k + 1, t, f], dM[k + 2, t, f], dM[k + 3, t, f] = u, u + v, u - v, -v


@compiled()
def _winograd_backward_kernel(grad, argmax, dm_of_winner, pooled, x, Ut, top, left, th, tw, dU, dx,
                              input_gradient):  # pragma: no cover - compiled
    # Ut (16, F, C) = U transposed. ``pooled``: grad and argmax (N, TH, TW, F), the gradient of each
    # window's winner; else grad (N, OH, OW, F), every output's. The run's images' shares of dU
    # (16, C, F) are added in image order.
    n_total, f_total = grad.shape[0], grad.shape[3]
    c = Ut.shape[2]
    tiles = th * tw
    rows = _plane_rows(tiles)
    xp = np.empty((2 * th + 2, 2 * tw + 2, c), dtype=x.dtype)
    half = np.empty((4, 4, c), dtype=x.dtype)
    half_dM = np.empty((4, 2, f_total), dtype=x.dtype)
    V = np.empty((16, rows, c), dtype=x.dtype)
    dM = np.empty((16, rows, f_total), dtype=x.dtype)
    dU_image = np.empty((16, c, f_total), dtype=x.dtype)
    dV = np.empty((16, rows, c), dtype=x.dtype)
    for n in range(n_total):
        _pad_image(x, n, top, left, xp)
        _input_transform(xp, th, tw, V, half)
        if pooled:
            _output_gradient_transform(grad[n], argmax[n], dm_of_winner, dM)
        else:
            _output_gradient_transform_dense(grad[n], th, tw, dM, half_dM)
        for xi in range(16):
            np.dot(V[xi, :tiles].T, dM[xi, :tiles], dU_image[xi])
        dU += dU_image
        if input_gradient:
            for xi in range(16):
                np.dot(dM[xi, :tiles], Ut[xi], dV[xi, :tiles])
            _input_gradient_transform(dV, th, tw, xp, half)  # xp is free again: reuse it for dxp
            _crop_image(xp, top, left, dx, n)


def _backward(grad: np.ndarray, argmax: np.ndarray | None, x: np.ndarray, W: np.ndarray, top: int, left: int,
              th: int, tw: int, input_gradient: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """``(dW, dx)`` by :func:`_winograd_backward_kernel` over fixed runs of images on minicnn's threads,
    each run with its own partial ``dU``, added in run order (pooled if ``argmax``)."""
    n, _, _, c = x.shape
    f = W.shape[3]
    Ut = np.ascontiguousarray(transform_filters(W.astype(x.dtype, copy=False)).transpose(0, 2, 1))
    dm_of_winner = DM_OF_WINNER.astype(x.dtype)
    dx = np.empty(x.shape if input_gradient else (1, 1, 1, 1), dtype=x.dtype)
    grad, x = np.ascontiguousarray(grad), np.ascontiguousarray(x)
    with one_blas_thread():  # each image's products on its own thread, never split further by BLAS
        dU_parts = partials_of_runs(lambda start, stop, dU: _winograd_backward_kernel(
            grad[start:stop], NO_WINNERS if argmax is None else argmax[start:stop], dm_of_winner,
            argmax is not None, x[start:stop], Ut, top, left, th, tw, dU,
            dx[start:stop] if input_gradient else dx, input_gradient), n, (16, c, f), x.dtype)
    dU = dU_parts.sum(axis=0).reshape(4, 4, c, f)
    dW = np.einsum("ik,ijcf,jl->klcf", G, dU, G).astype(W.dtype, copy=False)
    return dW, (dx if input_gradient else None)


def conv_pool_backward_winograd(d: np.ndarray, argmax: np.ndarray, x: np.ndarray, W: np.ndarray,
                                pads: tuple, pool: int, pool_stride: int,
                                input_gradient: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """``(dW, dx)`` of :func:`conv_pool_forward_winograd` from ``d`` = dL/dpooled, by Winograd backwards.

    The contract of ``conv_pool_backward_numba(d, argmax, x, W, 1, pads, pool, pool_stride,
    input_gradient)``: d (N, PH, PW, F), argmax (N, PH, PW, F) uint8, x (N, H, W, C),
    W (3, 3, C, F); returns dW (3, 3, C, F) and dx (N, H, W, C), or None unless
    ``input_gradient``. The forward is ``Y = A^T (U * V) A`` per tile, channel and
    filter (summed over channels), linear in ``U = G g G^T`` and in ``V = B^T d B``, so
    its backward is the same transforms transposed, with the 16 products per image as
    BLAS calls: ``dM = A dY A^T`` (dY: ``d`` at the argmax of the tile), then
    ``dU[xi] += V[xi]^T @ dM[xi]`` (C, F) and ``dW = G^T dU G``; ``dV[xi] = dM[xi] @ U[xi]^T``
    (T, C) and each tile's input gradient ``B dV B^T`` added into the padded image,
    tiles overlapping by 2 rows and columns, then cropped by the pads.
    """
    if W.shape[:2] != (3, 3):
        raise ValueError(f"conv_pool_backward_winograd: W must be (3, 3, C, F); got {W.shape}")
    if (pool, pool_stride) != (2, 2):
        raise ValueError("conv_pool_backward_winograd: pool and pool_stride must be 2; "
                         f"got {pool} and {pool_stride}")
    top, _, left, _ = pads
    return _backward(d, argmax, x, W, top, left, d.shape[1], d.shape[2], input_gradient)


def conv_backward_winograd(dz: np.ndarray, x: np.ndarray, W: np.ndarray, pads: tuple,
                           input_gradient: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """``(dW, dx)`` of :func:`conv_forward_winograd` from ``dz`` = dL/d(rows), (N*OH*OW, F).

    The contract of :func:`minicnn.fused.conv_block_kernels.conv_backward_blocked` with strides
    ``(1, 1)``; the same transforms backwards as :func:`conv_pool_backward_winograd`, with every
    output carrying gradient: ``dM = A dY A^T`` for each tile's 2x2 ``dY``. Runs of images fixed by
    the batch size have their own partial ``dU``, added in run order.
    """
    _check_3x3("conv_backward_winograd", W)
    top, bottom, left, right = pads
    n, h, w, _ = x.shape
    oh, ow = conv_output_size(h, 3, 1, top, bottom), conv_output_size(w, 3, 1, left, right)
    dy = np.ascontiguousarray(dz).reshape(n, oh, ow, W.shape[3])
    return _backward(dy, None, x, W, top, left, *tile_grid(oh, ow), input_gradient)
