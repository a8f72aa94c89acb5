"""Activations as layers of their own: ``ReLU`` and ``Softmax`` (``docs/backprop.md#activations``)."""

from __future__ import annotations

import numpy as np

from minicnn.layers.activated import _Activated

__all__ = ["ReLU", "Softmax"]


class _ActivationLayer(_Activated):
    """An activation as a layer of its own: the linear part is the identity."""

    def __init__(self, activation: str, name: str | None = None):
        super().__init__(activation, name)

    def get_config(self) -> dict:
        return {"name": self.name}

    def forward_linear(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.check_input(x)
        if training:
            self.remember(x.shape, {})
        return x

    def backward_linear(self, dz: np.ndarray) -> np.ndarray:
        return dz


class ReLU(_ActivationLayer):
    """``a = max(x, 0)``; any shape in, same shape out."""

    default_name = "re_lu"
    keras_requires = {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}

    def __init__(self, name: str | None = None):
        super().__init__("relu", name)

    def to_keras(self, keras_layers):
        return keras_layers.ReLU(name=self.name)


class Softmax(_ActivationLayer):
    """Softmax over the last axis; (N, K) in and out."""

    default_name = "softmax"
    keras_requires = {"axis": -1}

    def __init__(self, name: str | None = None):
        super().__init__("softmax", name)

    def to_keras(self, keras_layers):
        return keras_layers.Softmax(name=self.name)
