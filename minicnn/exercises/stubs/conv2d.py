"""Exercise "conv2d": the backward pass of a convolution, through im2col and col2im.

Read docs/backprop.md#conv2d and #im2col-and-col2im, write ``col2im`` and
``MyConv2D.backward_affine_pass`` below, then grade them with

    python -m minicnn.exercises grade conv2d .

    x:    (N, H, W, C)               the input, NHWC
    W:    (KH, KW, C, F)             self.params["kernel"]; b: (F,) self.params["bias"]
    cols: (N, OH, OW, KH, KW, C)     im2col(x): cols[n, i, j, di, dj, c] = xp[n, i*sh + di, j*sw + dj, c],
                                     xp the input zero-padded by pads = (top, bottom, left, right),
                                     (sh, sw) = stride, the steps along rows and columns
    z:    (N, OH, OW, F)             z = cols (as rows of KH*KW*C) @ W (as a (KH*KW*C, F) matrix) + b
"""

from __future__ import annotations

import numpy as np

from minicnn.kernels.im2col import im2col_reference
from minicnn.layers import Conv2D


def col2im(dcols: np.ndarray, x_shape: tuple, stride: tuple[int, int], pads: tuple) -> np.ndarray:
    """The adjoint of im2col: fold ``dcols`` (N, OH, OW, KH, KW, C) back into dx of shape ``x_shape``.

    Every input pixel receives the sum of the gradients of all the windows it appeared in;
    gradients that fall on the padding are dropped.
    """
    top, bottom, left, right = pads
    sh, sw = stride
    n, h, w, c = x_shape
    # TODO: add each dcols[:, :, :, di, dj, :] into a zero-padded dxp at the positions im2col read
    #       it from, then crop the padding off.
    raise NotImplementedError("write col2im (docs/backprop.md#im2col-and-col2im)")


class MyConv2D(Conv2D):
    """``MyConv2D(filters, kernel_size, strides=1, padding="valid", activation=None, seed=None)``."""

    def forward_affine_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        (kh, kw), s, W = self.kernel_size, self.strides, self.params["kernel"]
        cols = im2col_reference(x, kh, kw, s, self.pads)
        z = (cols.reshape(-1, kh * kw * W.shape[2]) @ W.reshape(-1, self.filters)).reshape(
            x.shape[0], *self.output_shape) + self.params["bias"]
        return z, {"cols": cols, "x_shape": x.shape}

    def backward_affine_pass(self, dz: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        """From ``dz`` (N, OH, OW, F): return ``dx, {"kernel": dW, "bias": db}``, dx (N, H, W, C)
        through your ``col2im``, dW (KH, KW, C, F) and db (F,)."""
        W, cols, x_shape = self.params["kernel"], cache["cols"], cache["x_shape"]  # noqa: F841
        # TODO: it is Dense's backward pass on every window: rows of cols in the role of x,
        #       dz as rows of F in the role of dz. Then dcols back into dx with col2im.
        raise NotImplementedError("write MyConv2D.backward_affine_pass (docs/backprop.md#conv2d)")
