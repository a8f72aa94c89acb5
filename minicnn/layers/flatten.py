"""``Flatten``: (N, d1, d2, ...) -> (N, d1*d2*...)."""

from __future__ import annotations

import numpy as np

from minicnn.layers.base import Layer
from minicnn.registry import LAYERS

__all__ = ["Flatten"]


@LAYERS.register()
class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...), in C order, so NHWC flattens like Keras' channels_last."""

    default_name = "flatten"
    docs_section = "flatten"
    keras_requires = {"data_format": "channels_last"}

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (int(np.prod(input_shape)),)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.check_input(x)
        out = x.reshape(x.shape[0], -1)
        if training:
            self.remember(out.shape, {"x_shape": x.shape})
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.check_grad(dout)
        return dout.reshape(self.cache["x_shape"]).copy()

    def to_keras(self, keras_layers):
        return keras_layers.Flatten(name=self.name)
