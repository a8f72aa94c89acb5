"""``AveragePooling2D`` and ``GlobalAveragePooling2D``: means over windows of NHWC images.

See ``docs/backprop.md#averagepooling2d-and-globalaveragepooling2d``. Both are a few
vectorised NumPy sums (one per window offset), fast enough that they have no Numba twin:
they run the same code on both kernel paths.
"""

from __future__ import annotations

import numpy as np

from minicnn.kernels import conv_output_size, window_slice
from minicnn.layers.base import Layer, as_pair
from minicnn.registry import LAYERS

__all__ = ["AveragePooling2D", "AvgPool2D", "GlobalAveragePooling2D", "GlobalAvgPool2D"]


@LAYERS.register()
class AveragePooling2D(Layer):
    """Mean over non-padded ``pool_size`` windows (an int or a (rows, columns) pair).

    x: (N, H, W, C) -> out: (N, OH, OW, C), ``OH = (H - PH) // SH + 1``; ``strides``
    defaults to ``pool_size``, as in Keras. Every input in a window gets ``1 / (PH * PW)``
    of that window's output gradient (summed where windows overlap).
    """

    default_name = "average_pooling2d"
    docs_section = "averagepooling2d-and-globalaveragepooling2d"
    keras_requires = {"data_format": "channels_last", "padding": "valid"}

    def __init__(self, pool_size=2, strides=None, name: str | None = None, input_shape: tuple | None = None):
        super().__init__(name, input_shape=input_shape)
        self.pool_size = as_pair(pool_size, "pool_size", type(self).__name__)
        self.strides = self.pool_size if strides is None else as_pair(strides, "strides", type(self).__name__)

    def get_config(self) -> dict:
        return {"pool_size": self.pool_size, "strides": self.strides, **super().get_config()}

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 3:
            raise ValueError(f"{self.label()}: expected inputs of shape (H, W, C); got {input_shape}")
        h, w, c = input_shape
        oh = conv_output_size(h, self.pool_size[0], self.strides[0])
        ow = conv_output_size(w, self.pool_size[1], self.strides[1])
        if oh < 1 or ow < 1:
            raise ValueError(f"{self.label()}: pool {self.pool_size} does not fit input {input_shape}")
        return (oh, ow, c)

    def _windows(self, oh: int, ow: int):
        """For each offset (di, dj) inside a window, the slices of the inputs at that offset."""
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        for di in range(ph):
            for dj in range(pw):
                yield (slice(None), window_slice(di, oh, sh), window_slice(dj, ow, sw))

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        oh, ow, c = self.output_shape
        out = np.zeros((x.shape[0], oh, ow, c), dtype=x.dtype)
        for window in self._windows(oh, ow):
            out += x[window]
        out *= x.dtype.type(1.0 / (self.pool_size[0] * self.pool_size[1]))
        return out, {"x_shape": x.shape}

    def backward_pass(self, dout: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        share = dout * dout.dtype.type(1.0 / (self.pool_size[0] * self.pool_size[1]))
        dx = np.zeros(cache["x_shape"], dtype=dout.dtype)
        for window in self._windows(*dout.shape[1:3]):
            dx[window] += share
        return dx, {}

    def to_keras(self, keras_layers):
        return keras_layers.AveragePooling2D(self.pool_size, strides=self.strides, name=self.name)

    @classmethod
    def from_keras(cls, config: dict, activation: str | None) -> AveragePooling2D:
        return cls(config["pool_size"], strides=config["strides"], name=config["name"])


@LAYERS.register()
class GlobalAveragePooling2D(Layer):
    """Mean over all positions of each channel: (N, H, W, C) -> (N, C).

    Backward: every position gets ``dout / (H * W)`` of its channel's gradient.
    """

    default_name = "global_average_pooling2d"
    docs_section = "averagepooling2d-and-globalaveragepooling2d"
    keras_requires = {"data_format": "channels_last", "keepdims": False}

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 3:
            raise ValueError(f"{self.label()}: expected inputs of shape (H, W, C); got {input_shape}")
        return (input_shape[2],)

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        return x.mean(axis=(1, 2)), {"x_shape": x.shape}

    def backward_pass(self, dout: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        n, h, w, c = cache["x_shape"]
        share = dout * dout.dtype.type(1.0 / (h * w))
        return np.broadcast_to(share[:, None, None, :], (n, h, w, c)).copy(), {}

    def to_keras(self, keras_layers):
        return keras_layers.GlobalAveragePooling2D(name=self.name)


AvgPool2D = AveragePooling2D
GlobalAvgPool2D = GlobalAveragePooling2D
