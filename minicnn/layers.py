"""Layers, each with a hand-written forward and backward pass.

The contract every layer keeps (``docs/backprop.md#the-layer-contract``):

- ``forward(x, training=False)`` returns the output. With ``training=True`` it
  also keeps what ``backward`` needs, and only that.
- ``backward(dout)`` takes the gradient of the loss with respect to the output,
  returns a *new* array ``dx`` (``dout`` is never modified), and fills
  ``layer.grads`` under the same keys as ``layer.params``. It never changes the
  parameters: that is the optimizer's job.
- Parameters live in ``layer.params`` (Keras' names: ``"kernel"``, ``"bias"``),
  float32 unless converted with :meth:`Layer.astype` (gradient checks use float64).

Images are NHWC, like Keras: arrays of shape ``(N, H, W, C)``.
"""

from __future__ import annotations

import numpy as np

from minicnn import kernels
from minicnn.activations import ACTIVATIONS, check_activation
from minicnn.seeding import make_rng


class Layer:
    """Base class: shape bookkeeping, input checks, parameters and config."""

    default_name = "layer"

    def __init__(self, name: str | None = None):
        self.name = name
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.dtype = np.dtype(np.float32)
        self.input_shape: tuple | None = None
        self.output_shape: tuple | None = None
        self._cache: dict | None = None  # what backward needs, kept by forward(x, training=True)

    @property
    def built(self) -> bool:
        return self.input_shape is not None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"

    def build(self, input_shape: tuple) -> None:
        """Fix the per-sample input shape (no batch axis) and create the parameters."""
        self.input_shape = tuple(int(d) for d in input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {"name": self.name}

    def count_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def astype(self, dtype) -> Layer:
        """Convert the parameters (and so the computation) to ``dtype``, in place."""
        self.dtype = np.dtype(dtype)
        for key, value in self.params.items():
            self.params[key] = value.astype(self.dtype)
        self.grads = {}
        return self

    def _label(self) -> str:
        return f'layer "{self.name or self.default_name}" ({type(self).__name__})'

    def _check_input(self, x: np.ndarray) -> None:
        """Build on first use; then insist on the built shape and a floating dtype."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{self._label()}: expected a NumPy array; got {type(x).__name__}")
        if not self.built:
            self.build(x.shape[1:])
        if x.shape[1:] != self.input_shape:
            raise ValueError(
                f"{self._label()}: expected input of shape {(None, *self.input_shape)}; "
                f"got {x.shape}"
            )
        if self.params and x.dtype != self.dtype:
            raise TypeError(
                f"{self._label()}: computes in {self.dtype}; got a {x.dtype} input. "
                f"Cast the input with x.astype(np.{self.dtype}) or the layer with .astype()."
            )
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"{self._label()}: expected a floating-point input; got {x.dtype}")

    def _check_grad(self, dout: np.ndarray) -> None:
        if self._cache is None:
            raise RuntimeError(
                f"{self._label()}: backward() needs a preceding forward(x, training=True)"
            )
        expected = self._cache_batch_shape
        if dout.shape != expected:
            raise ValueError(
                f"{self._label()}: expected an output gradient of shape {expected}; "
                f"got {dout.shape}"
            )

    def _remember(self, batch_output_shape: tuple, **cache) -> None:
        self._cache_batch_shape = batch_output_shape
        self._cache = cache


def glorot_uniform(shape: tuple, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Keras' default kernel initialiser: U(-l, l) with ``l = sqrt(6 / (fan_in + fan_out))``."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def _as_pair(value, what: str, layer: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in pair):
        raise ValueError(f"{layer}: {what} must be a positive int or a pair of them; got {value!r}")
    return int(pair[0]), int(pair[1])


def _square(value, what: str, layer: str) -> int:
    a, b = _as_pair(value, what, layer)
    if a != b:
        raise ValueError(f"{layer}: minicnn supports equal {what} on both axes; got {value!r}")
    return a


class _Activated(Layer):
    """A layer computing ``a = activation(z)`` after its linear part ``z = linear(x)``.

    Splitting the two lets the model fuse a final softmax with the
    cross-entropy loss: it calls ``forward_linear`` / ``backward_linear``
    directly and computes the loss from the logits ``z``.
    """

    def __init__(self, activation: str | None, name: str | None):
        super().__init__(name)
        self.activation = check_activation(activation, type(self).__name__)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        act, _ = ACTIVATIONS[self.activation]
        a = act(self.forward_linear(x, training))
        if training:
            self._cache["a"] = a
        return a

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._check_grad(dout)
        _, act_backward = ACTIVATIONS[self.activation]
        dz = act_backward(dout, self._cache["a"])
        return self.backward_linear(dz)

    def forward_linear(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward_linear(self, dz: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Input(Layer):
    """Declares the per-sample input shape, e.g. ``Input((28, 28, 1))``; computes nothing."""

    default_name = "input_layer"

    def __init__(self, shape: tuple, name: str | None = None):
        super().__init__(name)
        self.shape = tuple(int(d) for d in shape)
        if not self.shape or any(d < 1 for d in self.shape):
            raise ValueError(f"Input: shape must be positive sizes without the batch axis; got {shape}")

    def get_config(self) -> dict:
        return {"shape": self.shape, **super().get_config()}


class Conv2D(_Activated):
    """2-D convolution of NHWC images, then an optional activation (``docs/backprop.md#conv2d``).

    x: (N, H, W, C) -> a: (N, OH, OW, F). Parameters: ``kernel`` of shape
    (KH, KW, C, F) (Keras' layout) and ``bias`` of shape (F,). The product
    runs as ``z = cols @ W + b`` with ``cols = im2col(x)`` of shape
    (N*OH*OW, KH*KW*C) and ``W`` the kernel reshaped to (KH*KW*C, F).
    ``padding="same"`` pads like Keras/TensorFlow (the extra row or column,
    if any, at the bottom/right).
    """

    default_name = "conv2d"

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid",
                 activation: str | None = None, seed: int | None = None, name: str | None = None):
        super().__init__(activation, name)
        if not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"Conv2D: filters must be a positive int; got {filters!r}")
        if padding not in ("same", "valid"):
            raise ValueError(f"Conv2D: padding must be 'same' or 'valid'; got {padding!r}")
        self.filters = int(filters)
        self.kernel_size = _as_pair(kernel_size, "kernel_size", "Conv2D")
        self.strides = _square(strides, "strides", "Conv2D")
        self.padding = padding
        self.seed = seed

    def get_config(self) -> dict:
        return {"filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "activation": self.activation, "seed": self.seed,
                **super().get_config()}

    def _pads(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) zero padding, as TensorFlow computes it."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        (kh, kw), s = self.kernel_size, self.strides
        pad_h = max((-(-h // s) - 1) * s + kh - h, 0)
        pad_w = max((-(-w // s) - 1) * s + kw - w, 0)
        return (pad_h // 2, pad_h - pad_h // 2, pad_w // 2, pad_w - pad_w // 2)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 3:
            raise ValueError(f"Conv2D: expected inputs of shape (H, W, C); got {input_shape}")
        h, w, _ = input_shape
        top, bottom, left, right = self._pads(h, w)
        (kh, kw), s = self.kernel_size, self.strides
        oh = kernels.conv_output_size(h, kh, s, top, bottom)
        ow = kernels.conv_output_size(w, kw, s, left, right)
        if oh < 1 or ow < 1:
            raise ValueError(f"Conv2D: kernel {self.kernel_size} does not fit input {input_shape}")
        return (oh, ow, self.filters)

    def build(self, input_shape: tuple) -> None:
        super().build(input_shape)
        (kh, kw), c, f = self.kernel_size, self.input_shape[2], self.filters
        rng = make_rng(self.seed)
        self.params = {
            "kernel": glorot_uniform((kh, kw, c, f), kh * kw * c, kh * kw * f, rng),
            "bias": np.zeros(f, dtype=np.float32),
        }
        self.astype(self.dtype)

    def forward_linear(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._check_input(x)
        cols, xw = self.correlate(x)
        z = xw + self.params["bias"]
        if training:
            self._remember(z.shape, cols=cols, x_shape=x.shape)
        return z

    def correlate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``cols = im2col(x)`` and ``xw = cols @ W``, the convolution without its bias.

        x: (N, H, W, C). Returns cols of shape (N, OH, OW, KH, KW, C) and xw of shape (N, OH, OW, F).
        """
        (kh, kw), s = self.kernel_size, self.strides
        W = self.params["kernel"]
        cols = kernels.im2col(x, kh, kw, s, self._pads(*x.shape[1:3]))
        xw = cols.reshape(-1, W[..., 0].size) @ W.reshape(-1, self.filters)
        return cols, xw.reshape(x.shape[0], *self.output_shape)

    def backward_linear(self, dz: np.ndarray) -> np.ndarray:
        """``dW = cols.T @ dz``, ``db = sum(dz)``, ``dx = col2im(dz @ W.T)``; dz: (N, OH, OW, F)."""
        self._check_grad(dz)
        W, cols, x_shape = self.params["kernel"], self._cache["cols"], self._cache["x_shape"]
        dz_rows = dz.reshape(-1, self.filters)
        cols_rows = cols.reshape(dz_rows.shape[0], -1)
        self.grads = {
            "kernel": (cols_rows.T @ dz_rows).reshape(W.shape),
            "bias": dz_rows.sum(axis=0),
        }
        dcols = (dz_rows @ W.reshape(-1, self.filters).T).reshape(cols.shape)
        return kernels.col2im(dcols, x_shape, self.strides, self._pads(*x_shape[1:3]))


class MaxPooling2D(Layer):
    """Max over non-padded ``pool_size`` windows of NHWC images (``docs/backprop.md#maxpooling2d``).

    x: (N, H, W, C) -> out: (N, OH, OW, C) with ``OH = (H - pool) // stride + 1``.
    ``strides`` defaults to ``pool_size``, as in Keras. On ties the first
    maximum of the window (row-major) receives the whole gradient.
    """

    default_name = "max_pooling2d"

    def __init__(self, pool_size=2, strides=None, name: str | None = None):
        super().__init__(name)
        self.pool_size = _square(pool_size, "pool_size", "MaxPooling2D")
        self.strides = self.pool_size if strides is None else _square(strides, "strides", "MaxPooling2D")
        if self.pool_size**2 > 256:
            raise ValueError(f"MaxPooling2D: windows of at most 256 values; got {pool_size!r}")

    def get_config(self) -> dict:
        return {"pool_size": self.pool_size, "strides": self.strides, **super().get_config()}

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 3:
            raise ValueError(f"MaxPooling2D: expected inputs of shape (H, W, C); got {input_shape}")
        h, w, c = input_shape
        oh = kernels.conv_output_size(h, self.pool_size, self.strides, 0, 0)
        ow = kernels.conv_output_size(w, self.pool_size, self.strides, 0, 0)
        if oh < 1 or ow < 1:
            raise ValueError(f"MaxPooling2D: pool {self.pool_size} does not fit input {input_shape}")
        return (oh, ow, c)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._check_input(x)
        out, argmax = kernels.maxpool_forward(x, self.pool_size, self.strides)
        if training:
            self._remember(out.shape, argmax=argmax, x_shape=x.shape)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._check_grad(dout)
        return kernels.maxpool_backward(dout, self._cache["argmax"], self._cache["x_shape"],
                                        self.pool_size, self.strides)


MaxPool2D = MaxPooling2D


class Dropout(Layer):
    """Inverted dropout (``docs/backprop.md#dropout``): any shape in, same shape out.

    In training each value is kept with probability ``1 - rate`` and scaled by
    ``1 / (1 - rate)``, so the expected output equals the input and inference
    is the identity, with no rescaling. The mask is drawn from the layer's own
    generator (seeded by ``seed``), with ``rate`` exact to 1/65536.
    """

    default_name = "dropout"

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None):
        super().__init__(name)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1); got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.rng = make_rng(seed)

    def get_config(self) -> dict:
        return {"rate": self.rate, "seed": self.seed, **super().get_config()}

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._check_input(x)
        if not training:
            return x
        mask = self.draw_mask(x.shape, x.dtype)
        self._remember(x.shape, mask=mask)
        return x * mask

    def draw_mask(self, shape: tuple, dtype) -> np.ndarray:
        """A fresh mask: ``1 / (1 - rate)`` where a value is kept, 0 where it is dropped.

        Each value gets 16 random bits, cut from the generator's raw 64-bit
        output (several times faster than float uniforms), and is dropped when
        they are below ``round(rate * 65536)``: the rate is exact to 1/65536
        (0.25 and 0.5 exactly).
        """
        size = int(np.prod(shape))
        bits = self.rng.bit_generator.random_raw((size + 3) // 4).view(np.uint16)[:size]
        keep = bits.reshape(shape) >= round(self.rate * 65536)
        return keep * np.dtype(dtype).type(1.0 / (1.0 - self.rate))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._check_grad(dout)
        return dout * self._cache["mask"]


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...), in C order, so NHWC flattens like Keras' channels_last."""

    default_name = "flatten"

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (int(np.prod(input_shape)),)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._check_input(x)
        out = x.reshape(x.shape[0], -1)
        if training:
            self._remember(out.shape, x_shape=x.shape)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._check_grad(dout)
        return dout.reshape(self._cache["x_shape"]).copy()


class Dense(_Activated):
    """Fully connected layer ``a = activation(x @ W + b)`` (``docs/backprop.md#dense``).

    x: (N, D) -> a: (N, U). Parameters: ``kernel`` of shape (D, U) and ``bias`` of shape (U,).
    """

    default_name = "dense"

    def __init__(self, units: int, activation: str | None = None, seed: int | None = None,
                 name: str | None = None):
        super().__init__(activation, name)
        if not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"Dense: units must be a positive int; got {units!r}")
        self.units = int(units)
        self.seed = seed

    def get_config(self) -> dict:
        return {"units": self.units, "activation": self.activation, "seed": self.seed,
                **super().get_config()}

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 1:
            raise ValueError(
                f"Dense: expected inputs of shape (D,); got {input_shape}. Add a Flatten() first."
            )
        return (self.units,)

    def build(self, input_shape: tuple) -> None:
        super().build(input_shape)
        d = self.input_shape[0]
        self.params = {
            "kernel": glorot_uniform((d, self.units), d, self.units, make_rng(self.seed)),
            "bias": np.zeros(self.units, dtype=np.float32),
        }
        self.astype(self.dtype)

    def forward_linear(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._check_input(x)
        z = x @ self.params["kernel"] + self.params["bias"]
        if training:
            self._remember(z.shape, x=x)
        return z

    def backward_linear(self, dz: np.ndarray) -> np.ndarray:
        self._check_grad(dz)
        x, W = self._cache["x"], self.params["kernel"]
        self.grads = {"kernel": x.T @ dz, "bias": dz.sum(axis=0)}
        return dz @ W.T


class _ActivationLayer(_Activated):
    """An activation as a layer of its own: the linear part is the identity."""

    def get_config(self) -> dict:
        return {"name": self.name}

    def forward_linear(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._check_input(x)
        if training:
            self._remember(x.shape)
        return x

    def backward_linear(self, dz: np.ndarray) -> np.ndarray:
        return dz


class ReLU(_ActivationLayer):
    """``a = max(x, 0)``; any shape in, same shape out (``docs/backprop.md#activations``)."""

    default_name = "re_lu"

    def __init__(self, name: str | None = None):
        super().__init__("relu", name)


class Softmax(_ActivationLayer):
    """Softmax over the last axis; (N, K) in and out (``docs/backprop.md#activations``)."""

    default_name = "softmax"

    def __init__(self, name: str | None = None):
        super().__init__("softmax", name)


LAYER_CLASSES = {cls.__name__: cls for cls in
                 (Input, Conv2D, MaxPooling2D, Dropout, Flatten, Dense, ReLU, Softmax)}
