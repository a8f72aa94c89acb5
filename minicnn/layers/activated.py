"""Layers that compute ``a = activation(z)`` after a linear part ``z = linear(x)``.

Splitting the two lets the model fuse a final softmax with the cross-entropy loss:
it calls ``forward_linear`` / ``backward_linear`` directly and computes the loss
from the logits ``z`` (``docs/backprop.md#softmax-and-cross-entropy``).
"""

from __future__ import annotations

import numpy as np

from minicnn.activations import ACTIVATIONS, check_activation
from minicnn.layers.base import Layer

__all__: list[str] = []


class _Activated(Layer):
    """Base of Conv2D, Dense and the activation layers: ``a = activation(linear(x))``."""

    def __init__(self, activation: str | None, name: str | None, trainable: bool = True,
                 input_shape: tuple | None = None):
        super().__init__(name, trainable, input_shape)
        self.activation = check_activation(activation, type(self).__name__)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        act, _ = ACTIVATIONS[self.activation]
        a = act(self.forward_linear(x, training))
        if training:
            self.cache["a"] = a
        return a

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.check_grad(dout)
        _, act_backward = ACTIVATIONS[self.activation]
        dz = act_backward(dout, self.cache["a"])
        return self.backward_linear(dz)

    def forward_linear(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The linear part ``z`` (N, ...); with ``training`` it starts the cache."""
        raise NotImplementedError

    def backward_linear(self, dz: np.ndarray) -> np.ndarray:
        """From ``dz`` = dL/dz: fill ``grads`` and return ``dx``."""
        raise NotImplementedError
