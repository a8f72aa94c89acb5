"""Exercise "dense": the backward pass of a fully connected layer.

Read docs/backprop.md#dense, write ``MyDense.backward_linear`` below, then grade it with

    python -m minicnn.exercises grade dense .

The forward pass is written: ``z = x @ W + b`` with

    x: (N, D)      the input, N samples of D features
    W: (D, U)      self.params["kernel"]
    b: (U,)        self.params["bias"]
    z: (N, U)      the linear output (the base class applies the activation, if any)
"""

from __future__ import annotations

import numpy as np

from minicnn.layers import Dense


class MyDense(Dense):
    """Dense with your backward pass: ``MyDense(units, activation=None, seed=None)``."""

    def forward_linear(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.check_input(x)
        z = x @ self.params["kernel"] + self.params["bias"]
        if training:
            self.remember(z.shape, {"x": x})  # what the backward pass needs
        return z

    def backward_linear(self, dz: np.ndarray) -> np.ndarray:
        """From ``dz`` = dL/dz of shape (N, U): store dW and db, return dx.

        - dW = dL/dW, shape (D, U), and db = dL/db, shape (U,): store both with
          ``self.set_grads(kernel=dW, bias=db)``.
        - Return dx = dL/dx, shape (N, D), a new array (never modify dz).
        """
        self.check_grad(dz)
        x, W = self.cache["x"], self.params["kernel"]  # noqa: F841 (yours to use)
        # TODO dW: z[n, u] = sum_d x[n, d] W[d, u] + b[u], summed over every sample n.
        # TODO db: b[u] is added to z[n, u] for every sample n.
        # TODO dx: x[n, d] reaches every z[n, u] through W[d, u]: which matrix product sums that?
        raise NotImplementedError("write MyDense.backward_linear (docs/backprop.md#dense)")
