"""Layers that compute ``a = activation(z)`` after an affine part ``z = affine(x)``.

A subclass writes the affine part as the hooks ``forward_affine_pass(x, training) -> (z, cache)``
and ``backward_affine_pass(dz, cache) -> (dx, grads)``; this class adds the activation
(:mod:`minicnn.activations`) to make the layer's ``forward_pass`` / ``backward_pass``.

Splitting the two lets the model fuse a final softmax with the cross-entropy loss:
it calls ``forward_affine`` / ``backward_affine``, the affine part alone inside the
layer contract, and computes the loss from the logits ``z``
(``docs/backprop.md#softmax-and-cross-entropy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from minicnn.activations import ACTIVATIONS, check_activation
from minicnn.layers.base import Layer

__all__: list[str] = []


class _Activated(Layer):
    """Base of Conv2D, Dense and the activation layers: ``a = activation(affine(x))``."""

    def __init__(self, activation: str | None, name: str | None, trainable: bool = True,
                 input_shape: tuple | None = None):
        super().__init__(name, trainable, input_shape)
        self.activation = check_activation(activation, type(self).__name__)

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        activate, _ = ACTIVATIONS[self.activation]
        z, cache = self.forward_affine_pass(x, training)
        a = activate(z)
        return a, {**cache, "a": a}

    def backward_pass(self, dout: np.ndarray, cache: Mapping[str, Any]) -> tuple[np.ndarray, dict]:
        _, activation_backward = ACTIVATIONS[self.activation]
        dz = activation_backward(dout, cache["a"])
        return self.backward_affine_pass(dz, cache)

    def forward_affine(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The affine part ``z`` alone (N, ...), inside the layer contract, as :meth:`forward`."""
        return self._checked_forward(self.forward_affine_pass, x, training)

    def backward_affine(self, dz: np.ndarray) -> np.ndarray:
        """``dx`` from ``dz`` = dL/dz, after :meth:`forward_affine`; fills ``grads``, as :meth:`backward`."""
        return self._checked_backward(self.backward_affine_pass, dz)

    def forward_affine_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        """The maths of the affine part: ``(z, cache)``."""
        raise NotImplementedError

    def backward_affine_pass(self, dz: np.ndarray, cache: Mapping[str, Any]) -> tuple[np.ndarray, dict]:
        """The maths of the affine part's backward: ``(dx, grads)`` from ``dz`` = dL/dz."""
        raise NotImplementedError
