"""``MaxPooling2D`` (alias ``MaxPool2D``): max over windows of NHWC images.

See ``docs/backprop.md#maxpooling2d``.
"""

from __future__ import annotations

import numpy as np

from minicnn.kernels import conv_output_size
from minicnn.kernels.maxpool import maxpool_backward, maxpool_forward
from minicnn.layers.base import Layer, as_square
from minicnn.registry import LAYERS

__all__ = ["MaxPooling2D", "MaxPool2D"]


@LAYERS.register()
class MaxPooling2D(Layer):
    """Max over non-padded ``pool_size`` windows.

    x: (N, H, W, C) -> out: (N, OH, OW, C) with ``OH = (H - pool) // stride + 1``.
    ``strides`` defaults to ``pool_size``, as in Keras. On ties the first
    maximum of the window (row-major) receives the whole gradient.
    """

    default_name = "max_pooling2d"
    docs_section = "maxpooling2d"
    keras_requires = {"data_format": "channels_last", "padding": "valid"}

    def __init__(self, pool_size=2, strides=None, name: str | None = None, input_shape: tuple | None = None):
        super().__init__(name, input_shape=input_shape)
        kind = type(self).__name__
        self.pool_size = as_square(pool_size, "pool_size", kind)
        self.strides = self.pool_size if strides is None else as_square(strides, "strides", kind)
        if self.pool_size**2 > 256:
            raise ValueError(f"{kind}: windows of at most 256 values; got {pool_size!r}")

    def get_config(self) -> dict:
        return {"pool_size": self.pool_size, "strides": self.strides, **super().get_config()}

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 3:
            raise ValueError(f"{self.label()}: expected inputs of shape (H, W, C); got {input_shape}")
        h, w, c = input_shape
        oh = conv_output_size(h, self.pool_size, self.strides)
        ow = conv_output_size(w, self.pool_size, self.strides)
        if oh < 1 or ow < 1:
            raise ValueError(f"{self.label()}: pool {self.pool_size} does not fit input {input_shape}")
        return (oh, ow, c)

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        out, argmax = maxpool_forward(x, self.pool_size, self.strides)
        return out, {"argmax": argmax, "x_shape": x.shape}

    def backward_pass(self, dout: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        dx = maxpool_backward(dout, cache["argmax"], cache["x_shape"], self.pool_size, self.strides)
        return dx, {}

    def to_keras(self, keras_layers):
        return keras_layers.MaxPooling2D(self.pool_size, strides=self.strides, name=self.name)

    @classmethod
    def from_keras(cls, config: dict, activation: str | None) -> MaxPooling2D:
        return cls(config["pool_size"], strides=config["strides"], name=config["name"])


MaxPool2D = MaxPooling2D
