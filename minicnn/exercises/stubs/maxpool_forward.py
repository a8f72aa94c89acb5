"""Exercise "maxpool_forward": the forward pass of max-pooling, and where each maximum was.

Read docs/backprop.md#maxpooling2d, write ``MyMaxPool2D.forward_pass`` below, then grade it with

    python -m minicnn.exercises grade maxpool_forward .

    x:      (N, H, W, C)
    out:    (N, OH, OW, C)   out[n, i, j, c] = max over the window x[n, i*s:i*s+pool, j*s:j*s+pool, c]
    argmax: (N, OH, OW, C)   where in its window the maximum was, as di * pool + dj (row-major;
                             on ties the FIRST maximum), for the backward pass
with pool = self.pool_size, s = self.strides, OH = (H - pool) // s + 1 (rows that fit no window are
left out). Windows may overlap (s < pool). The backward pass is minicnn's; it reads your argmax.
"""

from __future__ import annotations

import numpy as np

from minicnn.layers import MaxPooling2D


class MyMaxPool2D(MaxPooling2D):
    """``MyMaxPool2D(pool_size=2, strides=None)`` with your forward pass."""

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        """Return ``out, {"argmax": argmax, "x_shape": x.shape}``."""
        pool, s = self.pool_size, self.strides  # noqa: F841 (yours to use)
        n, h, w, c = x.shape
        # TODO: start from out = -inf everywhere; for each offset (di, dj) compare the strided slice
        #       x[:, di::s, dj::s, :] (OH rows, OW columns) with out: where it is strictly larger, it
        #       becomes the maximum and argmax becomes di * pool + dj.
        raise NotImplementedError("write MyMaxPool2D.forward_pass (docs/backprop.md#maxpooling2d)")
