"""Exercise "relu": the backward pass of ReLU, ``a = max(x, 0)``.

Read docs/backprop.md#activations, write ``MyReLU.backward`` below, then grade it with

    python -m minicnn.exercises grade relu .

Any shape in, the same shape out: x, a, dout and dx all have one shape, e.g. (N, H, W, C).
"""

from __future__ import annotations

import numpy as np

from minicnn.layers import Layer


class MyReLU(Layer):
    """ReLU as a layer of its own, with your backward pass."""

    default_name = "my_re_lu"

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.check_input(x)
        a = np.maximum(x, 0)
        if training:
            self.remember(a.shape, {"a": a})  # the output is all the backward pass needs
        return a

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """From ``dout`` = dL/da (the shape of x): return dx = dL/dx, a new array.

        At x = 0 the derivative does not exist: use 0 there, as Keras does.
        """
        self.check_grad(dout)
        a = self.cache["a"]  # noqa: F841 (yours to use)
        # TODO dx: where did the unit pass its input through, and where did it block it?
        raise NotImplementedError("write MyReLU.backward (docs/backprop.md#activations)")
