"""Exercise "maxpool": the backward pass of max-pooling.

Read docs/backprop.md#maxpooling2d, write ``MyMaxPool2D.backward_pass`` below, then grade it with

    python -m minicnn.exercises grade maxpool .

    x:      (N, H, W, C)
    out:    (N, OH, OW, C)   out[n, i, j, c] = max over the window x[n, i*s:i*s+pool, j*s:j*s+pool, c]
    argmax: (N, OH, OW, C)   where in its window the maximum was, as di * pool + dj (row-major;
                             on ties the first maximum)
with pool = self.pool_size, s = self.strides, OH = (H - pool) // s + 1. Windows may overlap (s < pool).
"""

from __future__ import annotations

import numpy as np

from minicnn.kernels.maxpool import maxpool_forward_reference
from minicnn.layers import MaxPooling2D


class MyMaxPool2D(MaxPooling2D):
    """``MyMaxPool2D(pool_size=2, strides=None)`` with your backward pass."""

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        out, argmax = maxpool_forward_reference(x, self.pool_size, self.strides)
        return out, {"argmax": argmax, "x_shape": x.shape}

    def backward_pass(self, dout: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        """From ``dout`` = dL/dout, shape (N, OH, OW, C): return ``dx, {}``, dx of shape (N, H, W, C)."""
        argmax, x_shape = cache["argmax"], cache["x_shape"]  # noqa: F841 (yours to use)
        pool, s = self.pool_size, self.strides  # noqa: F841
        # TODO dx: each dout entry belongs to the one input that won its window
        #      (row i*s + argmax // pool, column j*s + argmax % pool). Inputs that won
        #      several overlapping windows get the sum; the others get 0.
        raise NotImplementedError("write MyMaxPool2D.backward_pass (docs/backprop.md#maxpooling2d)")
