"""``BatchNormalization`` over the last (channel) axis (``docs/backprop.md#batchnormalization``)."""

from __future__ import annotations

import numpy as np

from minicnn.layers.base import Layer
from minicnn.registry import LAYERS

__all__ = ["BatchNormalization"]


@LAYERS.register()
class BatchNormalization(Layer):
    """Normalise each channel, then scale and shift it: ``out = gamma * (x - mean) / sqrt(var + eps) + beta``.

    x: (N, ..., C), e.g. (N, H, W, C) after a Conv2D or (N, D) after a Dense; out has the
    same shape. ``mean`` and ``var`` are per channel (C,), over every other axis.

    - Training (``forward(x, training=True)``): the batch's own mean and (biased) variance,
      and the moving statistics move towards them:
      ``moving = momentum * moving + (1 - momentum) * batch`` (Keras' rule and defaults,
      ``momentum=0.99``, ``epsilon=1e-3``).
    - Inference: the moving statistics, so one sample's output does not depend on the batch.
    - ``trainable=False`` freezes ``gamma`` and ``beta`` *and* runs in inference mode even
      in training, as Keras 3 does (the usual way to fine-tune a model that has BN).

    Parameters (trainable): ``gamma`` (ones) and ``beta`` (zeros), shape (C,). State (saved,
    never trained, listed after the parameters in ``get_weights`` as Keras lists it):
    ``moving_mean`` (zeros) and ``moving_variance`` (ones), shape (C,).
    """

    default_name = "batch_normalization"
    docs_section = "batchnormalization"
    keras_requires = {"axis": -1, "center": True, "scale": True, "renorm": False, "synchronized": False,
                      "gamma_regularizer": None, "beta_regularizer": None, "gamma_constraint": None,
                      "beta_constraint": None}

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, name: str | None = None,
                 trainable: bool = True, input_shape: tuple | None = None):
        super().__init__(name, trainable, input_shape)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0.0 <= momentum < 1.0:
            raise ValueError(f"{type(self).__name__}: momentum must be in [0, 1); got {momentum!r}")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
            raise ValueError(f"{type(self).__name__}: epsilon must be > 0; got {epsilon!r}")
        self.momentum, self.epsilon = float(momentum), float(epsilon)

    def get_config(self) -> dict:
        return {"momentum": self.momentum, "epsilon": self.epsilon, **super().get_config()}

    def count_weights(self, input_shape: tuple) -> int:
        return 4 * input_shape[-1]  # gamma, beta, moving_mean, moving_variance

    def build(self, input_shape: tuple) -> None:
        super().build(input_shape)
        c = self.input_shape[-1]
        self.params = {"gamma": np.ones(c, np.float32), "beta": np.zeros(c, np.float32)}
        self.state = {"moving_mean": np.zeros(c, np.float32), "moving_variance": np.ones(c, np.float32)}
        self.astype(self.dtype)

    def forward_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        f = x.dtype.type
        gamma, beta = self.params["gamma"], self.params["beta"]
        use_batch = training and self.trainable
        if use_batch:
            axes = tuple(range(x.ndim - 1))
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            m = f(self.momentum)
            self.state["moving_mean"] = self.state["moving_mean"] * m + mean * (f(1) - m)
            self.state["moving_variance"] = self.state["moving_variance"] * m + var * (f(1) - m)
        else:
            mean, var = self.state["moving_mean"], self.state["moving_variance"]
        inv_std = f(1) / np.sqrt(var + f(self.epsilon))
        x_hat = (x - mean) * inv_std
        return x_hat * gamma + beta, {"x_hat": x_hat, "inv_std": inv_std, "batch_statistics": use_batch}

    def backward_pass(self, dout: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        """``dgamma = sum(dout * x_hat)``, ``dbeta = sum(dout)`` over all but the channel axis, and

        with batch statistics (M values per channel)
        ``dx = gamma * inv_std / M * (M * dout - sum(dout) - x_hat * sum(dout * x_hat))``;
        with the moving statistics (constants) ``dx = gamma * inv_std * dout``.
        """
        x_hat, inv_std = cache["x_hat"], cache["inv_std"]
        axes = tuple(range(dout.ndim - 1))
        dbeta = dout.sum(axis=axes)
        dgamma = (dout * x_hat).sum(axis=axes)
        grads = {"gamma": dgamma, "beta": dbeta}
        scale = self.params["gamma"] * inv_std
        if not cache["batch_statistics"]:
            return dout * scale, grads
        m = dout.dtype.type(dout.size // dout.shape[-1])
        return (scale / m) * (m * dout - dbeta - x_hat * dgamma), grads

    def to_keras(self, keras_layers):
        return keras_layers.BatchNormalization(momentum=self.momentum, epsilon=self.epsilon, name=self.name,
                                               trainable=self.trainable)

    @classmethod
    def from_keras(cls, config: dict, activation: str | None) -> BatchNormalization:
        return cls(config["momentum"], config["epsilon"], name=config["name"],
                   trainable=config.get("trainable", True))
