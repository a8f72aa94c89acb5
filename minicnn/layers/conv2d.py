"""``Conv2D``: 2-D convolution of NHWC images (``docs/backprop.md#conv2d``)."""

from __future__ import annotations

import numpy as np

from minicnn.kernels import conv_output_size
from minicnn.kernels.im2col import col2im, im2col
from minicnn.kernels.matmul import matmul
from minicnn.layers.activated import _Activated
from minicnn.layers.base import as_pair, check_positive_int
from minicnn.layers.initializers import INITIALIZERS, check_initializer, from_keras_config
from minicnn.registry import LAYERS
from minicnn.regularizers import Regularizer, serialize
from minicnn.regularizers import get as get_regularizer
from minicnn.seeding import make_rng

__all__ = ["Conv2D"]


@LAYERS.register()
class Conv2D(_Activated):
    """2-D convolution of NHWC images, then an optional activation.

    x: (N, H, W, C) -> a: (N, OH, OW, F). Parameters: ``kernel`` of shape
    (KH, KW, C, F) (Keras' layout) and, with ``use_bias`` (the default), ``bias`` of
    shape (F,). The product runs as ``z = cols @ W + b`` with ``cols = im2col(x)`` of
    shape (N*OH*OW, KH*KW*C) and ``W`` the kernel reshaped to (KH*KW*C, F) (``matmul`` is
    ``@`` in blocks that keep the sums' order whatever the thread count: :mod:`minicnn.kernels.matmul`).
    ``kernel_size`` and ``strides`` take an int or a (rows, columns) pair.
    ``padding="same"`` pads like Keras/TensorFlow (the extra row or column,
    if any, at the bottom/right); :attr:`pads` holds the padding once built.
    ``kernel_initializer``: ``"glorot_uniform"`` (Keras' default), ``"he_normal"``,
    ``"he_uniform"`` or ``"zeros"`` (:mod:`minicnn.layers.initializers`).
    ``kernel_regularizer`` / ``bias_regularizer``: a weight penalty the model adds to the training
    loss, Keras' ``L2`` and kin or their names (``"l2"``; :mod:`minicnn.regularizers`).
    """

    default_name = "conv2d"
    docs_section = "conv2d"
    keras_requires = {"data_format": "channels_last", "dilation_rate": (1, 1), "groups": 1}

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid",
                 activation: str | None = None, use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform", seed: int | None = None, name: str | None = None,
                 trainable: bool = True, input_shape: tuple | None = None,
                 kernel_regularizer: Regularizer | str | dict | None = None,
                 bias_regularizer: Regularizer | str | dict | None = None):
        super().__init__(activation, name, trainable, input_shape)
        kind = type(self).__name__
        self.filters = check_positive_int(filters, "filters", kind)
        if padding not in ("same", "valid"):
            raise ValueError(f"{kind}: padding must be 'same' or 'valid'; got {padding!r}")
        if not isinstance(use_bias, bool):
            raise TypeError(f"{kind}: use_bias must be True or False; got {use_bias!r}")
        self.kernel_size = as_pair(kernel_size, "kernel_size", kind)
        self.strides = as_pair(strides, "strides", kind)
        self.padding = padding
        self.use_bias = use_bias
        self.kernel_initializer = check_initializer(kernel_initializer, kind)
        self.seed = seed
        self.kernel_regularizer = get_regularizer(kernel_regularizer, f"{kind}: kernel_regularizer")
        self.bias_regularizer = get_regularizer(bias_regularizer, f"{kind}: bias_regularizer")
        if self.bias_regularizer is not None and not use_bias:
            raise ValueError(f"{kind}: bias_regularizer={self.bias_regularizer!r} needs a bias; "
                             "got use_bias=False")
        self.pads: tuple[int, int, int, int] | None = None

    def get_config(self) -> dict:
        return {"filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer, "seed": self.seed,
                "kernel_regularizer": serialize(self.kernel_regularizer),
                "bias_regularizer": serialize(self.bias_regularizer), **super().get_config()}

    def compute_pads(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) zero padding for an (h, w) input, as TensorFlow computes it."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        pad_h = max((-(-h // sh) - 1) * sh + kh - h, 0)
        pad_w = max((-(-w // sw) - 1) * sw + kw - w, 0)
        return (pad_h // 2, pad_h - pad_h // 2, pad_w // 2, pad_w - pad_w // 2)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 3:
            raise ValueError(f"{self.label()}: expected inputs of shape (H, W, C); got {input_shape}")
        h, w, _ = input_shape
        top, bottom, left, right = self.compute_pads(h, w)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        oh, ow = conv_output_size(h, kh, sh, top, bottom), conv_output_size(w, kw, sw, left, right)
        if oh < 1 or ow < 1:
            raise ValueError(f"{self.label()}: kernel {self.kernel_size} does not fit input {input_shape}")
        return (oh, ow, self.filters)

    def count_weights(self, input_shape: tuple) -> int:
        (kh, kw), c, f = self.kernel_size, input_shape[-1], self.filters
        return kh * kw * c * f + (f if self.use_bias else 0)

    def build(self, input_shape: tuple) -> None:
        super().build(input_shape)
        h, w, c = self.input_shape
        self.pads = self.compute_pads(h, w)
        (kh, kw), f = self.kernel_size, self.filters
        initialize = INITIALIZERS[self.kernel_initializer]
        self.params = {"kernel": initialize((kh, kw, c, f), kh * kw * c, kh * kw * f, make_rng(self.seed))}
        if self.use_bias:
            self.params["bias"] = np.zeros(f, dtype=np.float32)
        self.astype(self.dtype)

    def forward_affine_pass(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, dict]:
        cols, xw = self.correlate(x)
        z = xw + self.params["bias"] if self.use_bias else xw
        return z, {"cols": cols, "x_shape": x.shape}

    def correlate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``cols = im2col(x)`` and ``xw = cols @ W``, the convolution without its bias.

        x: (N, H, W, C). Returns cols of shape (N, OH, OW, KH, KW, C) and xw of shape (N, OH, OW, F).
        """
        (kh, kw), s = self.kernel_size, self.strides  # s: (rows, columns)
        W = self.params["kernel"]
        cols = im2col(x, kh, kw, s, self.pads)
        xw = matmul(cols.reshape(-1, kh * kw * W.shape[2]), W.reshape(-1, self.filters))
        return cols, xw.reshape(x.shape[0], *self.output_shape)

    def backward_affine_pass(self, dz: np.ndarray, cache: dict) -> tuple[np.ndarray, dict]:
        """``dW = cols.T @ dz``, ``db = sum(dz)``, ``dx = col2im(dz @ W.T)``; dz: (N, OH, OW, F)."""
        W, cols, x_shape = self.params["kernel"], cache["cols"], cache["x_shape"]
        dz_rows = dz.reshape(-1, self.filters)
        cols_rows = cols.reshape(dz_rows.shape[0], -1)
        grads = {"kernel": matmul(cols_rows.T, dz_rows).reshape(W.shape)}
        if self.use_bias:
            grads["bias"] = dz_rows.sum(axis=0)
        dcols = matmul(dz_rows, W.reshape(-1, self.filters).T).reshape(cols.shape)
        return col2im(dcols, x_shape, self.strides, self.pads), grads

    def to_keras(self, keras_layers):
        return keras_layers.Conv2D(self.filters, self.kernel_size, strides=self.strides, padding=self.padding,
                                   activation=self.activation, use_bias=self.use_bias,
                                   kernel_initializer=self.kernel_initializer, name=self.name,
                                   trainable=self.trainable,
                                   kernel_regularizer=serialize(self.kernel_regularizer),
                                   bias_regularizer=serialize(self.bias_regularizer))

    @classmethod
    def from_keras(cls, config: dict, activation: str | None) -> Conv2D:
        return cls(config["filters"], config["kernel_size"], strides=config["strides"],
                   padding=config["padding"], activation=activation, use_bias=config["use_bias"],
                   kernel_initializer=from_keras_config(config["kernel_initializer"], cls.__name__),
                   name=config["name"], trainable=config.get("trainable", True),
                   kernel_regularizer=config.get("kernel_regularizer"),
                   bias_regularizer=config.get("bias_regularizer"))
