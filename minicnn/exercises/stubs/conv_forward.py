"""Exercise "conv_forward": the forward pass of a convolution, through im2col.

Read docs/backprop.md#conv2d and #im2col-and-col2im, write ``im2col`` and
``MyConv2D.forward_affine_pass`` below, then grade them with

    python -m minicnn.exercises grade conv_forward .

    x:    (N, H, W, C)               the input, NHWC
    xp:   x zero-padded by pads = (top, bottom, left, right) rows and columns
    W:    (KH, KW, C, F)             self.params["kernel"]; b: (F,) self.params["bias"]
    cols: (N, OH, OW, KH, KW, C)     cols[n, i, j, di, dj, c] = xp[n, i*sh + di, j*sw + dj, c],
                                     (sh, sw) = stride, the steps along rows and columns,
                                     OH = (H + top + bottom - KH) // sh + 1 (OW alike)
    z:    (N, OH, OW, F)             z = cols (as rows of KH*KW*C) @ W (as a (KH*KW*C, F) matrix) + b

The backward pass is minicnn's (it needs your cache: {"cols": cols, "x_shape": x.shape}).
"""

from __future__ import annotations

import numpy as np

from minicnn.layers import Conv2D


def im2col(x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], pads: tuple) -> np.ndarray:
    """Unfold every ``kh x kw`` window of the zero-padded ``x`` (N, H, W, C) into cols
    (N, OH, OW, KH, KW, C)."""
    top, bottom, left, right = pads
    sh, sw = stride
    n, h, w, c = x.shape
    # TODO: pad x (np.pad), then for each offset (di, dj) in the window copy the strided slice
    #       xp[:, di::sh, dj::sw, :] (OH rows, OW columns of it) into cols[:, :, :, di, dj, :].
    raise NotImplementedError("write im2col (docs/backprop.md#im2col-and-col2im)")


class MyConv2D(Conv2D):
    """``MyConv2D(filters, kernel_size, strides=1, padding="valid", activation=None, seed=None)``."""

    def forward_affine_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        """``z`` (N, OH, OW, F) and the cache ``{"cols": cols, "x_shape": x.shape}``, through your im2col;
        self.kernel_size = (KH, KW), self.strides = (sh, sw), self.pads, self.output_shape = (OH, OW, F)."""
        W, b = self.params["kernel"], self.params["bias"]  # noqa: F841 (yours to use)
        # TODO: cols = im2col(...); then one matrix product of the windows as rows with W as a matrix,
        #       plus b, reshaped to (N, OH, OW, F).
        raise NotImplementedError("write MyConv2D.forward_affine_pass (docs/backprop.md#conv2d)")
