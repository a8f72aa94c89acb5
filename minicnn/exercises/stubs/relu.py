"""Exercise "relu": the backward pass of ReLU, ``a = max(x, 0)``.

Read docs/backprop.md#activations, write ``MyReLU.backward_pass`` below, then grade it with

    python -m minicnn.exercises grade relu .

Any shape in, the same shape out: x, a, dout and dx all have one shape, e.g. (N, H, W, C).
"""

from __future__ import annotations

import numpy as np

from minicnn.layers import Layer


class MyReLU(Layer):
    """ReLU as a layer of its own, with your backward pass."""

    default_name = "my_re_lu"

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        a = np.maximum(x, 0)
        return a, {"a": a}  # the output is all the backward pass needs

    def backward_pass(self, dout: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        """From ``dout`` = dL/da (the shape of x): return ``dx, {}`` (no parameters, so no gradients),
        dx = dL/dx a new array.

        At x = 0 the derivative does not exist: use 0 there, as Keras does.
        """
        a = cache["a"]  # noqa: F841 (yours to use)
        # TODO dx: where did the unit pass its input through, and where did it block it?
        raise NotImplementedError("write MyReLU.backward_pass (docs/backprop.md#activations)")
