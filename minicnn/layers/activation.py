"""Activations as layers of their own: ``Activation``, ``ReLU``, ``LeakyReLU``, ``Softmax``.

See ``docs/backprop.md#activations`` and ``docs/backprop.md#leakyrelu``.
"""

from __future__ import annotations

import numpy as np

from minicnn.layers.activated import _Activated
from minicnn.layers.base import Layer
from minicnn.registry import LAYERS

__all__ = ["Activation", "LeakyReLU", "ReLU", "Softmax"]


class _ActivationLayer(_Activated):
    """An activation as a layer of its own: the linear part is the identity."""

    def __init__(self, activation: str, name: str | None = None, input_shape: tuple | None = None):
        super().__init__(activation, name, input_shape=input_shape)

    def get_config(self) -> dict:
        return {"name": self.name}

    def forward_affine_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        return x, {}

    def backward_affine_pass(self, dz: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        return dz, {}


@LAYERS.register()
class Activation(_ActivationLayer):
    """Any of minicnn's activations by name (``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"softmax"``,
    ``"linear"``), as a layer: any shape in, same shape out."""

    default_name = "activation"
    docs_section = "activations"

    def __init__(self, activation: str, name: str | None = None, input_shape: tuple | None = None):
        if activation is None:
            raise ValueError(f"{type(self).__name__}: activation must be a name such as 'relu'; got None")
        super().__init__(activation, name, input_shape)

    def get_config(self) -> dict:
        return {"activation": self.activation, **super().get_config()}

    def to_keras(self, keras_layers):
        return keras_layers.Activation(self.activation, name=self.name)

    @classmethod
    def from_keras(cls, config: dict, activation: str | None) -> Activation:
        return cls(activation or "linear", name=config["name"])


@LAYERS.register()
class ReLU(_ActivationLayer):
    """``a = max(x, 0)``; any shape in, same shape out."""

    default_name = "re_lu"
    docs_section = "activations"
    keras_requires = {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}

    def __init__(self, name: str | None = None, input_shape: tuple | None = None):
        super().__init__("relu", name, input_shape)

    def to_keras(self, keras_layers):
        return keras_layers.ReLU(name=self.name)


@LAYERS.register()
class Softmax(_ActivationLayer):
    """Softmax over the last axis; (N, K) in and out."""

    default_name = "softmax"
    docs_section = "activations"
    keras_requires = {"axis": -1}

    def __init__(self, name: str | None = None, input_shape: tuple | None = None):
        super().__init__("softmax", name, input_shape)

    def to_keras(self, keras_layers):
        return keras_layers.Softmax(name=self.name)


@LAYERS.register()
class LeakyReLU(Layer):
    """``a = x`` where ``x > 0``, else ``negative_slope * x`` (Keras 3's default slope 0.3).

    Any shape in, same shape out. Backward: ``dx = dout`` where ``x > 0``, else
    ``negative_slope * dout`` (at ``x = 0`` the slope side, as TensorFlow). With a
    slope >= 0 the output is positive exactly where the input is, so the cache keeps the
    boolean ``x > 0`` only.
    """

    default_name = "leaky_re_lu"
    docs_section = "leakyrelu"

    def __init__(self, negative_slope: float = 0.3, name: str | None = None,
                 input_shape: tuple | None = None):
        super().__init__(name, input_shape=input_shape)
        number = isinstance(negative_slope, (int, float)) and not isinstance(negative_slope, bool)
        if not number or not negative_slope >= 0:
            raise ValueError(f"{type(self).__name__}: negative_slope must be a number >= 0; "
                             f"got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def get_config(self) -> dict:
        return {"negative_slope": self.negative_slope, **super().get_config()}

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        positive = x > 0
        return np.where(positive, x, x * x.dtype.type(self.negative_slope)), {"positive": positive}

    def backward_pass(self, dout: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        return np.where(cache["positive"], dout, dout * dout.dtype.type(self.negative_slope)), {}

    def to_keras(self, keras_layers):
        return keras_layers.LeakyReLU(negative_slope=self.negative_slope, name=self.name)

    @classmethod
    def from_keras(cls, config: dict, activation: str | None) -> LeakyReLU:
        return cls(config["negative_slope"], name=config["name"])
