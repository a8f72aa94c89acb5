"""``Dense``: the fully connected layer (``docs/backprop.md#dense``)."""

from __future__ import annotations

import numpy as np

from minicnn.kernels.matmul import matmul
from minicnn.layers.activated import _Activated
from minicnn.layers.base import check_positive_int
from minicnn.layers.initializers import INITIALIZERS, check_initializer, from_keras_config
from minicnn.registry import LAYERS
from minicnn.regularizers import Regularizer, serialize
from minicnn.regularizers import get as get_regularizer
from minicnn.seeding import make_rng

__all__ = ["Dense"]


@LAYERS.register()
class Dense(_Activated):
    """Fully connected layer ``a = activation(x @ W + b)``.

    x: (N, D) -> a: (N, U). Parameters: ``kernel`` of shape (D, U) and ``bias`` of shape (U,).
    ``matmul`` is ``@`` in blocks that keep the sums' order whatever the thread count
    (:mod:`minicnn.kernels.matmul`).
    ``kernel_initializer`` as for Conv2D (:mod:`minicnn.layers.initializers`); ``kernel_regularizer`` and
    ``bias_regularizer`` as for Conv2D (:mod:`minicnn.regularizers`).
    """

    default_name = "dense"
    docs_section = "dense"
    keras_requires = {"use_bias": True}

    def __init__(self, units: int, activation: str | None = None, kernel_initializer: str = "glorot_uniform",
                 seed: int | None = None, name: str | None = None, trainable: bool = True,
                 input_shape: tuple | None = None, kernel_regularizer: Regularizer | str | dict | None = None,
                 bias_regularizer: Regularizer | str | dict | None = None):
        super().__init__(activation, name, trainable, input_shape)
        kind = type(self).__name__
        self.units = check_positive_int(units, "units", kind)
        self.kernel_initializer = check_initializer(kernel_initializer, kind)
        self.seed = seed
        self.kernel_regularizer = get_regularizer(kernel_regularizer, f"{kind}: kernel_regularizer")
        self.bias_regularizer = get_regularizer(bias_regularizer, f"{kind}: bias_regularizer")

    def get_config(self) -> dict:
        return {"units": self.units, "activation": self.activation,
                "kernel_initializer": self.kernel_initializer, "seed": self.seed,
                "kernel_regularizer": serialize(self.kernel_regularizer),
                "bias_regularizer": serialize(self.bias_regularizer), **super().get_config()}

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 1:
            raise ValueError(f"{self.label()}: expected inputs of shape (D,); got {input_shape}. "
                             "Add a Flatten() first.")
        return (self.units,)

    def count_weights(self, input_shape: tuple) -> int:
        (d,) = input_shape
        return d * self.units + self.units

    def build(self, input_shape: tuple) -> None:
        super().build(input_shape)
        d = self.input_shape[0]
        initialize = INITIALIZERS[self.kernel_initializer]
        self.params = {
            "kernel": initialize((d, self.units), d, self.units, make_rng(self.seed)),
            "bias": np.zeros(self.units, dtype=np.float32),
        }
        self.astype(self.dtype)

    def forward_affine_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        z = matmul(x, self.params["kernel"]) + self.params["bias"]
        return z, {"x": x}

    def backward_affine_pass(self, dz: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        """``dW = x.T @ dz``, ``db = sum(dz)``, ``dx = dz @ W.T``; dz: (N, U)."""
        x, W = cache["x"], self.params["kernel"]
        grads = {"kernel": matmul(x.T, dz), "bias": dz.sum(axis=0)}
        return matmul(dz, W.T), grads

    def to_keras(self, keras_layers):
        return keras_layers.Dense(self.units, activation=self.activation,
                                  kernel_initializer=self.kernel_initializer, name=self.name,
                                  trainable=self.trainable,
                                  kernel_regularizer=serialize(self.kernel_regularizer),
                                  bias_regularizer=serialize(self.bias_regularizer))

    @classmethod
    def from_keras(cls, config: dict, activation: str | None) -> Dense:
        return cls(config["units"], activation=activation,
                   kernel_initializer=from_keras_config(config["kernel_initializer"], cls.__name__),
                   name=config["name"], trainable=config.get("trainable", True),
                   kernel_regularizer=config.get("kernel_regularizer"),
                   bias_regularizer=config.get("bias_regularizer"))
