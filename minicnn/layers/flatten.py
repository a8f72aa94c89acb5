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

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        out = x.reshape(x.shape[0], -1)
        return out, {"x_shape": x.shape}

    def backward_pass(self, dout: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        return dout.reshape(cache["x_shape"]).copy(), {}

    def to_keras(self, keras_layers):
        return keras_layers.Flatten(name=self.name)
