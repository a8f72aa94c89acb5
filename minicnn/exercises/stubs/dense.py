"""Exercise "dense": the backward pass of a fully connected layer.

Read docs/backprop.md#dense, write ``MyDense.backward_affine_pass`` below, then grade it with

    python -m minicnn.exercises grade dense .

The forward pass is written: ``z = x @ W + b`` with

    x: (N, D)      the input, N samples of D features
    W: (D, U)      self.params["kernel"]
    b: (U,)        self.params["bias"]
    z: (N, U)      the affine output (the base class applies the activation, if any)
"""

from __future__ import annotations

import numpy as np

from minicnn.layers import Dense


class MyDense(Dense):
    """Dense with your backward pass: ``MyDense(units, activation=None, seed=None)``."""

    def forward_affine_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        z = x @ self.params["kernel"] + self.params["bias"]
        return z, {"x": x}  # the output, and what the backward pass needs

    def backward_affine_pass(self, dz: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        """From ``dz`` = dL/dz of shape (N, U): return ``dx, {"kernel": dW, "bias": db}``.

        - dx = dL/dx, shape (N, D), a new array (never modify dz);
        - dW = dL/dW, shape (D, U), and db = dL/db, shape (U,).
        """
        x, W = cache["x"], self.params["kernel"]  # noqa: F841 (yours to use)
        # TODO dW: z[n, u] = sum_d x[n, d] W[d, u] + b[u], summed over every sample n.
        # TODO db: b[u] is added to z[n, u] for every sample n.
        # TODO dx: x[n, d] reaches every z[n, u] through W[d, u]: which matrix product sums that?
        raise NotImplementedError("write MyDense.backward_affine_pass (docs/backprop.md#dense)")
